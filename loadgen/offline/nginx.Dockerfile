# Offline stand-in for nginx:1.22.1: Debian bookworm's nginx-light (1.22.1).
ARG DEBIAN_IMAGE=asgilab-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
CMD ["nginx", "-g", "daemon off;"]
