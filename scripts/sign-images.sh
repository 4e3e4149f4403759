#!/usr/bin/env bash
# Signs released images with cosign, then verifies each signature with the public key, as a
# release does after pushing the images to their registry:
#   scripts/sign-images.sh --key KEY --pub PUBLIC_KEY [--no-tlog] REGISTRY/NAME@sha256:DIGEST...
#
# KEY is anything `cosign sign --key` takes: a cosign.key file (its password in $COSIGN_PASSWORD)
# or, better for a release, a key that never leaves a KMS or an HSM (awskms://..., gcpkms://...,
# azurekms://..., hashivault://..., pkcs11:...); PUBLIC_KEY is its public half (a file, or the same
# KMS URI), the one published for users to verify with:
#   cosign verify --key dispotify-release.pub registry.example/dispotify-node@sha256:...
#
# Images are named by digest only: a tag can move between the push and the signature, and a
# signature is always of one digest (the release pipeline takes it from `podman push --digestfile`).
#
# By default the signature is also recorded in Sigstore's public transparency log (Rekor), which
# lets anyone audit what was signed with the key and when. --no-tlog keeps it out of the log, for
# a registry without access to it (or images that must not be announced); the verifier then needs
# --insecure-ignore-tlog=true, and this script passes it. The image test (e2e/containers/
# sign-verify.sh) signs that way, offline, with a key pair made for each run.
#
# cosign: $COSIGN, else on PATH, else the pinned build of e2e/containers/install-signing-tools.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
  echo "usage: $0 --key KEY --pub PUBLIC_KEY [--no-tlog] REGISTRY/NAME@sha256:DIGEST..." >&2
  exit 2
}
key="" pub="" tlog=true images=()
while (($#)); do
  case $1 in
    --key) key=${2:-}; shift 2 || usage ;;
    --pub) pub=${2:-}; shift 2 || usage ;;
    --no-tlog) tlog=false; shift ;;
    -*) usage ;;
    *) images+=("$1"); shift ;;
  esac
done
[[ -n "$key" && -n "$pub" && ${#images[@]} -gt 0 ]] || usage
for image in "${images[@]}"; do
  [[ "$image" =~ @sha256:[0-9a-f]{64}$ ]] || { echo "sign-images: $image is not named by digest (NAME@sha256:...)" >&2; exit 2; }
done

cosign=${COSIGN:-$(command -v cosign || true)}
if [[ -z "$cosign" ]]; then
  "$repo/e2e/containers/install-signing-tools.sh"
  cosign=$("$repo/e2e/containers/install-signing-tools.sh" --print-cosign)
fi

verify_flags=()
[[ $tlog == true ]] || verify_flags=(--insecure-ignore-tlog=true)
for image in "${images[@]}"; do
  "$cosign" sign --yes --key "$key" --tlog-upload="$tlog" "$image"
  "$cosign" verify --key "$pub" "${verify_flags[@]}" "$image" >/dev/null
  echo "sign-images: signed and verified $image"
done
