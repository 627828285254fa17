# Your app's requirements (APP_REQUIREMENTS=) on top of the servers' image, for the Compose
# runtime (asgilab/userapp.py builds it: `make lab APP=... APP_REQUIREMENTS=...`). The app's
# own files are not copied: compose.yaml mounts APP_DIR read-only at /lab/app.
#   SERVER_IMAGE  the lab's server image, built first
#   WHEELHOUSE    non-empty: install only from the wheels fetched on the host (offline)
ARG SERVER_IMAGE=asgilab/server:local
FROM ${SERVER_IMAGE}
ARG WHEELHOUSE=""
USER root
COPY requirements.txt wheel[s] /build/
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -q \
      ${WHEELHOUSE:+--no-index --find-links /build} -r /build/requirements.txt \
 && rm -rf /build
USER lab
