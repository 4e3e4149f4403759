#!/usr/bin/env bash
# Fuzzes the REST API of a live 3-node cluster against docs/openapi.yaml with schemathesis: no
# 5xx, every response (status code, content type, headers, body) as documented, bad input
# refused, and every node still healthy and ready afterwards. ctest runs it (label api):
#   e2e/schemathesis/run.sh PATH/TO/dispotify-node
# The nodes use free loopback ports and a temp data dir; a trap stops them on any exit. The
# membership-changing admin operations are fuzzed only without the bearer token (so only their
# 401 answers can happen); everything else, DELETE /music/songs/{id} and PUT /admin/replication
# included, is fuzzed with the token.
# Environment: ST_MAX_EXAMPLES (per operation, default 200; a quarter of it for the
# token-less membership pass), ST_SEED (default a fixed one; "random"
# for a new one each run), ST_WORKERS (default 1: with more, Python 3.11 can fail in hypothesis with "AST constructor recursion depth mismatch"), KEEP_TMP=1 (keep the data dir and logs).
# schemathesis comes from scripts/install-test-tools.sh (run here too; silent when installed).
set -euo pipefail

node_bin=${1:?usage: $0 PATH/TO/dispotify-node}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
schema="$repo/docs/openapi.yaml"
max_examples=${ST_MAX_EXAMPLES:-200}
seed=${ST_SEED:-20240611}
workers=${ST_WORKERS:-1}
token="schemathesis-$RANDOM$RANDOM"

log() { echo "[schemathesis-e2e ${SECONDS}s] $*" >&2; }

[[ -x "$node_bin" ]] || { log "no node binary at $node_bin"; exit 1; }
"$repo/scripts/install-test-tools.sh"
st="$("$repo/scripts/install-test-tools.sh" --print-venv)/bin/st"
python=$(dirname "$st")/python

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dispotify-st.XXXXXX")
pids=()
status=1
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status != 0 ]]; then
    for f in "$tmp"/node-*.log; do
      [[ -f "$f" ]] || continue
      log "last lines of $f:"
      tail -n 30 "$f" >&2 || true
    done
  fi
  if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nine free loopback ports (gRPC, REST, metrics for each node), all bound at once so none repeats,
# drawn below the kernel's ephemeral range: a port from bind(0) could meanwhile become the local
# port of an outgoing connection of a test running in parallel (see FreePort in
# e2e/cluster_harness.cc).
read -r -a ports < <("$python" - <<'PY'
import random, socket
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    first_ephemeral = int(f.read().split()[0])
socks = []
while len(socks) < 9:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(10000, first_ephemeral - 1)))
        socks.append(s)
    except OSError:
        s.close()
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)
ids=(1 2 3)
grpc() { echo "127.0.0.1:${ports[$(($1 - 1))]}"; }
http() { echo "http://127.0.0.1:${ports[$(($1 + 2))]}"; }
metrics() { echo "127.0.0.1:${ports[$(($1 + 5))]}"; }
peers="1=$(grpc 1),2=$(grpc 2),3=$(grpc 3)"

# The REST API is under test: node-to-node gRPC on loopback stays plaintext (--insecure-grpc).
for id in "${ids[@]}"; do
  "$node_bin" --node-id "$id" --cluster-id dispotify-st --data-dir "$tmp/node-$id" \
    --listen "$(grpc "$id")" --peers "$peers" --metrics-listen "$(metrics "$id")" \
    --http-listen "127.0.0.1:${ports[$((id + 2))]}" --api-token "$token" --log-level warning \
    --insecure-grpc=true \
    >"$tmp/node-$id.log" 2>&1 &
  pids+=($!)
done
log "nodes started: $(http 1) $(http 2) $(http 3); data in $tmp"

wait_ready() {
  local id=$1 deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null --max-time 2 "$(http "$id")/readyz" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "node $id not ready after 60 s"
      return 1
    fi
    sleep 0.2
  done
}
# Ready, then every node sees every peer alive (uploads need a write quorum of reachable nodes).
all_healthy() {
  curl -fsS --max-time 2 "$(http "$1")/cluster/status" 2>/dev/null | "$python" -c '
import json, sys
members = json.load(sys.stdin)["members"]
sys.exit(0 if len(members) == 3 and all(m["healthy"] for m in members) else 1)'
}
for id in "${ids[@]}"; do wait_ready "$id"; done
for id in "${ids[@]}"; do
  deadline=$((SECONDS + 60))
  until all_healthy "$id"; do
    if ((SECONDS > deadline)); then
      log "node $id does not see every peer alive after 60 s"
      exit 1
    fi
    sleep 0.2
  done
done
log "every node is ready and sees every peer"

# Real songs first, so that the read routes have something to find (docs/openapi.yaml's examples
# name these ids): minimal valid MP3s, an ID3v2.4 tag and silent MPEG-1 Layer III frames (the
# layout of tests/support/audio_files.cc MakeMp3).
make_mp3() {
  "$python" - "$1" "$2" <<'PY'
import sys
path, title = sys.argv[1], sys.argv[2]
def synchsafe(n):
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
def frame(fid, text):
    body = b"\x03" + text.encode()
    return fid.encode() + synchsafe(len(body)) + b"\x00\x00" + body
tags = frame("TIT2", title) + frame("TPE1", "Schemathesis Artist") + frame("TALB", "Fuzz Album") \
    + frame("TRCK", "3/9") + frame("TDRC", "2021")
audio = b"\xFF\xFB\x90\x00".ljust(417, b"\x00") * 40
with open(path, "wb") as f:
    f.write(b"ID3\x04\x00\x00" + synchsafe(len(tags)) + tags + audio)
PY
}
upload() {
  local file_id=$1 title=$2 code
  make_mp3 "$tmp/$file_id" "$title"
  code=$(curl -sS -o "$tmp/upload.json" -w '%{http_code}' --max-time 30 \
    --data-binary "@$tmp/$file_id" -H 'Content-Type: audio/mpeg' \
    "$(http 1)/music/upload?filename=$file_id")
  if [[ $code != 201 ]]; then
    log "uploading $file_id: HTTP $code: $(cat "$tmp/upload.json")"
    return 1
  fi
}
upload example.mp3 "Example Song"
upload second-example.mp3 "Second Example"
upload deletable.mp3 "Deletable Song"
log "3 songs uploaded"

common=(--url "$(http 1)" --seed "$([[ $seed == random ]] && echo $RANDOM || echo "$seed")"
  --workers "$workers" --request-timeout 20
  --continue-on-failure --generation-database none --no-color --suppress-health-check all --warnings off)
# Membership and leadership changes: everything under /admin/members and /admin/leadership.
membership='^/admin/(members|leadership)(/|$)'

# Every check but object_level_authorization (the API has one principal: the admin token).
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
checks+=,response_schema_conformance,negative_data_rejection,positive_data_acceptance,missing_required_header
checks+=,unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability,ignored_auth
st_run() { "$st" --config-file "$repo/e2e/schemathesis/schemathesis.toml" run "$schema" "${common[@]}" "$@"; }

failed=0
cd "$tmp"
log "pass 1: every operation except the membership changes, with the token"
st_run --max-examples "$max_examples" --checks "$checks" --exclude-path-regex "$membership" \
  -H "Authorization: Bearer $token" || failed=1
log "pass 2: the membership changes, without the token (answered 401 before anything is read)"
st_run --max-examples "$(((max_examples + 3) / 4))" --checks "$checks" \
  --exclude-checks ignored_auth,positive_data_acceptance --include-path-regex "$membership" || failed=1

# Still healthy: every node alive, healthy, ready, and a member of the 3-node cluster.
for i in "${!ids[@]}"; do
  id=${ids[$i]}
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    log "node $id has exited"
    failed=1
    continue
  fi
  for probe in healthz readyz; do
    if ! curl -fsS -o /dev/null --max-time 5 "$(http "$id")/$probe"; then
      log "node $id: /$probe failed after the run"
      failed=1
    fi
  done
  members=$(curl -fsS --max-time 5 "$(http "$id")/cluster/status" |
    "$python" -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))' || echo "?")
  if [[ $members != 3 ]]; then
    log "node $id: $members members after the run, want 3"
    failed=1
  fi
done

if [[ $failed == 0 ]]; then
  status=0
  log "passed: no 5xx, every response as documented, every node healthy"
fi
exit "$failed"
