# Offline stand-in for haproxy:2.6.12: Debian bookworm's haproxy (2.6).
ARG DEBIAN_IMAGE=asgilab-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
CMD ["haproxy", "-v"]
