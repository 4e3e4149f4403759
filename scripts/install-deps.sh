#!/usr/bin/env bash
# Installs every Debian package that Dispotify's build, tests and benchmarks need.
# Idempotent and non-interactive: safe to run on every invocation of the README's commands.
#   scripts/install-deps.sh               everything
#   scripts/install-deps.sh --build-only  only what compiling the binaries needs (the build stage of
#                                         the images, deploy/docker)
set -euo pipefail

build_packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config
  # node-to-node RPC
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # libraries named in DESIGN.md (GoogleTest too: CMake's configure step requires it)
  libboost1.74-dev libcpprest-dev libssl-dev libsqlite3-dev libpqxx-dev libyaml-cpp-dev
  prometheus-cpp-dev libtag1-dev libgtest-dev libgmock-dev
  # cover pictures, decoded and resized inside dispotify-tagger (node/api/tags/picture.h)
  libvips-dev
  # password hashes: Argon2id (node/auth/password.h)
  libargon2-dev
)
packages=(
  "${build_packages[@]}"
  # development tools
  ccache clang-format clang-tidy git
  # real peers for benchmarks and tests
  etcd-server etcd-client nginx-light postgresql prometheus
  # tools used by scripts
  curl procps iproute2 dnsmasq-base openssl
  # makes the real audio library (mp3, flac, ogg, wav with tags) of e2e/library_e2e_test.cc
  ffmpeg
  # the Python venv that holds PyPI test tools (scripts/install-test-tools.sh)
  python3 python3-venv
  # container images (deploy/docker, e2e/containers): a daemonless engine, runc (crun refuses to
  # start containers on our machines, ../shared/CONTAINERS.md) and debootstrap for the base image
  podman buildah runc debootstrap uidmap fuse-overlayfs slirp4netns
  # name resolution between containers (podman with netavark; its CNI backend has none), and the
  # iptables netavark programs a container network's NAT and forwarding with (without it every
  # `podman run` on a network fails with "netavark: No such file or directory")
  netavark aardvark-dns iptables
  # checks deploy/swarm/docker-stack.yml offline (no Docker engine: --no-install-recommends)
  docker-compose
  # PyYAML: e2e/containers/stack_service.py reads the stack file, and
  # deploy/monitoring/prometheus/generate-prometheusrule.py --check parses both rule files
  python3-yaml
)
# Go builds dispotify-lincheck (e2e/linearizability, go 1.19: Debian 12's golang-go is 1.19). A Go
# already on PATH (e.g. an upstream toolchain in /usr/local/go) is used as it is.
if ! command -v go >/dev/null; then packages+=(golang-go); fi
# Node.js and npm build the web UI (web/, the CMake target `web`) and install and run tsc with
# @grafana/schema (deploy/monitoring/schema-check). A Node.js already on PATH (e.g. from another
# repository, or nodesource) is used as it is: Debian's is installed only when node or npm is missing.
web_packages=()
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then web_packages=(nodejs npm); fi
packages+=("${web_packages[@]}")
case "${1:-}" in
  # The image's build stage: the node, its tagger and the web UI it serves.
  --build-only) packages=("${build_packages[@]}" "${web_packages[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
# Package post-install scripts must not start services (nginx, postgresql, etcd, prometheus):
# tests and benchmarks start their own instances on free ports.
policy_rc=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy_rc ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy_rc" >/dev/null
  "${sudo_cmd[@]}" chmod +x "$policy_rc"
  created_policy=1
fi
trap '[[ $created_policy == 1 ]] && "${sudo_cmd[@]}" rm -f "$policy_rc"' EXIT
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
