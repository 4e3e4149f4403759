#!/usr/bin/env bash
# Checks deploy/swarm/docker-stack.yml offline with every validator there is: `docker stack config`
# (the docker command-line tool needs no daemon for it) and Debian's `docker-compose config -q`
# (scripts/install-deps.sh installs it). At least one must be there; each must accept the file.
# It also makes sure the validators do reject a broken copy, so that a validator that accepts
# anything cannot pass this test.
#   e2e/containers/stack-check.sh [STACK_FILE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
stack=${1:-$here/../../deploy/swarm/docker-stack.yml}

validators=()
if command -v docker >/dev/null; then validators+=(docker); fi
if command -v docker-compose >/dev/null; then validators+=(docker-compose); fi
((${#validators[@]} > 0)) || skip_or_fail stack-check "neither docker nor docker-compose is installed (scripts/install-deps.sh)"

check() {  # check VALIDATOR FILE
  case $1 in
    docker) docker stack config -c "$2" >/dev/null ;;
    docker-compose) docker-compose -f "$2" config -q ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The images' variable has a default; the check must not depend on the caller's environment.
unset DISPOTIFY_NODE_IMAGE
sed 's/parallelism: 1$/parallelism: one/' "$stack" >"$tmp/broken.yml"
cmp -s "$stack" "$tmp/broken.yml" && { echo "stack-check: could not break a copy of $stack" >&2; exit 1; }

for v in "${validators[@]}"; do
  check "$v" "$stack" || { echo "stack-check: $v rejects $stack" >&2; exit 1; }
  if check "$v" "$tmp/broken.yml" 2>/dev/null; then
    echo "stack-check: $v accepted a broken stack file (deploy.update_config.parallelism: one)" >&2
    exit 1
  fi
  echo "stack-check: $v accepts $stack"
done
