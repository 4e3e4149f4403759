#!/usr/bin/env bash
# The images' signatures, end to end (called by e2e/containers/image-test.sh on the images it built):
#   e2e/containers/sign-verify.sh IMAGE...
# 1. Starts a registry (distribution, built from its Go module by install-signing-tools.sh) on
#    127.0.0.1 at a free port, its storage in a temporary directory, and pushes each image to it.
#    The pushed manifest must name the local image's config (its image ID), so the digest that is
#    signed is the image's that the test then runs.
# 2. Makes a throwaway cosign key pair for this run (password: $COSIGN_PASSWORD, empty if unset)
#    and signs each image's digest with it: `cosign sign --key`, with no transparency log
#    (--tlog-upload=false: nothing outside this machine is reachable; the signature is stored in
#    the registry beside the image, as a release's would be).
# 3. `cosign verify --key` (--insecure-ignore-tlog, the matching flag) must accept each signed
#    image by digest and by tag, with a payload naming that digest; and must refuse
#    - the same image checked against another key pair's public key;
#    - the tag re-pointed at a tampered image (the signed image plus one changed layer), unsigned;
#    - that tampered image carrying the original's signature (the signature manifest copied under
#      the tampered digest's signature tag): the signed payload names another digest.
# Prints how long signing and verifying took. Everything it started or made (the registry, its
# storage, the keys, the tampered image) is removed on exit, whatever happened.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
(($# > 0)) || { echo "usage: $0 IMAGE..." >&2; exit 2; }

"$here/install-signing-tools.sh"
cosign=$("$here/install-signing-tools.sh" --print-cosign)
registry_bin=$("$here/install-signing-tools.sh" --print-registry)

start=$SECONDS
tmp=$(mktemp -d)
registry_pid=""
tampered=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n "$registry_pid" ]]; then
    kill "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null
  fi
  [[ -z "$tampered" ]] || podman rmi -f "$tampered" >/dev/null 2>&1
  [[ $rc == 0 ]] || { echo "--- registry log (last 20 lines) ---" >&2; tail -n 20 "$tmp/registry.log" >&2; }
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "sign-verify: FAILED: $*" >&2; exit 1; }

# cosign keeps a TUF cache and a config in $HOME; this run keeps them in its own directory. Its
# verify looks for Sigstore's trusted root (Rekor's and Fulcio's keys, unused with --key and no
# log) in the public TUF repository first: a mirror on a closed local port, with no root.json
# cached for it, makes that fail at once without a look-up of any outside name. No tracing
# exporter for the registry (OpenTelemetry would try to reach a collector).
export HOME=$tmp/home TUF_ROOT=$tmp/home/.sigstore TUF_MIRROR=http://127.0.0.1:1/no-tuf
export OTEL_TRACES_EXPORTER=none OTEL_SDK_DISABLED=true
export COSIGN_PASSWORD=${COSIGN_PASSWORD:-}
mkdir -p "$HOME"
# Against the registry of this test, which speaks plain HTTP on 127.0.0.1 only.
registry_flags=(--allow-insecure-registry --allow-http-registry)

# 1. The registry. The port is picked free just before; if another process takes it meanwhile the
#    registry fails to start and this says so.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:$port
EOF
"$registry_bin" serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
registry_pid=$!
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$base/v2/" 2>/dev/null && break
  kill -0 "$registry_pid" 2>/dev/null || fail "the registry exited: $(tail -n 5 "$tmp/registry.log")"
  sleep 0.1
done
curl -fsS -o /dev/null "$base/v2/" || fail "the registry does not answer on $base"
echo "sign-verify: registry $("$registry_bin" --version 2>/dev/null | awk '{print $NF}') on 127.0.0.1:$port"

manifest_accept='application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'
refs=() digests=()
for image in "$@"; do
  name=$(basename "${image%%:*}")
  ref=127.0.0.1:$port/$name:test
  podman push --quiet --tls-verify=false --digestfile "$tmp/digest" "$image" "docker://$ref" >/dev/null
  digest=$(cat "$tmp/digest")
  [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "push of $image: no digest ('$digest')"
  config=$(curl -fsS -H "Accept: $manifest_accept" "$base/v2/$name/manifests/$digest" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])')
  id=$(podman image inspect --format '{{.Id}}' "$image")
  [[ "$config" == "sha256:$id" ]] || fail "the manifest pushed for $image names config $config, not the image's sha256:$id"
  refs+=("$ref") digests+=("$digest")
done
echo "sign-verify: pushed ${#refs[@]} images; each manifest names its local image's config"

# 2. The keys of this run, and the signatures.
(cd "$tmp" && "$cosign" generate-key-pair --output-key-prefix signer >/dev/null 2>&1) ||
  fail "cosign generate-key-pair"
(cd "$tmp" && "$cosign" generate-key-pair --output-key-prefix other >/dev/null 2>&1) ||
  fail "cosign generate-key-pair (the second pair)"
for i in "${!refs[@]}"; do
  by_digest=${refs[$i]%:test}@${digests[$i]}
  t0=$(date +%s%N)
  "$cosign" sign --yes --key "$tmp/signer.key" --tlog-upload=false "${registry_flags[@]}" \
    "$by_digest" >"$tmp/sign.log" 2>&1 || fail "cosign sign $by_digest: $(cat "$tmp/sign.log")"
  t1=$(date +%s%N)
  echo "sign-verify: signed $by_digest in $(((t1 - t0) / 1000000)) ms"
done

verify() {  # verify KEY REF: cosign verify's JSON on stdout; its messages in $tmp/verify.log
  "$cosign" verify --key "$1" --insecure-ignore-tlog=true --offline=true "${registry_flags[@]}" --output json "$2" 2>"$tmp/verify.log"
}
# The payloads must name exactly this digest (cosign checks it too; this test does not take it
# on trust).
names_digest() {  # names_digest DIGEST < cosign verify's JSON
  python3 -c '
import json, sys
payloads = json.load(sys.stdin)
seen = {p["critical"]["image"]["docker-manifest-digest"] for p in payloads}
sys.exit(0 if payloads and seen == {sys.argv[1]} else 1)' "$1"
}

# A refusal must be for the reason the case is about, not any failure (a typo in a flag, an
# unreachable registry).
refused_because() {  # refused_because CASE TEXT: the last verify failed saying TEXT
  grep -qF "$2" "$tmp/verify.log" || fail "$1: cosign verify failed, but not with '$2': $(cat "$tmp/verify.log")"
  echo "sign-verify: refused $1: $(tail -n 1 "$tmp/verify.log")"
}

# 3. Verification: accepted with the signer's key, by digest and by tag.
for i in "${!refs[@]}"; do
  by_digest=${refs[$i]%:test}@${digests[$i]}
  t0=$(date +%s%N)
  out=$(verify "$tmp/signer.pub" "$by_digest") || fail "cosign verify $by_digest: $(cat "$tmp/verify.log")"
  t1=$(date +%s%N)
  names_digest "${digests[$i]}" <<<"$out" || fail "cosign verify $by_digest: the payload names another digest: $out"
  out=$(verify "$tmp/signer.pub" "${refs[$i]}") || fail "cosign verify ${refs[$i]}: $(cat "$tmp/verify.log")"
  names_digest "${digests[$i]}" <<<"$out" || fail "cosign verify ${refs[$i]}: the payload names another digest: $out"
  echo "sign-verify: verified $by_digest (and its tag) in $(((t1 - t0) / 1000000)) ms"
done

# Refused: another key.
first=${refs[0]%:test}@${digests[0]}
if verify "$tmp/other.pub" "$first" >/dev/null; then fail "cosign verify accepted $first with another key"; fi
refused_because "with another key" "no matching signatures: invalid signature"

# Refused: the tag re-pointed at a tampered image (one more layer: a changed file).
mkdir -p "$tmp/tamper"
echo "not what was signed" >"$tmp/tamper/NOTICE"
printf 'FROM %s\nCOPY NOTICE /usr/local/share/doc/dispotify/NOTICE\n' "$1" >"$tmp/tamper/Containerfile"
tampered=localhost/$(basename "${1%%:*}")-tampered:$$
podman build --quiet --layers=false --format docker -f "$tmp/tamper/Containerfile" -t "$tampered" "$tmp/tamper" >/dev/null
podman push --quiet --tls-verify=false --digestfile "$tmp/digest" "$tampered" "docker://${refs[0]}" >/dev/null
tampered_digest=$(cat "$tmp/digest")
[[ "$tampered_digest" != "${digests[0]}" ]] || fail "the tampered image has the signed image's digest"
if verify "$tmp/signer.pub" "${refs[0]}" >/dev/null; then fail "cosign verify accepted ${refs[0]} re-pointed at a tampered image"; fi
refused_because "the tag re-pointed at a tampered image ($tampered_digest)" "no signatures found"

# Refused: the tampered image with the original's signature copied beside it. cosign finds a
# signature by the tag sha256-<hex>.sig; the manifest moves whole (its blobs are in the same
# repository), so only the signed payload's digest can tell.
repo=${refs[0]#127.0.0.1:$port/}
repo=${repo%:test}
sig_type=application/vnd.oci.image.manifest.v1+json
curl -fsS -H "Accept: $sig_type" -o "$tmp/sig.json" "$base/v2/$repo/manifests/sha256-${digests[0]#sha256:}.sig" ||
  fail "no signature manifest for ${digests[0]} in the registry"
curl -fsS -X PUT -H "Content-Type: $sig_type" --data-binary "@$tmp/sig.json" -o /dev/null \
  "$base/v2/$repo/manifests/sha256-${tampered_digest#sha256:}.sig" || fail "could not copy the signature manifest"
if verify "$tmp/signer.pub" "${refs[0]%:test}@$tampered_digest" >/dev/null; then
  fail "cosign verify accepted the tampered image carrying the original's signature"
fi
refused_because "the tampered image carrying the original's signature" "invalid or missing digest in claim: ${digests[0]}"
echo "sign-verify: PASSED in $((SECONDS - start)) s"
