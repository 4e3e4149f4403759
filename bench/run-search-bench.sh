#!/usr/bin/env bash
# Search benchmark: the embedded (SQLite) store and the PostgreSQL store, same machine, same run.
#
# Runs dispotify-search-bench against the embedded store (its database under the base directory),
# then starts a throwaway PostgreSQL server (initdb + pg_ctl in the same base directory, loopback
# on a free port, fsync on) and runs the same generator, query mix and seed against it. The sides
# run one after the other, so each has the whole machine. Prints each side's output and, last,
# the two summary lines:
#   search: store=embedded songs=<n> p50_ms=<x> p99_ms=<y>
#   search: store=postgres songs=<n> p50_ms=<x> p99_ms=<y>
#
# Usage: bench/run-search-bench.sh [--songs 1000000] [--batch 1000] [--bench-binary PATH]
#          [--base-dir DIR] [--only embedded|postgres] [--keep] [--bench-flags "..."]
#          [--pg-flags "..."] [--http] [--node-binary PATH] [--http-bench-binary PATH]
# --http: after each store is loaded, a one-node dispotify-node is started on that very catalog
# (the loaded SQLite file in a fresh data directory / the loaded PostgreSQL database) and searches
# go through its REST API with 1 and 32 concurrent clients (dispotify-http-bench), with queries
# made from songs sampled through the API: exact artist or title words, 4-letter prefixes and
# one-typo words. One line per store and client count:
#   search_http: store=<s> songs=<n> clients=<c> p50_ms=<x> p99_ms=<y>
# and the node's resident memory, idle after start and after the searches (goal: idle < 100 MB
# with 100,000 songs):
#   rss: store=<s> songs=<n> idle rss_mib=<x> anon_mib=<a> file_mib=<f>; after_search ...
# --bench-flags are passed to both runs (e.g. "--slow-ms 20"); --pg-flags are server options for
# pg_ctl -o (e.g. "-c shared_buffers=512MB"). PostgreSQL binaries: $DISPOTIFY_PG_BINDIR, else
# the newest /usr/lib/postgresql/<v>/bin, else PATH. As root, the server runs as the `postgres`
# user ($DISPOTIFY_PG_USER), as PostgreSQL refuses to run as root.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

songs=1000000
batch=1000
bench_binary="$repo/build/release/bench/dispotify-search-bench"
base_parent=${TMPDIR:-/tmp}
only=""
keep=0
bench_flags=""
pg_flags=""
http=0
node_binary="$repo/build/release/node/server/dispotify-node"
http_bench_binary="$repo/build/release/bench/dispotify-http-bench"
node_pid=""

usage() {
  sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --songs) songs=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --bench-binary) bench_binary=$2; shift 2 ;;
    --base-dir) base_parent=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --bench-flags) bench_flags=$2; shift 2 ;;
    --pg-flags) pg_flags=$2; shift 2 ;;
    --http) http=1; shift ;;
    --node-binary) node_binary=$2; shift 2 ;;
    --http-bench-binary) http_bench_binary=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done
read -r -a bench_extra <<<"$bench_flags"

log() { echo "[search-bench] $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x "$bench_binary" ]] || die "benchmark not found: $bench_binary (build dispotify-search-bench, or pass --bench-binary)"
case "$only" in ""|embedded|postgres) ;; *) die "--only takes embedded or postgres" ;; esac
if [[ $http == 1 ]]; then
  [[ -x "$node_binary" ]] || die "node not found: $node_binary (pass --node-binary)"
  [[ -x "$http_bench_binary" ]] || die "HTTP load generator not found: $http_bench_binary"
fi

pg_bin=""
if [[ "$only" != embedded ]]; then
  if [[ -n "${DISPOTIFY_PG_BINDIR:-}" ]]; then
    pg_bin=$DISPOTIFY_PG_BINDIR
  else
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
      if [[ -x "$d/initdb" ]]; then pg_bin=$d; break; fi
    done
    if [[ -z "$pg_bin" ]] && command -v initdb >/dev/null; then pg_bin=$(dirname "$(command -v initdb)"); fi
  fi
  for b in initdb pg_ctl postgres; do
    [[ -x "$pg_bin/$b" ]] || die "PostgreSQL server binary '$b' not found (Debian package postgresql; or set DISPOTIFY_PG_BINDIR)"
  done
fi

base=$(mktemp -d "$base_parent/search-bench.XXXXXX")
pg_dir="$base/postgres"
pg_running=0
as_pg=()
if [[ "$only" != embedded && $(id -u) -eq 0 ]]; then
  pg_user=${DISPOTIFY_PG_USER:-postgres}
  id "$pg_user" >/dev/null 2>&1 || die "running as root: PostgreSQL needs a non-root user to run as ('$pg_user' does not exist)"
  as_pg=(setpriv --reuid="$pg_user" --regid="$(id -g "$pg_user")" --init-groups --)
fi

cleanup() {
  if [[ -n "$node_pid" ]]; then kill -9 "$node_pid" 2>/dev/null || true; fi
  if [[ $pg_running == 1 ]]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [[ $keep == 1 ]]; then
    log "kept $base"
  else
    rm -rf "$base"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run_bench() {
  local side=$1
  shift
  log "running $side: songs=$songs batch=$batch"
  "$bench_binary" --store "$side" --songs "$songs" --batch "$batch" "$@" "${bench_extra[@]}" | tee "$base/$side.out"
}

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

# rss_mib PID: "rss_mib=<total> anon_mib=<heap, stacks> file_mib=<mapped file pages>". Mapped
# pages of the database file are the kernel's page cache, shared and reclaimable; anon is what
# the process itself holds.
rss_mib() {
  awk '/^VmRSS:/ {t = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2}
       END {printf "rss_mib=%d anon_mib=%d file_mib=%d", t / 1024, a / 1024, f / 1024}' "/proc/$1/status"
}

# http_search STORE [node flags...]: a one-node cluster over the loaded catalog, searched through
# its REST API. For the embedded store the caller has put the catalog at $base/node/catalog.db.
http_search() {
  local side=$1
  shift
  local grpc_port http_port
  grpc_port=$(free_port)
  http_port=$(free_port)
  "$node_binary" --data-dir "$base/node" --listen "127.0.0.1:$grpc_port" --http-listen "127.0.0.1:$http_port" \
    --metrics-listen 127.0.0.1:0 --log-level warning --auth=false "$@" >"$base/node-$side.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 600); do
    curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
    kill -0 "$node_pid" 2>/dev/null || { tail -20 "$base/node-$side.log" >&2; die "$side: the node exited"; }
    sleep 0.2
  done
  curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null || die "$side: the node never became ready"
  sleep 3  # idle: the start-up work (catalog open, first health checks) is over
  local rss_idle
  rss_idle=$(rss_mib "$node_pid")
  # Queries from 1,000 songs of the catalog (file ids are random, so the first pages are a sample).
  curl -fs "http://127.0.0.1:$http_port/music/songs?limit=1000" | python3 -c '
import json, random, sys
random.seed(7)
words = []
for s in json.load(sys.stdin)["items"]:
    for field in ("title", "artist", "album"):
        words += [w for w in s[field].split() if len(w) >= 4 and w.isalpha()]
out = []
for i in range(3000):
    w = random.choice(words).lower()
    kind = i % 4
    if kind == 0: out.append(w)                                     # exact word
    elif kind == 1: out.append(w + " " + random.choice(words).lower())  # two words
    elif kind == 2: out.append(w[:4])                               # prefix
    else:                                                            # one typo: swap two letters
        j = random.randrange(len(w) - 1)
        out.append(w[:j] + w[j + 1] + w[j] + w[j + 2:])
print("\n".join(out))
' >"$base/queries.txt"
  local clients
  for clients in 1 32; do
    "$http_bench_binary" search --target "127.0.0.1:$http_port" --threads "$clients" --duration 10 \
      --queries "$base/queries.txt" --label "search_http_${side}_c$clients" | tee -a "$base/$side-http.out"
  done
  local rss_loaded
  rss_loaded=$(rss_mib "$node_pid")
  kill "$node_pid" 2>/dev/null || true
  wait "$node_pid" 2>/dev/null || true
  node_pid=""
  awk -v side="$side" -v songs="$songs" '{
      c = ""; p50 = ""; p99 = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^threads=/) c = substr($i, 9)
        if ($i ~ /^p50_ms=/) p50 = substr($i, 8)
        if ($i ~ /^p99_ms=/) p99 = substr($i, 8)
      }
      print "search_http: store=" side " songs=" songs " clients=" c " p50_ms=" p50 " p99_ms=" p99
    }' "$base/$side-http.out" >"$base/$side-http.summary"
  echo "rss: store=$side songs=$songs idle $rss_idle; after_search $rss_loaded" >>"$base/$side-http.summary"
  rm -rf "$base/node"
}

# A node's data directory, stamped by a first start on an empty directory (a node refuses data it
# did not create), then stopped; the catalog is put in afterwards.
prepare_node_dir() {
  local grpc_port
  grpc_port=$(free_port)
  rm -rf "$base/node"
  "$node_binary" --data-dir "$base/node" --listen "127.0.0.1:$grpc_port" --http-listen "" \
    --metrics-listen 127.0.0.1:0 --log-level warning "$@" >"$base/node-stamp.log" 2>&1 &
  node_pid=$!
  sleep 2
  kill "$node_pid" 2>/dev/null || true
  wait "$node_pid" 2>/dev/null || true
  node_pid=""
  rm -f "$base/node"/catalog.db*
}

if [[ "$only" != postgres ]]; then
  mkdir -p "$base/embedded"
  run_bench embedded --db "$base/embedded/catalog.db"
  if [[ $http == 1 ]]; then
    prepare_node_dir
    mv "$base/embedded/catalog.db" "$base/node/catalog.db"
    http_search embedded
  fi
  rm -rf "$base/embedded"  # free the disk before the other side runs
fi

if [[ "$only" != embedded ]]; then
  mkdir -p "$pg_dir"
  if [[ ${#as_pg[@]} -gt 0 ]]; then chown "$pg_user:" "$base" "$pg_dir"; fi
  log "initdb in $pg_dir/data"
  if ! (cd "$pg_dir" && "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$pg_dir/initdb.log" 2>&1); then
    rm -rf "$pg_dir/data"
    (cd "$pg_dir" && "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 \
      --locale=C >>"$pg_dir/initdb.log" 2>&1) || { cat "$pg_dir/initdb.log" >&2; die "initdb failed"; }
  fi
  # A free port: not listening now (ss), and retried if the server still loses the race.
  started=0
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then continue; fi
    if (cd "$pg_dir" && "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 120 \
          -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=on $pg_flags" start >/dev/null); then
      started=1
      break
    fi
    grep -q "could not bind" "$pg_dir/server.log" || { tail -20 "$pg_dir/server.log" >&2; die "pg_ctl start failed"; }
  done
  [[ $started == 1 ]] || die "no free port for PostgreSQL after 5 attempts"
  pg_running=1
  log "PostgreSQL $("$pg_bin/postgres" --version | awk "{print \$3}") on 127.0.0.1:$port"
  "$pg_bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE catalog" >/dev/null
  run_bench postgres --conninfo "host=127.0.0.1 port=$port user=postgres dbname=catalog"
  db_mb=$("$pg_bin/psql" -X -At -h 127.0.0.1 -p "$port" -U postgres -d catalog \
          -c "SELECT pg_database_size('catalog') / 1000000")
  echo "size: store=postgres db_mb=$db_mb"
  if [[ $http == 1 ]]; then
    pg_url="host=127.0.0.1 port=$port user=postgres dbname=catalog"
    prepare_node_dir --metadata-store postgres --postgres-url "$pg_url"
    http_search postgres --metadata-store postgres --postgres-url "$pg_url"
  fi
fi

echo
for side in embedded postgres; do
  if [[ -f "$base/$side.out" ]]; then grep '^search: ' "$base/$side.out" || die "$side: no search line"; fi
done
for side in embedded postgres; do
  if [[ -f "$base/$side-http.summary" ]]; then cat "$base/$side-http.summary"; fi
done
