#!/usr/bin/env bash
# Consensus-write benchmark: Dispotify against etcd, same machine, same run.
#
# Starts a 3-member etcd cluster on loopback (fsync on, as etcd always does unless told
# --unsafe-no-fsync), drives it with dispotify-consensus-bench, stops it; then starts a 3-node
# Dispotify cluster the same way (data under the same base directory, so on the same file system)
# and drives it with the same generator and options. The sides run one after the other, so each
# has the whole machine. Prints one line per side and, last:
#   consensus_writes: dispotify_ops=<n/s> etcd_ops=<n/s> ratio=<d/e> dispotify_p99_ms=<x> etcd_p99_ms=<y>
#
# Usage: bench/run-consensus-bench.sh [--duration 10] [--clients 64] [--threads 1] [--warmup 2]
#          [--value-size 256] [--node-binary PATH] [--bench-binary PATH] [--base-dir DIR]
#          [--only etcd|dispotify] [--keep] [--node-flags "..."] [--etcd-flags "..."]
# --node-flags / --etcd-flags append flags to every member (experiments, e.g. snapshot intervals).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

duration=10
warmup=2
clients=64
threads=1
value_size=256
node_binary="$repo/build/release/node/server/dispotify-node"
bench_binary="$repo/build/release/bench/dispotify-consensus-bench"
base_parent=${TMPDIR:-/tmp}
only=""
keep=0
node_flags=""
etcd_flags=""

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --value-size) value_size=$2; shift 2 ;;
    --node-binary) node_binary=$2; shift 2 ;;
    --bench-binary) bench_binary=$2; shift 2 ;;
    --base-dir) base_parent=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --node-flags) node_flags=$2; shift 2 ;;
    --etcd-flags) etcd_flags=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done

read -r -a etcd_extra <<<"$etcd_flags"
read -r -a node_extra <<<"$node_flags"

log() { echo "[consensus-bench] $*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x "$bench_binary" ]] || die "load generator not found: $bench_binary (build dispotify-consensus-bench, or pass --bench-binary)"
if [[ "$only" != dispotify ]]; then
  command -v etcd >/dev/null || die "etcd not found (Debian package etcd-server)"
  command -v etcdctl >/dev/null || die "etcdctl not found (Debian package etcd-client)"
fi
if [[ "$only" != etcd ]]; then
  [[ -x "$node_binary" ]] || die "dispotify-node not found: $node_binary (pass --node-binary)"
fi

# Neither side may pick up settings from the caller's environment (etcd reads ETCD_<FLAG>, e.g.
# ETCD_UNSAFE_NO_FSYNC; dispotify-node reads DISPOTIFY_<KEY> and DISPOTIFY_CONFIG).
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(ETCD|ETCDCTL|DISPOTIFY)_' || true)
export ETCDCTL_API=3

base=$(mktemp -d "$base_parent/consensus-bench.XXXXXX")
pids=()

stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
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

# Fails at once if a started server has already exited (bad flag, port taken) instead of waiting.
check_alive() {
  local pid
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "a server exited at start-up (pid $pid); logs in $base"
  done
}

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

# Runs the generator; its stdout is the side's result line.
run_load() {
  local target=$1 endpoints=$2
  # Other work on the machine skews the ratio: say so, since the two sides run one after the other.
  log "$target: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$bench_binary" --target "$target" --endpoints "$endpoints" --clients "$clients" --threads "$threads" \
    --duration "$duration" --warmup "$warmup" --value-size "$value_size" --key-size 16 --wait 30
}

# Sum of a Prometheus counter over the given metrics URLs (0 if unreachable): used to show that
# both sides fsync, and how many writes each fsync carries (group commit).
metric_sum() {
  local name=$1 url total=0 v
  shift
  for url in "$@"; do
    v=$(curl -fsS --max-time 2 "$url" 2>/dev/null | awk -v n="$name" '$1 == n { print $2 }' || true)
    total=$(awk -v a="$total" -v b="${v:-0}" 'BEGIN { printf "%.0f", a + b }')
  done
  echo "$total"
}

per_member_rate() {  # fsyncs over the 3 members -> per member and second of load (warm-up included)
  awk -v n="$1" -v t="$warmup" -v d="$duration" 'BEGIN { printf "%.0f", n / 3 / (t + d) }'
}

field() {  # field NAME LINE
  sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"
}

etcd_line=""
dispotify_line=""

if [[ "$only" != dispotify ]]; then
  read -r -a ep < <(free_ports 6)
  cluster="" endpoints=""
  for i in 0 1 2; do
    cluster+="${cluster:+,}m$((i + 1))=http://127.0.0.1:${ep[$((i + 3))]}"
    endpoints+="${endpoints:+,}127.0.0.1:${ep[$i]}"
  done
  for i in 0 1 2; do
    name="m$((i + 1))"
    mkdir -p "$base/etcd/$name"
    # Defaults kept for everything that matters to durability and batching (fsync on,
    # --snapshot-count default, --heartbeat-interval/--election-timeout default); the quota is
    # raised so a long run cannot fill the 2 GiB default and raise a NOSPACE alarm.
    etcd --name "$name" --data-dir "$base/etcd/$name" \
      --listen-client-urls "http://127.0.0.1:${ep[$i]}" \
      --advertise-client-urls "http://127.0.0.1:${ep[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${ep[$((i + 3))]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ep[$((i + 3))]}" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "consensus-bench-$$" \
      --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
      --logger zap --log-level warn "${etcd_extra[@]}" >"$base/etcd-$name.log" 2>&1 &
    pids+=($!)
  done
  log "etcd: 3 members, client endpoints $endpoints, data in $base/etcd"
  healthy=0
  for _ in $(seq 100); do
    check_alive
    if ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --command-timeout=2s endpoint health >/dev/null 2>&1; then
      healthy=1
      break
    fi
    sleep 0.2
  done
  [[ $healthy -eq 1 ]] || die "etcd did not become healthy within 20 s (logs in $base)"
  urls=()
  for i in 0 1 2; do urls+=("http://127.0.0.1:${ep[$i]}/metrics"); done
  fsyncs_before=$(metric_sum etcd_disk_wal_fsync_duration_seconds_count "${urls[@]}")
  etcd_line=$(run_load etcd "$endpoints") || die "load generator failed against etcd"
  fsyncs=$(($(metric_sum etcd_disk_wal_fsync_duration_seconds_count "${urls[@]}") - fsyncs_before))
  log "etcd: $fsyncs WAL fsyncs on the 3 members during the load ($(per_member_rate "$fsyncs")/s per member)"
  echo "$etcd_line"
  stop_all
fi

if [[ "$only" != etcd ]]; then
  read -r -a np < <(free_ports 6)  # 3 gRPC (Raft + KV) and 3 metrics ports
  peers="1=127.0.0.1:${np[0]},2=127.0.0.1:${np[1]},3=127.0.0.1:${np[2]}"
  endpoints="127.0.0.1:${np[0]},127.0.0.1:${np[1]},127.0.0.1:${np[2]}"
  for i in 1 2 3; do
    mkdir -p "$base/dispotify/n$i"
    "$node_binary" --node-id "$i" --cluster-id bench --data-dir "$base/dispotify/n$i" \
      --listen "127.0.0.1:${np[$((i - 1))]}" --peers "$peers" \
      --metrics-listen "127.0.0.1:${np[$((i + 2))]}" --log-level warning --state-machine kv --insecure-grpc=true \
      "${node_extra[@]}" >"$base/dispotify-n$i.log" 2>&1 &
    pids+=($!)
  done
  log "dispotify: 3 nodes, endpoints $endpoints, data in $base/dispotify"
  sleep 0.5
  check_alive
  # The generator waits for a leader itself (retrying Puts and following not-leader redirects).
  urls=()
  for i in 3 4 5; do urls+=("http://127.0.0.1:${np[$i]}/metrics"); done
  fsyncs_before=$(metric_sum dispotify_raft_fsync_duration_seconds_count "${urls[@]}")
  dispotify_line=$(run_load dispotify "$endpoints") || die "load generator failed against dispotify (logs in $base)"
  fsyncs=$(($(metric_sum dispotify_raft_fsync_duration_seconds_count "${urls[@]}") - fsyncs_before))
  log "dispotify: $fsyncs log fsyncs on the 3 nodes during the load ($(per_member_rate "$fsyncs")/s per member)"
  echo "$dispotify_line"
  stop_all
fi

if [[ -n "$etcd_line" && -n "$dispotify_line" ]]; then
  d_ops=$(field ops "$dispotify_line")
  e_ops=$(field ops "$etcd_line")
  d_p99=$(field p99_ms "$dispotify_line")
  e_p99=$(field p99_ms "$etcd_line")
  ratio=$(awk -v d="$d_ops" -v e="$e_ops" 'BEGIN { if (e > 0) printf "%.2f", d / e; else print "inf" }')
  echo "consensus_writes: dispotify_ops=$d_ops etcd_ops=$e_ops ratio=$ratio dispotify_p99_ms=$d_p99 etcd_p99_ms=$e_p99"
fi
