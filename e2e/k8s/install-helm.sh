#!/usr/bin/env bash
# Builds `helm` (the chart test, e2e/k8s/helm-check.sh) from its Go module at one pinned release
# and caches it under ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/helm-<version>/bin, so only the
# first run on a machine pays (about 3 minutes on 2 cores, module downloads included).
#
# helm.sh/helm/v3 has no replace directives: `go install module@version` builds it. The ldflags
# are those of helm's own Makefile: its version, and the Kubernetes version that `helm template`
# and `helm lint` assume without a cluster (the client-go minor its go.mod requires, major 1).
#
# --print-bin prints the directory that holds the binary. Idempotent and silent when cached.
# Environment: GO (default go).
set -euo pipefail

version=v3.22.1
module=helm.sh/helm/v3
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/helm-$version
bin=$cache/bin

if [[ "${1:-}" == "--print-bin" ]]; then
  echo "$bin"
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--print-bin]" >&2; exit 2; }

[[ -x "$bin/helm" && -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$module@$version" ]] && exit 0

go=${GO:-go}
command -v "$go" >/dev/null || {
  echo "install-helm: no '$go' on PATH (scripts/install-deps.sh installs golang-go)" >&2
  exit 1
}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
gomod=$("$go" mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[[ -f "$gomod" ]] || { echo "install-helm: cannot download $module@$version" >&2; exit 1; }
# Its go.mod names the Go it needs (v3.22 says 1.26.0): say so rather than fail in the compiler.
need=$(awk '$1 == "go" {print $2; exit}' "$gomod")
have=$("$go" env GOVERSION)
have=${have#go}
if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]]; then
  echo "install-helm: $module@$version needs Go $need or newer; '$go' is $have" >&2
  exit 1
fi
client_go=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$gomod")  # v0.<minor>.<patch>
k8s_minor=${client_go#v0.}
k8s_minor=${k8s_minor%%.*}
[[ "$k8s_minor" =~ ^[0-9]+$ ]] || { echo "install-helm: no k8s.io/client-go version in $gomod" >&2; exit 1; }

echo "install-helm: building helm $version into $bin (first run only)" >&2
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
ldflags="-s -w -X $module/internal/version.version=$version -X $module/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$k8s_minor"
done
# Outside any module (the checkout's own go.mod files must not matter).
(cd "$work" && GOFLAGS= CGO_ENABLED=0 GOBIN="$work/out" "$go" install -trimpath -ldflags "$ldflags" "$module/cmd/helm@$version")
mkdir -p "$bin"
mv -f "$work/out/helm" "$bin/helm"
echo "$module@$version" >"$bin/.stamp"
"$bin/helm" version --short >&2
