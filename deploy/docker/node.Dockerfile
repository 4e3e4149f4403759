# The dispotify-node image: a build stage that compiles with the project's own build, and a runtime
# stage from scratch with only the binaries, their shared libraries and /etc's user (no shell).
#
#   podman build --format docker -f deploy/docker/node.Dockerfile -t dispotify-node .
#       compiles inside the build stage (context: the repository)
#   deploy/docker/collect-rootfs.sh CTX/rootfs --web web/dist build/release/node/server/dispotify-node \
#       build/release/node/server/dispotify-tagger
#   podman build --format docker --build-arg ROOTFS=prebuilt -f deploy/docker/node.Dockerfile CTX
#       the same runtime stage from binaries compiled outside (CI: e2e/containers)
#
# --format docker: the OCI format has no HEALTHCHECK, and podman would drop it.
# BASE: made here by make-base-image.sh (no registry); debian:bookworm-slim elsewhere.
ARG BASE=localhost/debian:bookworm
# Unset or compiled: the build stage below; prebuilt: rootfs/ from the build context. The default
# is written in the FROM (${ROOTFS:-compiled}), not here: buildah 1.28 decides which stages to
# build from --build-arg values only, and would skip the build stage it then needs.
ARG ROOTFS=

FROM ${BASE} AS compiled
# The packages first, in a layer of their own: a source change does not reinstall them.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# The node runs the tagger (TagLib in a child process with limits) from its own directory, and
# serves the web UI from /usr/local/share/dispotify/web.
RUN cmake --preset release && \
    cmake --build --preset release --target dispotify-node dispotify-tagger web && \
    deploy/docker/collect-rootfs.sh /rootfs --web web/dist build/release/node/server/dispotify-node \
      build/release/node/server/dispotify-tagger

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
# The data directory belongs to the node's user, so that a new named volume mounted there (which
# the engine fills from the image, ownership included) is writable by it.
COPY --from=rootfs --chown=10001:10001 /rootfs/user-owned/ /
USER 10001:10001
WORKDIR /data
# Every address on the container's interfaces: the engine publishes the ports. Peers, node id and
# the rest come from the environment (docs/operations.md, deploy/swarm/docker-stack.yml); in a
# cluster DISPOTIFY_ADVERTISE must name the address peers reach, as 0.0.0.0 is none.
ENV DISPOTIFY_DATA_DIR=/data \
    DISPOTIFY_LISTEN=0.0.0.0:7001 \
    DISPOTIFY_HTTP_LISTEN=0.0.0.0:8080 \
    DISPOTIFY_METRICS_LISTEN=0.0.0.0:9090
EXPOSE 7001 8080 9090
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/dispotify-node", "probe", "http://127.0.0.1:8080/healthz"]
# The node handles SIGTERM itself (a graceful stop) as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dispotify-node"]
