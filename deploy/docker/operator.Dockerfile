# The dispotify-operator image: a build stage that compiles with the project's own build, and a
# runtime stage from scratch with only the binary, its shared libraries and /etc's user (no shell).
#
#   podman build --format docker -f deploy/docker/operator.Dockerfile -t dispotify-operator .
#   deploy/docker/collect-rootfs.sh CTX/rootfs build/release/operator/dispotify-operator
#   podman build --format docker --build-arg ROOTFS=prebuilt -f deploy/docker/operator.Dockerfile CTX
#
# --format docker: the OCI format has no HEALTHCHECK, and podman would drop it.
# BASE: made here by make-base-image.sh (no registry); debian:bookworm-slim elsewhere.
ARG BASE=localhost/debian:bookworm
# Unset or compiled: the build stage below; prebuilt: rootfs/ from the build context. The default
# is written in the FROM (${ROOTFS:-compiled}), not here: buildah 1.28 decides which stages to
# build from --build-arg values only, and would skip the build stage it then needs.
ARG ROOTFS=

FROM ${BASE} AS compiled
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
RUN cmake --preset release && \
    cmake --build --preset release --target dispotify-operator && \
    deploy/docker/collect-rootfs.sh /rootfs build/release/operator/dispotify-operator

FROM scratch AS prebuilt
COPY rootfs/ /rootfs/

FROM ${ROOTFS:-compiled} AS rootfs
# An instruction, so that the stage is committed: buildah 1.28 fails a --layers=false build that
# copies from a stage without one.
ARG ROOTFS
LABEL org.dispotify.binaries=${ROOTFS:-compiled}

FROM scratch
ARG ROOTFS
# Where the binaries were compiled: in this build (compiled) or outside it (prebuilt).
LABEL org.dispotify.binaries=${ROOTFS:-compiled}
COPY --from=rootfs /rootfs/image/ /
USER 10001:10001
# In a cluster the operator reads its service account's token and CA from the files Kubernetes
# mounts; it writes nothing, so the root file system stays read-only.
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/dispotify-operator", "probe", "http://127.0.0.1:8081/healthz"]
ENTRYPOINT ["/usr/local/bin/dispotify-operator"]
