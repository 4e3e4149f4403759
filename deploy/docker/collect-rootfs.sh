#!/usr/bin/env bash
# Lays out the root file system of a runtime image: the given binaries in /usr/local/bin, every
# shared library they load (as ldd resolves them on this machine, which must be the Debian release
# the image is for), an /etc with the image's user (UID/GID 10001) and name resolution, and the
# mount points that stay writable with a read-only root (/data for the volume, /tmp for a tmpfs).
#   deploy/docker/collect-rootfs.sh DEST BINARY...
# DEST/image holds the tree owned by root; DEST/user-owned the directories the image's user must
# own (/data). The Dockerfiles copy the second with --chown: a COPY applies it to the items it
# copies, not to a destination directory it creates, so /data must be an item of its own.
# Runs in the build stage of the Dockerfiles, and on the build machine for the images made from
# already compiled binaries (the prebuilt path of the Dockerfiles, used by e2e/containers).
#
# Why copy the libraries rather than install Debian's runtime packages in a Debian runtime stage:
# the image then holds no shell, no package manager and no coreutils (nothing to exec into for an
# attacker), and only the libraries actually linked (the packages bring their own dependencies and
# docs). The price: the libraries are as current as the build stage's packages, so rebuild the
# images for Debian's security updates, as with any statically assembled image.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 DEST [--web DIR] BINARY..." >&2; exit 2; }
dest=$1/image
user_owned=$1/user-owned
shift
uid=10001
# --web DIR: the built web UI (web/dist), at the place the node looks for it next to its binary
# (node/api/static_files.h, FindWebRoot: <bin>/../share/dispotify/web).
web=""
if [[ "${1:-}" == "--web" ]]; then
  web=$2
  shift 2
  [[ -f "$web/index.html" ]] || { echo "collect-rootfs: $web has no index.html (build the target web)" >&2; exit 1; }
fi

# /run and /var/tmp: mount points the engine needs with a read-only root (podman's --read-only
# puts tmpfs there; secrets go below /run/secrets), which it cannot create itself on a read-only
# root.
mkdir -p "$dest/usr/local/bin" "$dest/etc" "$dest/tmp" "$dest/run/secrets" "$dest/var/tmp" "$user_owned/data"
if [[ -n "$web" ]]; then
  mkdir -p "$dest/usr/local/share/dispotify"
  cp -R "$web" "$dest/usr/local/share/dispotify/web"
  chmod -R a+rX,go-w "$dest/usr/local/share/dispotify/web"
fi
# Stripped: the release preset keeps debug information (RelWithDebInfo), two thirds of a binary's
# size; it stays in the build tree for whoever debugs a core file.
for bin in "$@"; do
  install -m 0755 "$bin" "$dest/usr/local/bin/$(basename "$bin")"
  strip --strip-debug "$dest/usr/local/bin/$(basename "$bin")"
done

# ldd's output is read whole (a `ldd | grep -q` under pipefail can fail on SIGPIPE and hide a match).
resolved=$(ldd "$@")
if grep -q 'not found' <<<"$resolved"; then
  grep 'not found' <<<"$resolved" >&2
  echo "collect-rootfs: a library is missing" >&2
  exit 1
fi

# Each library at the path ldd resolved (the loader included, at the path the binaries name), with
# symlinks followed: the copy holds the file under its SONAME, which is what the loader looks up.
# (With several binaries ldd heads each one's list with "PATH:", which is no library.)
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' <<<"$resolved" | sort -u)
for lib in $libs; do
  mkdir -p "$dest$(dirname "$lib")"
  cp -L "$lib" "$dest$lib"
done

# The image's SBOM (SPDX 2.3 JSON): the Debian package of every library just copied, and the npm
# packages bundled into the web UI (deploy/docker/sbom.sh).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(sed -n 's/^project(dispotify .*VERSION \([0-9.]*\)).*/\1/p' "$here/../../CMakeLists.txt")
mkdir -p "$dest/usr/local/share/doc/dispotify"
lock_args=()
[[ -n "$web" && -f "$web/../package-lock.json" ]] && lock_args=(--npm-lock "$web/../package-lock.json")
# shellcheck disable=SC2086 # $libs: one path per word
"$here/sbom.sh" "$dest/usr/local/share/doc/dispotify/sbom.spdx.json" "$(basename "$1")" "${version:-0.0.0}" \
  "${lock_args[@]}" $libs

# glibc 2.36 has the files and dns name services built in (no libnss_*.so to copy); the engine
# mounts /etc/hosts and /etc/resolv.conf.
printf 'root:x:0:0:root:/:/nonexistent\ndispotify:x:%s:%s:dispotify:/data:/nonexistent\n' "$uid" "$uid" >"$dest/etc/passwd"
printf 'root:x:0:\ndispotify:x:%s:\n' "$uid" >"$dest/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$dest/etc/nsswitch.conf"
chmod 1777 "$dest/tmp" "$dest/var/tmp"
chmod 0755 "$user_owned/data"
