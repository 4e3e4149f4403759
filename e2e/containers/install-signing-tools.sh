#!/usr/bin/env bash
# Builds the two tools of the image test's signing step (e2e/containers/image-test.sh) from their
# Go modules at pinned releases, and caches each under ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify:
#   cosign   (github.com/sigstore/cosign/v2)              cosign-<version>/bin/cosign
#   registry (github.com/distribution/distribution/v3)     registry-<version>/bin/registry
# so only the first run on a machine pays (timings beside the pins).
#
# Why a registry: cosign signs an image in a registry (the signature is an OCI artifact stored
# beside the image, named after its digest); there is no way to sign an image that only lives in
# podman's store or an OCI layout directory. The test pushes the built images to this registry
# on 127.0.0.1, so what is signed and verified is the real image's digest.
#
# Why cosign v2 and not v3: v3 takes its services' configuration (a "signing config") from
# Sigstore's TUF repository by default, which this machine (like CI's) cannot reach, and refuses
# --tlog-upload=false with it; v2's key-based signing with --tlog-upload=false works offline as it
# is.
#
# Neither module has replace directives, so `go install module/cmd/x@version` builds it with the
# module's own go.sum (checked against the checksum database like any module).
#
#   install-signing-tools.sh                 builds what is missing; silent when both are cached
#   install-signing-tools.sh --print-cosign  the cosign binary's path
#   install-signing-tools.sh --print-registry the registry binary's path
# Environment: GO (default go).
set -euo pipefail

# First build of both, module downloads included: about 10 minutes on the shared 2-core machine
# (busy with other builds; cosign is most of it). Binaries: cosign 94 MB, registry 54 MB.
cosign_version=v2.6.5
cosign_module=github.com/sigstore/cosign/v2
registry_version=v3.1.2
registry_module=github.com/distribution/distribution/v3
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify
cosign_bin=$cache/cosign-$cosign_version/bin
registry_bin=$cache/registry-$registry_version/bin

case "${1:-}" in
  --print-cosign)
    echo "$cosign_bin/cosign"
    exit 0
    ;;
  --print-registry)
    echo "$registry_bin/registry"
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: $0 [--print-cosign | --print-registry]" >&2
    exit 2
    ;;
esac

cached() {  # cached BIN_DIR NAME MODULE@VERSION
  [[ -x "$1/$2" && -f "$1/.stamp" && "$(cat "$1/.stamp")" == "$3" ]]
}

# install BIN_DIR NAME MODULE VERSION PACKAGE LDFLAGS
install() {
  local bin=$1 name=$2 module=$3 version=$4 package=$5 ldflags=$6
  cached "$bin" "$name" "$module@$version" && return 0
  local go=${GO:-go}
  command -v "$go" >/dev/null || {
    echo "install-signing-tools: no '$go' on PATH (scripts/install-deps.sh installs golang-go)" >&2
    return 1
  }
  local gomod need have
  gomod=$(GOTOOLCHAIN=local GOFLAGS=-mod=mod "$go" mod download -json "$module@$version" |
    sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f "$gomod" ]] || { echo "install-signing-tools: cannot download $module@$version" >&2; return 1; }
  # Its go.mod names the Go it needs: say so rather than fail in the compiler.
  need=$(awk '$1 == "go" {print $2; exit}' "$gomod")
  have=$("$go" env GOVERSION)
  have=${have#go}
  if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]]; then
    echo "install-signing-tools: $module@$version needs Go $need or newer; '$go' is $have" >&2
    return 1
  fi
  echo "install-signing-tools: building $name $version into $bin (first run only)" >&2
  mkdir -p "$(dirname "$bin")"
  local work
  work=$(mktemp -d "$(dirname "$bin")/build.XXXXXX")
  # Outside any module (the checkout's own go.mod files must not matter); built aside and
  # renamed, so that a concurrent run never sees half a binary.
  (cd "$work" && GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 GOBIN="$work/out" \
    "$go" install -trimpath -ldflags "$ldflags" "$module/$package@$version") || {
    rm -rf "$work"
    return 1
  }
  mkdir -p "$bin"
  mv -f "$work/out/$name" "$bin/$name"
  rm -rf "$work"
  echo "$module@$version" >"$bin/.stamp"
}

# The version variables of cosign's own Makefile (sigs.k8s.io/release-utils), so `cosign version`
# names the release.
install "$cosign_bin" cosign "$cosign_module" "$cosign_version" cmd/cosign \
  "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$cosign_version -X sigs.k8s.io/release-utils/version.gitTreeState=clean"
install "$registry_bin" registry "$registry_module" "$registry_version" cmd/registry \
  "-s -w -X $registry_module/version.version=$registry_version"
