#!/usr/bin/env bash
# Builds ORY Hydra (the OIDC provider of e2e/oidc_e2e_test.cc) from its Go module at one pinned
# release and caches it under ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/hydra-<version>/bin, so
# only the first run on a machine pays (see the timing below the pin).
#
# Why not `go install module@version` as for helm: Hydra's go.mod has replace directives (its own
# client under ./internal/httpclient, a fork of gobuffalo/pop), which `go install` refuses and a
# consumer module would silently drop. So the module's source (downloaded and checked against
# go.sum like any module) is copied aside and built as the main module, with its own go.mod and
# go.sum, exactly as Hydra's Makefile does: tags sqlite,sqlite_omit_load_extension (the in-memory
# SQLite DSN the test uses needs mattn/go-sqlite3, hence CGO).
#
# --print-bin prints the directory that holds the binary. Idempotent and silent when cached.
# Environment: GO (default go).
set -euo pipefail

version=v2.3.0 # first build: about 6 minutes on 2 cores, binary about 60 MB (see the report of issue 13)
module=github.com/ory/hydra/v2
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/hydra-$version
bin=$cache/bin

if [[ "${1:-}" == "--print-bin" ]]; then
  echo "$bin"
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--print-bin]" >&2; exit 2; }

[[ -x "$bin/hydra" && -f "$bin/.stamp" && "$(cat "$bin/.stamp")" == "$module@$version" ]] && exit 0

go=${GO:-go}
command -v "$go" >/dev/null || {
  echo "install-hydra: no '$go' on PATH (scripts/install-deps.sh installs golang-go)" >&2
  exit 1
}
command -v "${CC:-cc}" >/dev/null || {
  echo "install-hydra: no C compiler for go-sqlite3 (CGO)" >&2
  exit 1
}
export GOTOOLCHAIN=local
src=$(GOFLAGS=-mod=mod "$go" mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[[ -f "$src/go.mod" ]] || { echo "install-hydra: cannot download $module@$version" >&2; exit 1; }
need=$(awk '$1 == "go" {print $2; exit}' "$src/go.mod")
have=$("$go" env GOVERSION)
have=${have#go}
if [[ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]]; then
  echo "install-hydra: $module@$version needs Go $need or newer; '$go' is $have" >&2
  exit 1
fi

echo "install-hydra: building hydra $version into $bin (first run only)" >&2
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src" "$work/src"
chmod -R u+w "$work/src" # the module cache is read-only
# ./internal/httpclient is a module of its own, so the module zip leaves it out: take the released
# client that go.mod requires from the proxy instead (checked against the checksum database).
(cd "$work/src" && "$go" mod edit -dropreplace github.com/ory/hydra-client-go/v2)
ldflags="-s -w -X $module/driver/config.Version=$version -X $module/driver/config.Commit=$version"
# -mod=mod: go.sum pins every module; the module proxy (or the module cache, once filled)
# supplies them (the copy has no vendor directory).
(cd "$work/src" && GOFLAGS=-mod=mod CGO_ENABLED=1 "$go" build -trimpath \
  -tags sqlite,sqlite_omit_load_extension -ldflags "$ldflags" -o "$work/hydra" .)
mkdir -p "$bin"
mv -f "$work/hydra" "$bin/hydra"
echo "$module@$version" >"$bin/.stamp"
"$bin/hydra" version >&2 || true
