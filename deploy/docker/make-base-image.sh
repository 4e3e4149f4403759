#!/usr/bin/env bash
# Makes the base image of our Dockerfiles, localhost/debian:bookworm, without any image registry:
# debootstrap --variant=minbase bookworm from the Debian mirror apt already uses, imported with
# `podman import`. The root file system is cached as a tarball keyed by month,
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/images/debian-bookworm-minbase-YYYY-MM.tar,
# so CI debootstraps (about 2.5 minutes) once a month and otherwise imports (seconds); an image
# already present is kept as it is.
#   deploy/docker/make-base-image.sh [--print-tarball]
# Needs root (debootstrap), podman and debootstrap (scripts/install-deps.sh installs them).
# Environment: DISPOTIFY_BASE_IMAGE (default localhost/debian:bookworm), DEBIAN_MIRROR (default:
# the first deb.debian.org-style URI of apt's sources), CONTAINERS_CONF (default: containers.conf
# beside this script).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
image=${DISPOTIFY_BASE_IMAGE:-localhost/debian:bookworm}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/images
tarball="$cache/debian-bookworm-minbase-$(date -u +%Y-%m).tar"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

if [[ "${1:-}" == --print-tarball ]]; then
  echo "$tarball"
  exit 0
fi

if podman image exists "$image"; then
  exit 0
fi

if [[ ! -s "$tarball" ]]; then
  [[ $(id -u) -eq 0 ]] || { echo "make-base-image: debootstrap needs root" >&2; exit 1; }
  mirror=${DEBIAN_MIRROR:-}
  if [[ -z "$mirror" ]]; then
    # The mirror apt is configured with (deb822 sources first, then the one-line format).
    mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [[ -n "$mirror" ]] || mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
    [[ -n "$mirror" ]] || mirror=http://deb.debian.org/debian
  fi
  echo "make-base-image: debootstrap bookworm (minbase) from $mirror into $tarball" >&2
  mkdir -p "$cache"
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs" "$tarball.tmp.$$"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  # Package lists and downloaded .debs are not part of a base image (builds run apt-get update).
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  # Written aside and renamed: a concurrent or interrupted run never sees half a tarball.
  tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp.$$" .
  mv -f "$tarball.tmp.$$" "$tarball"
  # Last month's tarballs are stale now.
  find "$cache" -maxdepth 1 -name 'debian-bookworm-minbase-*.tar' ! -name "$(basename "$tarball")" -delete
fi

podman import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
echo "make-base-image: imported $image from $tarball" >&2
