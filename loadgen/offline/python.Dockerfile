# Offline stand-in for python:3.11-slim-bookworm: Debian bookworm's python3 (3.11).
ARG DEBIAN_IMAGE=asgilab-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* && ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
