#!/usr/bin/env bash
# The images end to end (ctest image_e2e_test, label containers):
#   e2e/containers/image-test.sh NODE TAGGER OPERATOR DISPOTIFYCTL DISPOTIFY_PKI
# 1. Builds the node and operator images from the binaries the suite compiled (the prebuilt path
#    of deploy/docker/*.Dockerfile: collect-rootfs.sh, then only the runtime stage), and prints
#    their sizes. Signs both with cosign and verifies the signatures, and that a tampered image or
#    another key is refused (sign-verify.sh: a registry on 127.0.0.1, a key pair of this run).
# 2. Runs the node service of deploy/swarm/docker-stack.yml as a cluster of deploy.replicas
#    containers, each started from the stack's own service definition (stack_service.py: command,
#    environment, user, read_only, cap_drop, hostname, volumes, tmpfs, secrets; {{.Task.Slot}}
#    substituted) on a podman network where the alias tasks.<service> stands for Swarm's DNS name;
#    plus --security-opt no-new-privileges and the REST port published on 127.0.0.1 only.
#    Each image's SBOM (/usr/local/share/doc/dispotify/sbom.spdx.json) is validated by the SPDX
#    tools and checked against the image's own files (sbom_check.py).
#    The stack runs secured: the test makes its secrets as an operator would (a cluster CA and one
#    certificate per slot with dispotify-pki, the first admin's password, the API token).
# 3. Checks the hardening from the host (UID 10001, no capabilities, no_new_privs, read-only /),
#    that every node speaks mutual TLS as its slot's identity, waits for every node to be a healthy
#    voter, checks the admin API wants the secret's token, that anonymous requests get 401, signs
#    in as the first admin with the secret's password, uploads a song through the first container
#    and streams it back through the second, and runs each container's HEALTHCHECK
#    (`podman healthcheck run`), whose command must be the stack's.
# 4. The probes: the node image's against a closed port fails with a clear message; the operator
#    image's against a node succeeds.
# Every container, volume, network, secret and image it creates is removed on exit, whatever
# happened (their names start with a prefix of this run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/common.sh"
[[ $# -eq 5 ]] || { echo "usage: $0 NODE TAGGER OPERATOR DISPOTIFYCTL DISPOTIFY_PKI" >&2; exit 2; }
node_bin=$1 tagger_bin=$2 operator_bin=$3 ctl=$4 pki=$5
stack=$repo/deploy/swarm/docker-stack.yml
service=node
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/deploy/docker/containers.conf}

missing=()
for t in podman runc ffmpeg python3 curl; do command -v "$t" >/dev/null || missing+=("$t"); done
command -v aardvark-dns >/dev/null || [[ -x /usr/lib/podman/aardvark-dns ]] || missing+=(aardvark-dns)
python3 -c 'import yaml' 2>/dev/null || missing+=("python3-yaml")
((${#missing[@]} == 0)) || skip_or_fail image-test "missing: ${missing[*]} (scripts/install-deps.sh installs them)"

start=$SECONDS
prefix="dispotify-imgtest-$$-"
tmp=$(mktemp -d)
containers=()
images=()
net=${prefix}net
secrets=()

cleanup() {
  local rc=$?
  set +e
  if [[ $rc != 0 ]]; then
    for c in "${containers[@]}"; do
      echo "--- podman logs $c (last 30 lines) ---" >&2
      podman logs --tail 30 "$c" >&2 2>&1
    done
  fi
  ((${#containers[@]} == 0)) || podman rm -f -t 5 "${containers[@]}" >/dev/null 2>&1
  # Volumes by name: the ones the containers named (all carry this run's prefix).
  podman volume ls -q --filter "name=^$prefix" | xargs -r podman volume rm -f >/dev/null 2>&1
  podman network exists "$net" && podman network rm -f "$net" >/dev/null 2>&1
  for s in "${secrets[@]}"; do podman secret rm "$s" >/dev/null 2>&1; done
  ((${#images[@]} == 0)) || podman rmi -f "${images[@]}" >/dev/null 2>&1
  rm -rf "$tmp"
  left=$( (podman ps -aq --filter "name=^$prefix"; podman volume ls -q --filter "name=^$prefix"
           podman images -q --filter "reference=localhost/$prefix*") 2>/dev/null)
  [[ -z "$left" ]] || echo "image-test: could not remove: $left" >&2
  echo "image-test: $((SECONDS - start)) s, exit $rc" >&2
  exit "$rc"
}
trap cleanup EXIT
# The CLI's credentials are this run's only: no token from the caller's environment or home.
unset DISPOTIFY_TOKEN
export DISPOTIFY_TOKEN_FILE=$tmp/ctl-token

fail() { echo "image-test: FAILED: $*" >&2; exit 1; }

# 1. The images, from the binaries already compiled.
build_image() {  # build_image NAME DOCKERFILE BINARY...
  local name=$1 dockerfile=$2
  shift 2
  "$repo/deploy/docker/collect-rootfs.sh" "$tmp/$name-ctx/rootfs" "$@"
  local tag=localhost/${prefix}$name:test
  images+=("$tag")
  # --layers=false: no intermediate images are kept (nothing to clean up but the tag).
  podman build --quiet --layers=false --format docker --build-arg ROOTFS=prebuilt -f "$dockerfile" \
    -t "$tag" "$tmp/$name-ctx" >/dev/null
}
t0=$SECONDS
# The web UI the build made (CMake target web), when there is one: the image serves it at /.
web_args=()
[[ -f "$repo/web/dist/index.html" ]] && web_args=(--web "$repo/web/dist")
build_image node "$repo/deploy/docker/node.Dockerfile" "${web_args[@]}" "$node_bin" "$tagger_bin"
build_image operator "$repo/deploy/docker/operator.Dockerfile" "$operator_bin"
node_image=${images[0]} operator_image=${images[1]}
echo "image-test: built both images from the compiled binaries in $((SECONDS - t0)) s"
for image in "${images[@]}"; do
  size=$(podman image inspect --format '{{.Size}}' "$image")
  echo "image-test: image size $(basename "${image%%:*}" | sed "s/^$prefix/dispotify-/"): $((size / 1000000)) MB ($size bytes)"
done

# Each image carries its SBOM (SPDX 2.3): valid for the SPDX tools, and true to the image (every
# library's Debian package at its version, the web UI's npm packages; e2e/containers/sbom_check.py).
"$repo/scripts/install-test-tools.sh"
pyspdxtools="$("$repo/scripts/install-test-tools.sh" --print-venv)/bin/pyspdxtools"
for name in node operator; do
  image=${images[0]}
  [[ $name == operator ]] && image=${images[1]}
  c=$(podman create "$image")
  podman cp "$c:/usr/local/share/doc/dispotify/sbom.spdx.json" "$tmp/$name.spdx.json"
  podman rm "$c" >/dev/null
  "$pyspdxtools" -i "$tmp/$name.spdx.json" || fail "the $name image's SBOM is not valid SPDX"
  lock_args=()
  [[ $name == node && ${#web_args[@]} -gt 0 ]] && lock_args=(--npm-lock "$repo/web/package-lock.json")
  "$here/sbom_check.py" "$tmp/$name.spdx.json" "$tmp/$name-ctx/rootfs/image" "${lock_args[@]}" ||
    fail "the $name image's SBOM does not match the image"
done

# The image runs as the stack's user, and its HEALTHCHECK is the stack's healthcheck.
image_user=$(podman image inspect --format '{{.Config.User}}' "$node_image")
stack_user=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"][sys.argv[2]].get("user", ""))' "$stack" "$service")
[[ "$image_user" == "10001:10001" && "$stack_user" == "10001:10001" ]] ||
  fail "users: image '$image_user', stack '$stack_user' (both must be 10001:10001)"
image_health=$(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$node_image")
stack_health=$("$here/stack_service.py" "$stack" "$service" --healthcheck)
python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' "$image_health" "$stack_health" ||
  fail "the image's HEALTHCHECK $image_health is not the stack's healthcheck $stack_health"

# Signed, and the signatures verified (the same images then run the cluster).
"$here/sign-verify.sh" "$node_image" "$operator_image" || fail "signing and verifying the images"

# 2. The cluster, from the stack's service definition, with the secrets an operator would make.
podman network create "$net" >/dev/null
alias=$("$here/stack_service.py" "$stack" "$service" --aliases)
replicas=$("$here/stack_service.py" "$stack" "$service" --replicas)
((replicas >= 3)) || fail "the stack runs $replicas replicas; the test needs a cluster of 3 or more"
cluster_id=$("$here/stack_service.py" "$stack" "$service" --slot 1 | tr '\0' '\n' |
  sed -n 's/^DISPOTIFY_CLUSTER_ID=//p')
[[ -n "$cluster_id" ]] || fail "the stack's service sets no DISPOTIFY_CLUSTER_ID"
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$tmp/secret"
printf '%s' "$token" >"$tmp/secret/dispotify_api_token"
printf '%s' "$password" >"$tmp/secret/dispotify_admin_password"
mkdir -p "$tmp/pki"
"$pki" ca --out "$tmp/pki/ca" --cluster "$cluster_id" --days 2 >/dev/null
cp "$tmp/pki/ca/ca.crt" "$tmp/secret/dispotify_tls_ca"
for slot in $(seq 1 "$replicas"); do
  "$pki" issue --ca "$tmp/pki/ca" --out "$tmp/pki/node-$slot" --cluster "$cluster_id" --node "$slot" \
    --dns "dispotify-node-$slot" --days 1 >/dev/null
  cp "$tmp/pki/node-$slot/tls.crt" "$tmp/secret/dispotify_node_${slot}_tls_crt"
  cp "$tmp/pki/node-$slot/tls.key" "$tmp/secret/dispotify_node_${slot}_tls_key"
done
# Through files, not process substitution: set -e must see the parser fail. Every secret the
# stack names must be one made above (a new one needs its content here).
"$here/stack_service.py" "$stack" "$service" --secrets >"$tmp/secrets"
while read -r name; do
  [[ -f "$tmp/secret/$name" ]] || fail "the stack names the secret $name, which this test does not make"
  podman secret create "$prefix$name" "$tmp/secret/$name" >/dev/null
  secrets+=("$prefix$name")
done <"$tmp/secrets"
echo "image-test: secrets: ${#secrets[@]} (a CA and $replicas node certificates from dispotify-pki, admin password, API token)"
endpoints=()
for slot in $(seq 1 "$replicas"); do
  "$here/stack_service.py" "$stack" "$service" --slot "$slot" --prefix "$prefix" >"$tmp/spec-$slot"
  mapfile -d '' spec <"$tmp/spec-$slot"
  opts=() cmd=() seen=0
  for a in "${spec[@]}"; do
    if [[ $seen == 0 && "$a" == -- ]]; then seen=1; elif [[ $seen == 0 ]]; then opts+=("$a"); else cmd+=("$a"); fi
  done
  c=${prefix}node-$slot
  containers+=("$c")
  podman run -d --name "$c" --network "$net" --network-alias "$alias" \
    --security-opt no-new-privileges -p 127.0.0.1::8080 \
    "${opts[@]}" "$node_image" "${cmd[@]}" >/dev/null
  endpoints+=("http://$(podman port "$c" 8080/tcp | head -n1)")
done
echo "image-test: $replicas containers from the stack's service '$service': ${containers[*]}"

# 3. Hardening, seen from the host.
for c in "${containers[@]}"; do
  pid=$(podman inspect --format '{{.State.Pid}}' "$c")
  [[ "$pid" -gt 0 ]] || fail "$c is not running"
  status=/proc/$pid/status
  awk '$1 == "Uid:" { exit !($2 == 10001 && $3 == 10001 && $4 == 10001 && $5 == 10001) }' "$status" ||
    fail "$c does not run as UID 10001: $(grep '^Uid:' "$status")"
  grep -q '^CapEff:[[:space:]]*0000000000000000$' "$status" || fail "$c has capabilities: $(grep '^Cap' "$status")"
  grep -q '^CapPrm:[[:space:]]*0000000000000000$' "$status" || fail "$c has capabilities: $(grep '^Cap' "$status")"
  grep -q '^NoNewPrivs:[[:space:]]*1$' "$status" || fail "$c runs without no_new_privs"
  awk '$5 == "/" { found = 1; exit !($6 ~ /(^|,)ro(,|$)/) } END { exit !found }' "/proc/$pid/mountinfo" ||
    fail "$c's root file system is not read-only"
done
echo "image-test: every container runs as UID 10001, no capabilities, no_new_privs, read-only /"

# Mutual TLS between the nodes, each as its own slot's identity; nothing in plaintext.
for slot in $(seq 1 "$replicas"); do
  c=${containers[$((slot - 1))]}
  want="TLS: gRPC uses mutual TLS as spiffe://dispotify/$cluster_id/node/$slot "
  deadline=$((SECONDS + 30))
  # Through a file: with pipefail, grep -q leaving early could fail the pipeline (SIGPIPE).
  until podman logs "$c" >"$tmp/log" 2>&1 && grep -qF "$want" "$tmp/log"; do
    ((SECONDS < deadline)) || fail "$c never logged '$want'"
    sleep 1
  done
  if grep -q 'insecure_grpc is set' "$tmp/log"; then fail "$c runs plaintext gRPC"; fi
done
echo "image-test: every node speaks mutual TLS as spiffe://dispotify/$cluster_id/node/<its slot>"

cluster_ready() {  # every node a healthy voter, as the first container sees it
  "$ctl" -e "${endpoints[0]}" -t 3 --token "$token" --json cluster status 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
m = s.get("members", [])
ok = len(m) == int(sys.argv[1]) and all(x["role"] in ("leader", "voter") and x["healthy"] for x in m)
sys.exit(0 if ok else 1)' "$replicas"
}
deadline=$((SECONDS + 120))
until cluster_ready; do
  ((SECONDS < deadline)) || { "$ctl" -e "${endpoints[0]}" -t 3 --token "$token" cluster status >&2 || true; fail "no cluster of $replicas voters within 120 s"; }
  sleep 1
done
echo "image-test: $replicas voters, all healthy, joined through $alias"
# The joining nodes resolve the alias themselves (ResolveSeeds: glibc's resolver, which must work
# in an image without libnss files) and try its addresses. The first to join registered through
# an address of the alias; a later one may also have been sent to the leader by a member.
via_address=0
for c in "${containers[@]:1}"; do
  line=$(podman logs "$c" 2>&1 | grep -m1 'registered with the leader as a learner (via ' || true)
  echo "image-test: $c: ${line:-no registration logged}"
  [[ "$line" =~ \(via\ [0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+\)$ ]] && via_address=1
done
((via_address)) || fail "no node registered through an address that $alias resolved to"
"$ctl" -e "${endpoints[0]}" --token "$token" cluster status

# The admin API wants the token the secret holds.
if "$ctl" -e "${endpoints[0]}" -t 5 replication set "$replicas" >/dev/null 2>&1; then
  fail "an admin call without the token was accepted"
fi
"$ctl" -e "${endpoints[0]}" -t 10 --token "$token" replication set "$replicas" >/dev/null ||
  fail "an admin call with the secret's token was refused"
echo "image-test: the admin API refuses a call without the token and accepts the secret's"

# Users and roles: anonymous requests are refused on every node, and the first admin signs in
# with the password of its secret (the CLI keeps the session's token in this run's file).
http_status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
for ep in "${endpoints[@]}"; do
  for path in /music/songs /cluster/status "/music/search?q=song"; do
    code=$(http_status "$ep$path")
    [[ "$code" == 401 ]] || fail "anonymous GET $ep$path: HTTP $code, want 401"
  done
done
echo "image-test: anonymous GET /music/songs, /cluster/status, /music/search: 401 on every node"
printf '%s\n' "wrong-$password" | "$ctl" -e "${endpoints[0]}" -t 10 login admin --password-stdin >/dev/null 2>&1 &&
  fail "the first admin signed in with a wrong password"
printf '%s\n' "$password" | "$ctl" -e "${endpoints[0]}" -t 10 login admin --password-stdin >/dev/null ||
  fail "the first admin could not sign in with the password of the secret"
[[ -s "$DISPOTIFY_TOKEN_FILE" ]] || fail "dispotifyctl login stored no token"
echo "image-test: signed in as admin with the secret's password (a wrong one refused)"

# Upload through the first container, stream back through the second.
mkdir -p "$tmp/music"
song=$tmp/music/Container-Song.mp3
ffmpeg -loglevel error -f lavfi -i "sine=frequency=440:duration=3" -metadata title="Container Song" \
  -metadata artist="Dispotify Images" "$song"
code=$(http_status -F "file=@$song" "${endpoints[0]}/music/upload")
[[ "$code" == 401 ]] || fail "an anonymous upload: HTTP $code, want 401"
file_id=$("$ctl" -e "${endpoints[0]}" -t 30 --json upload "$song" | python3 -c '
import json, sys
up = json.load(sys.stdin)["uploaded"]
print(up[0]["file_id"] if len(up) == 1 else "")')
[[ -n "$file_id" ]] || fail "the upload through ${endpoints[0]} stored nothing"
"$ctl" -e "${endpoints[1]}" -t 30 --json ls | python3 -c '
import json, sys
d = json.load(sys.stdin)
items = d.get("items", []) if isinstance(d, dict) else d
# The title comes from the tags, which dispotify-tagger (a child process in the image) read.
sys.exit(0 if any(s.get("file_id") == sys.argv[1] and s.get("title") == "Container Song" for s in items) else 1)' "$file_id" ||
  fail "the song uploaded through ${endpoints[0]} is not listed by ${endpoints[1]} with the title of its tags"
"$ctl" -e "${endpoints[1]}" -t 30 stream "$file_id" -o "$tmp/streamed.mp3"
cmp -s "$song" "$tmp/streamed.mp3" || fail "the song streamed through ${endpoints[1]} differs from the one uploaded"
code=$(http_status "${endpoints[1]}/music/stream/$file_id")
[[ "$code" == 401 ]] || fail "an anonymous stream of $file_id: HTTP $code, want 401"
echo "image-test: uploaded $file_id through ${containers[0]}, streamed it identical through ${containers[1]} (signed in; anonymous upload and stream: 401)"
if ((${#web_args[@]})); then
  page=$(curl -fsS -D "$tmp/ui.headers" "${endpoints[2]}/albums") || fail "GET /albums of ${containers[2]}: no web UI"
  [[ "$page" == *'<div id="root">'* ]] || fail "${containers[2]} answers / with something else than the UI: ${page:0:200}"
  grep -qi '^content-security-policy:' "$tmp/ui.headers" || fail "the UI's page has no Content-Security-Policy"
  echo "image-test: ${containers[2]} serves the web UI (index.html for the client route /albums, with its CSP)"
fi

# Each container's HEALTHCHECK (the image's, which is the stack's).
for c in "${containers[@]}"; do
  out=$(podman healthcheck run "$c" 2>&1) || fail "podman healthcheck run $c: $out"
  [[ "$(podman inspect --format '{{.State.Health.Status}}' "$c")" == healthy ]] ||
    fail "$c is not healthy after its health check ($out)"
done
echo "image-test: podman healthcheck run: every container healthy"

# 4. The probes from the images: a closed port fails clearly; the operator's reaches a node.
hard=(--rm --network "$net" --read-only --cap-drop ALL --security-opt no-new-privileges)
rc=0
out=$(podman run "${hard[@]}" "$node_image" probe http://127.0.0.1:1/healthz 2>&1) || rc=$?
[[ $rc == 1 && "$out" == *"GET http://127.0.0.1:1/healthz: no answer"* ]] ||
  fail "the probe of a closed port: exit $rc, '$out' (want exit 1 and 'no answer')"
echo "image-test: probe of a closed port: exit 1, $out"
out=$(podman run "${hard[@]}" "$operator_image" probe "http://${containers[1]}:8080/healthz" 2>&1) ||
  fail "the operator image's probe of ${containers[1]}: $out"
echo "image-test: the operator image's probe of ${containers[1]}'s /healthz: $out"
echo "image-test: PASSED"
