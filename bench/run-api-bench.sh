#!/usr/bin/env bash
# REST API benchmark: streaming against nginx, uploads with R=3, search over HTTP, failover.
#
# Builds nothing. Starts everything itself on loopback (free ports, one temp base directory) and
# stops it on exit, failure or Ctrl-C included. Prints one line per figure on stdout (progress on
# stderr); the parts run one after the other, each with the whole machine:
#   stream    the same 64 MiB MP3 from nginx (sendfile on, own config under the base directory)
#             and from a 3-node cluster with R=2: from a node holding a copy (sendfile) and from
#             the node without one (it proxies from a replica; reported, not in the ratio); full
#             reads and 1 MiB ranges at random offsets, 1 and 32 clients, --duration s each.
#   upload    a 3-node cluster with R=3: 5 MiB and 64 MiB files, 1 uploader and 4 uploaders.
#   search    the same cluster: tiny MP3s uploaded through the API with generated title, artist and
#             album for --search-seconds (at most --search-songs), then p50/p99 of searches with 1
#             and 32 clients. Loading 1,000,000 songs through the API does not fit in a run:
#             bench/run-search-bench.sh measures the stores themselves at 1,000,000 songs.
#   reads     the same cluster: --reads-songs tiny songs (at most --reads-seconds of uploads), then
#             searches and song gets through a follower, linearizable (the default: a read-index
#             round through the leader, shared by concurrent reads) and with the stale opt-in
#             (?consistency=stale, the node's own catalog), 1 and 32 clients, --reads-duration s
#             each; p50/p99 and the ratio linearizable/stale; and the follower's read-index rounds
#             per read at 32 clients (its dispotify_catalog_read_index_rounds_total over
#             dispotify_catalog_linearizable_reads_total).
#   failover  the same cluster: uploads of a small file in a loop through a follower; the load
#             generator kill -9s the leader and reports the time until an upload started after the
#             kill succeeds; the node is restarted between runs (--failover-runs).
# Last line (when the stream part ran), the figure compared with nginx:
#   stream: dispotify_MBps=<x> nginx_MBps=<y> ratio=<x/y>
# where x and y are the mean over the four cases (full/range x 1/32 clients) of the node serving
# its own copy and of nginx.
#
# Usage: bench/run-api-bench.sh [--node-binary PATH] [--bench-binary PATH] [--base-dir DIR]
#          [--only stream,upload,search,reads,failover] [--duration 5] [--search-seconds 180]
#          [--search-songs 1000000] [--search-duration 10] [--reads-songs 2000] [--reads-seconds 60]
#          [--reads-duration 10] [--failover-runs 3] [--keep]
#          [--node-flags "..."]
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

node_binary="$repo/build/release/node/server/dispotify-node"
bench_binary="$repo/build/release/bench/dispotify-http-bench"
base_parent=${TMPDIR:-/tmp}
only="stream,upload,search,reads,failover"
duration=5
search_seconds=180
search_songs=1000000
search_duration=10
reads_songs=2000
reads_seconds=60
reads_duration=10
failover_runs=3
keep=0
node_flags=""

usage() {
  sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --node-binary) node_binary=$2; shift 2 ;;
    --bench-binary) bench_binary=$2; shift 2 ;;
    --base-dir) base_parent=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --search-seconds) search_seconds=$2; shift 2 ;;
    --search-songs) search_songs=$2; shift 2 ;;
    --search-duration) search_duration=$2; shift 2 ;;
    --reads-songs) reads_songs=$2; shift 2 ;;
    --reads-seconds) reads_seconds=$2; shift 2 ;;
    --reads-duration) reads_duration=$2; shift 2 ;;
    --failover-runs) failover_runs=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --node-flags) node_flags=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done

read -r -a node_extra <<<"$node_flags"

log() { echo "[api-bench] $*" >&2; }
die() { log "error: $*"; exit 1; }
wants() { [[ ",$only," == *",$1,"* ]]; }

[[ -x "$bench_binary" ]] || die "load generator not found: $bench_binary (build dispotify-http-bench, or pass --bench-binary)"
[[ -x "$node_binary" ]] || die "dispotify-node not found: $node_binary (pass --node-binary)"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"
if wants stream; then
  command -v nginx >/dev/null || die "nginx not found (Debian package nginx-light)"
fi

# The nodes must not pick up settings from the caller's environment.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^DISPOTIFY_' || true)

base=$(mktemp -d "$base_parent/api-bench.XXXXXX")
chmod 755 "$base"  # nginx workers (another user unless we are root) read the file under it
pids=()
nginx_pid=""

# Drops a reaped child from pids[], so that cleanup never signals a reused pid.
forget_pid() {
  local keep_pids=() p
  for p in "${pids[@]}"; do [[ "$p" == "$1" ]] || keep_pids+=("$p"); done
  pids=("${keep_pids[@]}")
}

stop_pid() {
  local pid=$1 sig=${2:-TERM}
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  pids=()
  if [[ -n "$nginx_pid" ]]; then
    stop_pid "$nginx_pid"  # TERM: fast shutdown, the master stops its workers
    nginx_pid=""
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  if [[ $keep -eq 1 || ($rc -ne 0 && $rc -ne 130 && $rc -ne 143) ]]; then
    log "logs and data kept in $base"
  else
    rm -rf "$base"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints N distinct free loopback ports (held open together so they differ; a small race remains).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# json_get URL EXPR: evaluates the Python expression EXPR on the JSON document `d` at URL.
json_get() {
  curl -fsS --max-time 5 "$1" 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)" 2>/dev/null
}

field() {  # field NAME LINE
  sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"
}

load_note() { log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

# --- A 3-node cluster -----------------------------------------------------------------------------
# Globals of the running cluster: c_name, c_dir, c_r, c_peers, c_grpc[], c_metrics[], c_http[],
# c_pid[] (indexed by node id 1-3).
c_name="" c_dir="" c_r=3 c_peers=""
c_grpc=() c_metrics=() c_http=() c_pid=()

start_node() {
  local i=$1
  "$node_binary" --node-id "$i" --cluster-id "$c_name" --data-dir "$c_dir/n$i" \
    --listen "127.0.0.1:${c_grpc[$i]}" --peers "$c_peers" \
    --metrics-listen "127.0.0.1:${c_metrics[$i]}" --http-listen "127.0.0.1:${c_http[$i]}" \
    --replication-factor "$c_r" --log-level warning --insecure-grpc=true --auth=false "${node_extra[@]}" >>"$c_dir/n$i.log" 2>&1 &
  c_pid[i]=$!
  pids+=("$!")
}

# wait_ready [ID...]: every given node (default all) answers /readyz and knows a leader.
wait_ready() {
  local ids=("$@") i ok leader
  [[ ${#ids[@]} -gt 0 ]] || ids=(1 2 3)
  for _ in $(seq 300); do
    ok=1
    for i in "${ids[@]}"; do
      kill -0 "${c_pid[$i]}" 2>/dev/null || die "node $i of $c_name exited (log $c_dir/n$i.log)"
      curl -fs --max-time 2 "http://127.0.0.1:${c_http[$i]}/readyz" >/dev/null 2>&1 || { ok=0; break; }
      leader=$(json_get "http://127.0.0.1:${c_http[$i]}/cluster/status" 'd["leader_id"]' || echo 0)
      [[ "${leader:-0}" -gt 0 ]] || { ok=0; break; }
    done
    [[ $ok -eq 1 ]] && return 0
    sleep 0.1
  done
  die "cluster $c_name not ready after 30 s (logs in $c_dir)"
}

start_cluster() {  # start_cluster NAME R
  c_name=$1 c_r=$2 c_dir="$base/$1"
  mkdir -p "$c_dir"
  local p
  read -r -a p < <(free_ports 9)
  c_grpc=(0 "${p[0]}" "${p[1]}" "${p[2]}")
  c_metrics=(0 "${p[3]}" "${p[4]}" "${p[5]}")
  c_http=(0 "${p[6]}" "${p[7]}" "${p[8]}")
  c_peers="1=127.0.0.1:${c_grpc[1]},2=127.0.0.1:${c_grpc[2]},3=127.0.0.1:${c_grpc[3]}"
  local i
  for i in 1 2 3; do start_node "$i"; done
  wait_ready
  # The leader proposes a non-default R on its first repair pass: wait for it.
  local r=""
  for _ in $(seq 300); do
    r=$(json_get "http://127.0.0.1:${c_http[1]}/cluster/status" 'd["replication_factor"]' || true)
    [[ "$r" == "$c_r" ]] && break
    sleep 0.1
  done
  [[ "$r" == "$c_r" ]] || die "cluster $c_name: replication factor is '$r', not $c_r, after 30 s"
  log "cluster $c_name (R=$c_r): REST on 127.0.0.1:${c_http[1]},${c_http[2]},${c_http[3]}; leader node $(leader_id)"
}

stop_cluster() {
  local i
  for i in 1 2 3; do kill -TERM "${c_pid[$i]}" 2>/dev/null || true; done
  for i in 1 2 3; do stop_pid "${c_pid[$i]}"; done
  rm -rf "$c_dir"
}

leader_id() {
  local i id
  for i in 1 2 3; do
    kill -0 "${c_pid[$i]}" 2>/dev/null || continue
    id=$(json_get "http://127.0.0.1:${c_http[$i]}/cluster/status" 'd["leader_id"]' || true)
    if [[ -n "$id" && "$id" != 0 ]]; then echo "$id"; return 0; fi
  done
  echo 0
}

# --- Test files -----------------------------------------------------------------------------------
files="$base/files"
mkdir -p "$files"
"$bench_binary" mkmp3 --out "$files/tiny.mp3" --size 2048 --title "Tiny"
"$bench_binary" mkmp3 --out "$files/5m.mp3" --size $((5 * 1024 * 1024)) --title "Five"
"$bench_binary" mkmp3 --out "$files/64m.mp3" --size $((64 * 1024 * 1024)) --title "Sixty-four"
log "base directory $base; nproc $(nproc); $(uptime)"

stream_line=""

# --- Streaming ------------------------------------------------------------------------------------
# nginx and the stream cluster run side by side (idle ones cost next to nothing); each case runs
# nginx, then the node with a copy, then the node without, back to back, so that other work on
# the machine skews the sides alike.
get_case() {  # get_case LABEL TARGET PATH KIND THREADS RANGE: prints the line, returns MBps in case_mbps
  local label=$1 target=$2 path=$3 kind=$4 threads=$5 range=$6 line
  line=$("$bench_binary" get --target "$target" --path "$path" --threads "$threads" --duration "$duration" \
    --range-bytes "$range" --label "stream_${label}_${kind}_c$threads") || die "GET failed ($label $kind c$threads)"
  echo "$line"
  case_mbps=$(field MBps "$line")
}

mean() { printf '%s\n' "$@" | awk '{ s += $1; n++ } END { printf "%.1f", n ? s / n : 0 }'; }

if wants stream; then
  ngx="$base/nginx"
  mkdir -p "$ngx/www" "$ngx/tmp" "$ngx/logs"
  ln "$files/64m.mp3" "$ngx/www/song.mp3" 2>/dev/null || cp "$files/64m.mp3" "$ngx/www/song.mp3"
  chmod 755 "$files" "$ngx" "$ngx/www"
  chmod 644 "$ngx/www/song.mp3"
  read -r ngx_port < <(free_ports 1)
  user_line=""
  [[ $(id -u) -eq 0 ]] && user_line="user root;"  # workers would run as nobody otherwise
  cat >"$ngx/nginx.conf" <<NGINX_CONF
$user_line
daemon off;
master_process on;
worker_processes auto;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $ngx/tmp/body;
  proxy_temp_path $ngx/tmp/proxy;
  fastcgi_temp_path $ngx/tmp/fastcgi;
  uwsgi_temp_path $ngx/tmp/uwsgi;
  scgi_temp_path $ngx/tmp/scgi;
  types { audio/mpeg mp3; }
  server {
    listen 127.0.0.1:$ngx_port;
    root $ngx/www;
  }
}
NGINX_CONF
  nginx -p "$ngx/" -c "$ngx/nginx.conf" -e "$ngx/logs/error.log" >"$ngx/logs/stdout.log" 2>&1 &
  nginx_pid=$!
  for _ in $(seq 100); do
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx exited at start-up: $(cat "$ngx/logs/error.log" 2>/dev/null)"
    curl -fs -o /dev/null --max-time 2 -r 0-0 "http://127.0.0.1:$ngx_port/song.mp3" && break
    sleep 0.1
  done
  log "stream: $(nginx -v 2>&1) on 127.0.0.1:$ngx_port (pid $nginx_pid)"

  # R=2 on 3 nodes: two nodes hold the file, the third proxies it from one of them.
  start_cluster stream 2
  up=$(curl -fsS --max-time 300 -X POST -H 'Content-Type: audio/mpeg' --data-binary "@$files/64m.mp3" \
    "http://127.0.0.1:${c_http[1]}/music/upload?filename=stream64.mp3") || die "uploading the 64 MiB file failed"
  file_id=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['file_id'])" "$up")
  holders=""
  for _ in $(seq 300); do  # the replicas listed healthy (extra copies, if any, are trimmed by repair)
    holders=$(json_get "http://127.0.0.1:${c_http[1]}/music/songs/$file_id" \
      '" ".join(str(r["node_id"]) for r in d.get("replicas", []) if r["state"] == "healthy")' || true)
    [[ $(wc -w <<<"$holders") -eq 2 ]] && break
    sleep 0.1
  done
  own="" proxy=""
  for i in 1 2 3; do
    if [[ " $holders " == *" $i "* ]]; then [[ -n "$own" ]] || own=$i; else proxy=$i; fi
  done
  [[ -n "$own" ]] || die "the streamed file has no healthy replica"
  [[ -n "$proxy" ]] || log "stream: every node holds a copy (holders: $holders): no proxy figure"
  log "stream: file $file_id on nodes $holders; node $own serves its copy${proxy:+, node $proxy proxies}"

  targets=("nginx 127.0.0.1:$ngx_port /song.mp3" "dispotify 127.0.0.1:${c_http[$own]} /music/stream/$file_id")
  [[ -z "$proxy" ]] || targets+=("dispotify_proxy 127.0.0.1:${c_http[$proxy]} /music/stream/$file_id")
  for t in "${targets[@]}"; do  # full reads first, so the file is in the page cache everywhere
    read -r label target path <<<"$t"
    "$bench_binary" get --target "$target" --path "$path" --requests 2 --label warmup >/dev/null ||
      die "warm-up GET failed ($label)"
  done
  nginx_mbps=() own_mbps=() proxy_mbps=()
  for spec in "full 1 0" "full 32 0" "range 1 1048576" "range 32 1048576"; do
    read -r kind threads range <<<"$spec"
    load_note
    for t in "${targets[@]}"; do
      read -r label target path <<<"$t"
      get_case "$label" "$target" "$path" "$kind" "$threads" "$range"
      case "$label" in
        nginx) nginx_mbps+=("$case_mbps") ;;
        dispotify) own_mbps+=("$case_mbps") ;;
        dispotify_proxy) proxy_mbps+=("$case_mbps") ;;
      esac
    done
  done
  stop_pid "$nginx_pid"
  nginx_pid=""
  stop_cluster
  if [[ ${#proxy_mbps[@]} -gt 0 ]]; then
    echo "stream_proxy: dispotify_proxy_MBps=$(mean "${proxy_mbps[@]}") (node without a copy, proxying from a replica; mean of the 4 cases; not in the ratio)"
  fi
  d=$(mean "${own_mbps[@]}")
  n=$(mean "${nginx_mbps[@]}")
  stream_line="stream: dispotify_MBps=$d nginx_MBps=$n ratio=$(awk -v d="$d" -v n="$n" 'BEGIN { if (n > 0) printf "%.2f", d / n; else print "inf" }')"
fi

# --- Uploads, search, failover on one R=3 cluster -------------------------------------------------
if wants upload || wants search || wants reads || wants failover; then
  start_cluster main 3
fi

if wants upload; then
  target="127.0.0.1:${c_http[1]}"
  log "upload: through node 1 (leader is node $(leader_id))"
  for spec in "5m 1 20" "5m 4 40" "64m 1 5" "64m 4 8"; do
    read -r size threads requests <<<"$spec"
    load_note
    "$bench_binary" upload --target "$target" --file "$files/$size.mp3" --threads "$threads" \
      --requests "$requests" --timeout 120 --prefix "up$size" --label "upload_${size}_c$threads" ||
      die "uploads failed ($size, $threads uploaders)"
  done
fi

if wants search; then
  target="127.0.0.1:${c_http[1]}"
  log "search: uploading tiny songs for up to $search_seconds s (at most $search_songs)"
  load_note
  line=$("$bench_binary" populate --target "$target" --file "$files/tiny.mp3" --threads 8 \
    --songs "$search_songs" --duration "$search_seconds" --prefix song --label search_load) ||
    die "loading the catalog failed"
  echo "$line"
  songs=$(field songs "$line")
  total=$(json_get "http://127.0.0.1:${c_http[2]}/cluster/status" 'd.get("songs", 0)' || echo "?")
  log "search: $songs songs loaded ($total songs in the catalog, uploads included)"
  for threads in 1 32; do
    for i in 1 2; do  # node 1 took the uploads; node 2 is another follower or the leader
      load_note
      "$bench_binary" search --target "127.0.0.1:${c_http[$i]}" --threads "$threads" --duration "$search_duration" \
        --songs "$songs" --label "search_http_node${i}_c$threads" || die "searches failed"
    done
  done
  echo "search_note: catalog of $songs songs loaded through the API in ${search_seconds}s max, not 1,000,000; bench/run-search-bench.sh measures the stores at 1,000,000"
fi

if wants reads; then
  log "reads: uploading up to $reads_songs tiny songs (at most $reads_seconds s)"
  line=$("$bench_binary" populate --target "127.0.0.1:${c_http[1]}" --file "$files/tiny.mp3" --threads 8 \
    --songs "$reads_songs" --duration "$reads_seconds" --prefix rd --label reads_load) ||
    die "loading the catalog failed"
  echo "$line"
  songs=$(field songs "$line")
  leader=$(leader_id)
  follower=$(( leader % 3 + 1 ))
  log "reads: through follower node $follower (leader node $leader)"
  metric() {  # metric NODE NAME: the value of an unlabelled series
    curl -fs --max-time 5 "http://127.0.0.1:${c_metrics[$1]}/metrics" | awk -v n="$2" '$1 == n { print $2 }'
  }
  declare -A p50 p99
  for kind in search song; do
    for threads in 1 32; do
      for consistency in linearizable stale; do
        before_reads=$(metric "$follower" dispotify_catalog_linearizable_reads_total)
        before_rounds=$(metric "$follower" dispotify_catalog_read_index_rounds_total)
        load_note
        line=$("$bench_binary" "$kind" --target "127.0.0.1:${c_http[$follower]}" --threads "$threads" \
          --duration "$reads_duration" --songs "$songs" --prefix rd --consistency "$consistency" \
          --label "reads_${kind}_${consistency}_c$threads") || die "$kind reads failed"
        echo "$line"
        p50[$kind,$threads,$consistency]=$(field p50_ms "$line")
        p99[$kind,$threads,$consistency]=$(field p99_ms "$line")
        if [[ $consistency == linearizable ]]; then
          reads=$(awk -v a="$before_reads" -v b="$(metric "$follower" dispotify_catalog_linearizable_reads_total)" 'BEGIN { print b - a }')
          rounds=$(awk -v a="$before_rounds" -v b="$(metric "$follower" dispotify_catalog_read_index_rounds_total)" 'BEGIN { print b - a }')
          echo "reads_rounds: kind=$kind clients=$threads reads=$reads rounds=$rounds rounds_per_read=$(awk -v r="$rounds" -v n="$reads" 'BEGIN { if (n > 0) printf "%.3f", r / n; else print "nan" }')"
        fi
      done
      ratio() { awk -v l="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.2f", l / s; else print "inf" }'; }
      echo "reads: kind=$kind clients=$threads linearizable_p50_ms=${p50[$kind,$threads,linearizable]} stale_p50_ms=${p50[$kind,$threads,stale]} p50_ratio=$(ratio "${p50[$kind,$threads,linearizable]}" "${p50[$kind,$threads,stale]}") linearizable_p99_ms=${p99[$kind,$threads,linearizable]} stale_p99_ms=${p99[$kind,$threads,stale]} p99_ratio=$(ratio "${p99[$kind,$threads,linearizable]}" "${p99[$kind,$threads,stale]}")"
    done
  done
fi

if wants failover; then
  gaps=()
  for run in $(seq "$failover_runs"); do
    wait_ready
    leader=$(leader_id)
    [[ "$leader" -ge 1 ]] || die "no leader"
    follower=$(( leader % 3 + 1 ))
    log "failover run $run: leader node $leader (pid ${c_pid[$leader]}), uploads through node $follower"
    line=$("$bench_binary" failover --target "127.0.0.1:${c_http[$follower]}" --file "$files/tiny.mp3" \
      --threads 2 --kill-pid "${c_pid[$leader]}" --kill-after 2 --duration 30 --timeout 15 \
      --prefix "fo$run" --label "failover_run$run") || true
    echo "$line"
    kill -0 "${c_pid[$leader]}" 2>/dev/null && die "failover run $run: the leader was not killed"
    wait "${c_pid[$leader]}" 2>/dev/null || true
    forget_pid "${c_pid[$leader]}"
    gap=$(field gap_ms "$line")
    gaps+=("${gap:--1}")
    start_node "$leader"
    wait_ready
    sleep 2  # let the restarted node catch up before the next kill
  done
  max=$(printf '%s\n' "${gaps[@]}" | awk 'BEGIN { m = 0 } { if ($1 < 0) bad = 1; if ($1 > m) m = $1 } END { if (bad) print "not_all_recovered"; else print m }')
  echo "failover: runs=${#gaps[@]} gaps_ms=$(IFS=,; echo "${gaps[*]}") max_ms=$max"
fi

log "done; $(uptime)"
[[ -z "$stream_line" ]] || echo "$stream_line"
