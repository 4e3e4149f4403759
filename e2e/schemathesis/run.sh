#!/usr/bin/env bash
# Fuzzes the REST API of a live 3-node cluster with security on (auth: true) against
# docs/openapi.yaml with schemathesis: no 5xx, every response (status code, content type, headers,
# body) as documented, bad input refused, and every node still healthy and ready afterwards. ctest
# runs it (label api):
#   e2e/schemathesis/run.sh PATH/TO/dispotify-node PATH/TO/dispotify-pki
# The nodes use free loopback ports and a temp data dir; a trap stops them on any exit. Their gRPC
# is mutual TLS, as in a deployment (a CA and each node's certificate made by dispotify-pki). They run
# with --auth true, a first admin from an admin password file and a static admin token from a token
# file (the admin named `api-token`), and plain-http cookies (--secure-cookies false).
#
# Before fuzzing, as a browser would: the static token creates the user `listener`, which signs in
# (POST /auth/login: session cookie + csrf_token), is refused a change without X-CSRF-Token (403
# csrf) and creates an API token with it (POST /auth/tokens). The operations that could lock a
# fuzzer out of itself are exercised here deliberately, once, with checked results (see "Lockouts"
# below), and every route a listener may not use is checked to answer 403 to its token.
# Then three schemathesis passes:
#   1. as the listener (its API token as the bearer): every operation but DELETE /auth/tokens/{id}
#      (see "Lockouts"); the admin, upload and delete routes answer 403 (the guard refuses before
#      anything is read, the membership routes included);
#   2. as an admin (the static token): every operation but the membership changes;
#   3. the membership changes without any credential (so only their 401 answers can happen).
# The listener pass runs before the admin pass: the admin pass may disable, demote or delete the
# user `listener` or revoke its tokens (any user's, through the stateful links of GET /admin/users
# and GET /auth/tokens), which must not happen under the listener pass.
#
# Lockouts (why nothing else is excluded):
# - DELETE /auth/tokens/{id} is left out of the listener pass: GET /auth/tokens lists the
#   listener's own token, and schemathesis' stateful phase links that list's ids to this operation,
#   so it would revoke the very token it fuzzes with (every later answer a 401). The script revokes
#   a second token of the listener instead and checks that it then answers 401. The admin pass
#   fuzzes it (the static token is no token record, it cannot be revoked).
# - DELETE /admin/users/{name} and PUT /admin/users/{name} of the fuzzer's own user: the listener
#   gets 403 for both; the admin pass's caller is the static token, which is no user (deleting or
#   disabling a user named `api-token` would be 409 self_lockout anyway).
# - POST /auth/logout of its own session: no pass authenticates with a session (both send a bearer
#   token, which wins over any cookie), so a fuzzed logout can only end sessions the fuzzer made
#   itself. The script ends the listener's session deliberately and checks the cookie then gets 401.
# - PUT /auth/password of its own user: it needs the current password, which the fuzzer never has
#   (403 bad_credentials, then 429 once 5 attempts have failed); the static admin token is no user
#   (400 not_a_user). A password change does not end tokens anyway. The script changes the
#   listener's password deliberately and checks its token still works.
# Environment: ST_MAX_EXAMPLES (per operation, default 200, for the admin pass; the asan preset
# sets 100: under the sanitizers each case costs about three times as much),
# ST_LISTENER_EXAMPLES (the listener pass, default half of ST_MAX_EXAMPLES; a quarter of
# ST_MAX_EXAMPLES for the credential-less membership pass), ST_SEED (default a fixed one; "random"
# for a new one each run), ST_WORKERS (default 1: with more, Python 3.11 can fail in hypothesis with "AST constructor recursion depth mismatch"), KEEP_TMP=1 (keep the data dir and logs).
# schemathesis comes from scripts/install-test-tools.sh (run here too; silent when installed).
set -euo pipefail

node_bin=${1:?usage: $0 PATH/TO/dispotify-node PATH/TO/dispotify-pki}
pki_bin=${2:?usage: $0 PATH/TO/dispotify-node PATH/TO/dispotify-pki}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
schema="$repo/docs/openapi.yaml"
max_examples=${ST_MAX_EXAMPLES:-200}
listener_examples=${ST_LISTENER_EXAMPLES:-$(((max_examples + 1) / 2))}
seed=${ST_SEED:-20240611}
workers=${ST_WORKERS:-1}
token="schemathesis-$RANDOM$RANDOM"

log() { echo "[schemathesis-e2e ${SECONDS}s] $*" >&2; }

[[ -x "$node_bin" ]] || { log "no node binary at $node_bin"; exit 1; }
[[ -x "$pki_bin" ]] || { log "no dispotify-pki at $pki_bin"; exit 1; }
"$repo/scripts/install-test-tools.sh"
st="$("$repo/scripts/install-test-tools.sh" --print-venv)/bin/st"
python=$(dirname "$st")/python

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dispotify-st.XXXXXX")
# The secrets, as files only their owner reads (as a Kubernetes Secret would mount them).
(umask 077 && echo "$token" >"$tmp/api-token" && echo "admin-$RANDOM$RANDOM$RANDOM" >"$tmp/admin-password")
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

# The cluster's CA and each node's certificate (tls.crt, tls.key, ca.crt in $tmp/tls/node-N).
mkdir -m 700 "$tmp/tls"
"$pki_bin" ca --out "$tmp/tls/ca" --cluster dispotify-st --days 2 >/dev/null
for id in "${ids[@]}"; do
  "$pki_bin" issue --ca "$tmp/tls/ca" --out "$tmp/tls/node-$id" --cluster dispotify-st --node "$id" \
    --ip 127.0.0.1 --days 2 >/dev/null
done
for id in "${ids[@]}"; do
  "$node_bin" --node-id "$id" --cluster-id dispotify-st --data-dir "$tmp/node-$id" \
    --listen "$(grpc "$id")" --peers "$peers" --metrics-listen "$(metrics "$id")" \
    --http-listen "127.0.0.1:${ports[$((id + 2))]}" --log-level warning \
    --auth true --secure-cookies false --admin-password-file "$tmp/admin-password" \
    --api-token-file "$tmp/api-token" --tls-cert-file "$tmp/tls/node-$id/tls.crt" \
    --tls-key-file "$tmp/tls/node-$id/tls.key" --tls-ca-file "$tmp/tls/node-$id/ca.crt" \
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
  curl -fsS --max-time 2 -H "Authorization: Bearer $token" "$(http "$1")/cluster/status" 2>/dev/null | "$python" -c '
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
    --data-binary "@$tmp/$file_id" -H 'Content-Type: audio/mpeg' -H "Authorization: Bearer $token" \
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

# call METHOD PATH [curl args...]: the status code; the body in $tmp/body.json.
call() {
  local method=$1 path=$2
  shift 2
  curl -sS -o "$tmp/body.json" -w '%{http_code}' --max-time 30 -X "$method" "$@" "$(http 1)$path"
}
# expect WANT METHOD PATH [curl args...]: fails the run unless the answer is WANT.
expect() {
  local want=$1 code
  shift
  code=$(call "$@")
  if [[ $code != "$want" ]]; then
    log "$1 $2: HTTP $code, want $want: $(head -c 300 "$tmp/body.json")"
    return 1
  fi
}
json_field() { "$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/body.json" "$1"; }
error_code() { "$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$tmp/body.json"; }
admin=(-H "Authorization: Bearer $token")
as_json=(-H 'Content-Type: application/json')

# The listener, and a user for the admin pass to change and delete (docs/openapi.yaml's example
# of /admin/users/{name}).
listener_password="listener-$RANDOM$RANDOM$RANDOM"
expect 201 POST /admin/users "${admin[@]}" "${as_json[@]}" \
  -d "{\"name\":\"listener\",\"password\":\"$listener_password\",\"roles\":[\"listener\"]}"
expect 201 POST /admin/users "${admin[@]}" "${as_json[@]}" \
  -d '{"name":"fuzz-target","password":"fuzz-target-password","roles":["uploader"]}'
# Sign in as a browser does: the session cookie and the CSRF token.
jar="$tmp/cookies"
expect 200 POST /auth/login "${as_json[@]}" -c "$jar" \
  -d "{\"name\":\"listener\",\"password\":\"$listener_password\"}"
csrf=$(json_field csrf_token)
grep -q dispotify_session "$jar" || { log "login set no session cookie"; exit 1; }
# A change made with the cookie needs the CSRF token.
expect 403 POST /auth/tokens -b "$jar" "${as_json[@]}" -d '{"name":"no csrf"}'
[[ $(error_code) == csrf ]] || { log "want 403 csrf: $(cat "$tmp/body.json")"; exit 1; }
expect 201 POST /auth/tokens -b "$jar" -H "X-CSRF-Token: $csrf" "${as_json[@]}" \
  -d '{"name":"schemathesis","expires_in_s":3600}'
listener_token=$(json_field token)
listener=(-H "Authorization: Bearer $listener_token")
expect 200 GET /auth/me "${listener[@]}"
[[ $(json_field name) == listener && $(json_field via) == token ]] ||
  { log "GET /auth/me: $(cat "$tmp/body.json")"; exit 1; }

# Lockouts, handled here once instead of by the fuzzer (see the top of this file).
# Revoking a token (a second one: the fuzzer's own must live on).
expect 201 POST /auth/tokens "${listener[@]}" "${as_json[@]}" -d '{"name":"to revoke"}'
spare_token=$(json_field token)
spare_id=$(json_field id)
expect 200 GET /auth/me -H "Authorization: Bearer $spare_token"
expect 204 DELETE "/auth/tokens/$spare_id" "${listener[@]}"
expect 401 GET /auth/me -H "Authorization: Bearer $spare_token"
# Ending the session: the cookie no longer works.
expect 204 POST /auth/logout -b "$jar"
expect 401 GET /auth/me -b "$jar"
# Changing one's password: the API token still works.
expect 204 PUT /auth/password "${listener[@]}" "${as_json[@]}" \
  -d "{\"current\":\"$listener_password\",\"new\":\"$listener_password-2\"}"
expect 200 GET /auth/me "${listener[@]}"
log "listener signed in (session, CSRF, API token); revocation, logout and password change checked"

# Every route a listener may not use answers its token 403 (the guard refuses before the body is
# read; the listener pass below fuzzes them too).
forbidden=(
  "POST /music/upload?filename=x.mp3"
  "DELETE /music/songs/deletable.mp3"
  "POST /admin/members" "POST /admin/members/3/promote" "DELETE /admin/members/3"
  "POST /admin/members/3/drain" "DELETE /admin/members/3/drain" "POST /admin/leadership"
  "PUT /admin/replication" "GET /admin/audit" "GET /admin/users" "POST /admin/users"
  "PUT /admin/users/fuzz-target" "DELETE /admin/users/fuzz-target"
)
for route in "${forbidden[@]}"; do
  read -r method path <<<"$route"
  expect 403 "$method" "$path" "${listener[@]}" "${as_json[@]}" -d '{}' || exit 1
done
log "the ${#forbidden[@]} routes above a listener answer its token 403"

common=(--url "$(http 1)" --seed "$([[ $seed == random ]] && echo $RANDOM || echo "$seed")"
  --workers "$workers" --request-timeout 20
  --continue-on-failure --generation-database none --no-color --suppress-health-check all --warnings off)
# Membership and leadership changes: everything under /admin/members and /admin/leadership.
membership='^/admin/(members|leadership)(/|$)'

# Every check but object_level_authorization (it needs schemathesis to hold two identities in one
# run; the listener/admin split is checked by the two passes and the 403 loop above instead).
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
checks+=,response_schema_conformance,negative_data_rejection,positive_data_acceptance,missing_required_header
checks+=,unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability,ignored_auth
st_run() { "$st" --config-file "$repo/e2e/schemathesis/schemathesis.toml" run "$schema" "${common[@]}" "$@"; }

failed=0
cd "$tmp"
log "pass 1: every operation but DELETE /auth/tokens/{id}, as the listener (its API token)"
st_run --max-examples "$listener_examples" --checks "$checks" --exclude-name 'DELETE /auth/tokens/{id}' \
  "${listener[@]}" || failed=1
log "pass 2: every operation except the membership changes, as an admin (the static token)"
st_run --max-examples "$max_examples" --checks "$checks" --exclude-path-regex "$membership" \
  "${admin[@]}" || failed=1
log "pass 3: the membership changes, without any credential (answered 401 before anything is read)"
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
  members=$(curl -fsS --max-time 5 -H "Authorization: Bearer $token" "$(http "$id")/cluster/status" |
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
