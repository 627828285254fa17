# Offline stand-in for python:*-slim: Debian's python3 (bookworm: 3.11, bullseye: 3.9).
ARG DEBIAN_IMAGE=asgilab-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* && ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
