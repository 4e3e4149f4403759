#!/usr/bin/env bash
# Builds the real Kubernetes control-plane binaries the operator's end-to-end test runs
# (kube-apiserver, kube-controller-manager, kubectl) from their Go module at one pinned release,
# and caches them under ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/k8s-<version>/bin, so only the
# first run on a machine pays (about 11 minutes on 2 cores, 2.6 GB peak memory).
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces its staging modules with
# ./staging paths. A throwaway module that requires it and replaces each staging module with its
# published v0.<minor>.<patch> twin builds the same commands (../shared/K8S.md).
#
# --print-bin prints the directory that holds the binaries. Idempotent and silent when cached.
# Environment: GO (default go).
set -euo pipefail

version=v1.37.2
staging_version=v0.${version#v1.}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/k8s-$version
bin=$cache/bin
tools=(kube-apiserver kube-controller-manager kubectl)

if [[ "${1:-}" == "--print-bin" ]]; then
  echo "$bin"
  exit 0
fi

have_all() {
  local t
  for t in "${tools[@]}"; do [[ -x "$bin/$t" ]] || return 1; done
  [[ -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$version ${tools[*]}" ]]
}
have_all && exit 0

go=${GO:-go}
command -v "$go" >/dev/null || {
  echo "install-k8s: no '$go' on PATH (scripts/install-deps.sh installs golang-go)" >&2
  exit 1
}
# k8s.io/kubernetes v1.37 says `go 1.26.0` (and `go mod edit -tool` needs 1.24): Debian 12's
# golang-go (1.19) cannot build it; a machine of ours comes with Go 1.26 in /usr/local/go.
goversion=$("$go" env GOVERSION 2>/dev/null || true)
gominor=${goversion#go1.}
gominor=${gominor%%[!0-9]*}
if [[ ! "$gominor" =~ ^[0-9]+$ ]] || ((gominor < 26)); then
  echo "install-k8s: $version needs Go 1.26 or newer; '$go' is ${goversion:-unknown}" >&2
  exit 1
fi
command -v etcd >/dev/null || echo "install-k8s: warning: no etcd on PATH (Debian: etcd-server)" >&2

echo "install-k8s: building ${tools[*]} $version into $bin (first run only)" >&2
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
"$go" mod init dispotify-k8s-tools >/dev/null 2>&1
"$go" mod edit -require="k8s.io/kubernetes@$version"
gomod=$("$go" mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[[ -f "$gomod" ]] || { echo "install-k8s: cannot read k8s.io/kubernetes@$version go.mod" >&2; exit 1; }
# Every staging module is required as v0.0.0 and replaced by a ./staging path upstream.
while read -r mod; do
  "$go" mod edit -replace="$mod=$mod@$staging_version"
done < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u)
for t in "${tools[@]}"; do "$go" mod edit -tool="k8s.io/kubernetes/cmd/$t"; done
"$go" mod tidy >/dev/null 2>&1 || "$go" mod tidy

major=1
minor=${version#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean"
done
mkdir -p "$work/out"
pkgs=()
for t in "${tools[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$t"); done
CGO_ENABLED=0 "$go" build -trimpath -ldflags "$ldflags" -o "$work/out/" "${pkgs[@]}"

mkdir -p "$bin"
for t in "${tools[@]}"; do mv -f "$work/out/$t" "$bin/$t"; done
echo "$version ${tools[*]}" >"$bin/.stamp"
"$bin/kubectl" version --client >&2
