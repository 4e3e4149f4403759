#!/usr/bin/env bash
# Builds the operator e2e's test kubelet (e2e/k8s/testkubelet, Go) into
#   ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/bin/dispotify-testkubelet-<hash of its sources>
# and builds it only when that is missing or its stamp differs: the toolchain, go.mod, go.sum and every non-test Go
# source (paths relative to the module, so every checkout of the same sources shares the binary).
# Its dependencies (client-go, api, apimachinery v0.37.2) are in the module cache once
# e2e/k8s/install-k8s.sh has run; otherwise the Go module proxy supplies them (go.sum pins them).
#   build-testkubelet.sh           build if needed (silent when up to date)
#   build-testkubelet.sh --print   the same, then print the binary's path (build output on stderr)
# Environment: GO (default go).
set -euo pipefail

go=${GO:-go}
src="$(cd "$(dirname "$0")/testkubelet" && pwd)"
command -v "$go" >/dev/null || { echo "build-testkubelet: no '$go' on PATH" >&2; exit 1; }

want="dispotify-testkubelet $("$go" env GOVERSION) $(
  cd "$src" &&
    find . -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum | LC_ALL=C sort |
    xargs sha256sum | sha256sum | cut -d' ' -f1
)"
# One binary per source version: checkouts of different versions (worktrees, branches) on one
# machine never replace each other's kubelet.
hash=$(echo "$want" | sha256sum | cut -c1-12)
bin=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/bin/dispotify-testkubelet-$hash
stamp="$bin.stamp"
print=0
[[ "${1:-}" == --print ]] && print=1
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  ((print)) && echo "$bin"
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
((print)) && echo "$bin"
exit 0
