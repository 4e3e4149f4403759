#!/usr/bin/env bash
# The figure of issue 12: the home page's time to first render on a catalog of N songs (default
# 100,000), in headless chromium. Loading that many songs through the API would take hours, so the
# catalog is made by dispotify-search-bench (the search benchmark's generator, applied through the
# store in batches: tens of seconds) and a one-node cluster is started on it, as
# bench/run-search-bench.sh --http does; the node serves web/dist. Its gRPC is mutual TLS, as in a
# deployment (a CA and the node's certificate made by dispotify-pki), and users and roles are off
# (--auth false, explicitly: the figure is the catalog page's, not a login's). Not a ctest test: a
# program that prints `FIGURE home_first_contentful_paint_ms=... home_first_song_row_ms=... songs=N`.
#   e2e/web/first-render.sh [--songs N] [--build-dir build/release]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
songs=100000
build_dir=$repo/build/release
while (($#)); do
  case "$1" in
    --songs) songs=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
node_bin=$build_dir/node/server/dispotify-node
bench_bin=$build_dir/bench/dispotify-search-bench
pki_bin=$build_dir/cli/dispotify-pki/dispotify-pki
[[ -x "$node_bin" && -x "$bench_bin" && -x "$pki_bin" ]] ||
  { echo "first-render: build dispotify-node, dispotify-search-bench and dispotify-pki first" >&2; exit 1; }
base=$(mktemp -d "${TMPDIR:-/tmp}/dispotify-first-render.XXXXXX")
node_pid=""
cleanup() {
  if [[ -n "$node_pid" ]]; then kill -9 "$node_pid" 2>/dev/null || true; fi
  rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

cluster=first-render
mkdir -m 700 "$base/tls"
"$pki_bin" ca --out "$base/tls/ca" --cluster "$cluster" --days 2 >/dev/null
"$pki_bin" issue --ca "$base/tls/ca" --out "$base/tls/node-1" --cluster "$cluster" --node 1 --ip 127.0.0.1 \
  --days 2 >/dev/null
node_flags=(--cluster-id "$cluster" --node-id 1 --auth false --tls-cert-file "$base/tls/node-1/tls.crt"
  --tls-key-file "$base/tls/node-1/tls.key" --tls-ca-file "$base/tls/node-1/ca.crt")

echo "first-render: generating $songs songs (dispotify-search-bench)" >&2
"$bench_bin" --store embedded --songs "$songs" --db "$base/catalog.db" >"$base/bench.out"
# A data directory stamped by a first start (a node refuses data it did not create), then the
# catalog put in.
"$node_bin" --data-dir "$base/node" --listen "127.0.0.1:$(free_port)" --http-listen "" \
  --metrics-listen 127.0.0.1:0 --log-level warning "${node_flags[@]}" >"$base/stamp.log" 2>&1 &
node_pid=$!
sleep 2
kill "$node_pid" 2>/dev/null || true
wait "$node_pid" 2>/dev/null || true
rm -f "$base/node"/catalog.db*
mv "$base/catalog.db" "$base/node/catalog.db"
port=$(free_port)
"$node_bin" --data-dir "$base/node" --listen "127.0.0.1:$(free_port)" --http-listen "127.0.0.1:$port" \
  --metrics-listen 127.0.0.1:0 --log-level warning "${node_flags[@]}" --web-root "$repo/web/dist" \
  >"$base/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$node_pid" 2>/dev/null || { tail -20 "$base/node.log" >&2; exit 1; }
  sleep 0.2
done
"$here/run.sh" --measure "http://127.0.0.1:$port/" --artifacts "$build_dir/e2e/web/artifacts-first-render"
