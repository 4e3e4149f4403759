#!/usr/bin/env bash
# Builds the operator e2e's test kubelet (e2e/k8s/testkubelet, Go) into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/bin/dispotify-testkubelet
# and rebuilds it only when its stamp changes: the toolchain, go.mod, go.sum and every non-test Go
# source (paths relative to the module, so every checkout of the same sources shares the binary).
# Its dependencies (client-go, api, apimachinery v0.37.2) are in the module cache once
# e2e/k8s/install-k8s.sh has run; otherwise the Go module proxy supplies them (go.sum pins them).
#   build-testkubelet.sh           build if needed (silent when up to date)
#   build-testkubelet.sh --print   print the binary's path
# Environment: GO (default go).
set -euo pipefail

bin=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/bin/dispotify-testkubelet
if [[ "${1:-}" == --print ]]; then
  echo "$bin"
  exit 0
fi
go=${GO:-go}
src="$(cd "$(dirname "$0")/testkubelet" && pwd)"
command -v "$go" >/dev/null || { echo "build-testkubelet: no '$go' on PATH" >&2; exit 1; }

stamp="$bin.stamp"
want="dispotify-testkubelet $("$go" env GOVERSION) $(
  cd "$src" &&
    find . -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum | LC_ALL=C sort |
    xargs sha256sum | sha256sum | cut -d' ' -f1
)"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "build-testkubelet: building $bin" >&2
mkdir -p "$(dirname "$bin")"
# Built aside and renamed, so that a running kubelet or a concurrent build never sees half a binary.
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$src" && CGO_ENABLED=0 "$go" build -mod=readonly -buildvcs=false -trimpath -o "$tmp" .)
mv -f "$tmp" "$bin"
echo "$want" >"$stamp"
