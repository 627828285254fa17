# Offline stand-in for rust:*-slim in loadgen/Dockerfile's oha stage: no Rust toolchain, only
# the oha binary that cargo built on the host (`make setup`: .lab/tools/oha-<version>), at the
# path the stage's `test -x /oha/bin/oha` looks for. The build context holds that binary.
ARG DEBIAN_IMAGE=asgilab-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
COPY oha /oha/bin/oha
RUN chmod 0755 /oha/bin/oha && /oha/bin/oha --version
CMD ["/oha/bin/oha", "--version"]
