#!/usr/bin/env bash
# Installs the Python tools that the tests use (from PyPI, pinned) into a private virtualenv:
#   ${DISPOTIFY_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/venv}
# Today: schemathesis (the `st` command), which fuzzes the REST API against docs/openapi.yaml
# (e2e/schemathesis/run.sh, ctest label api).
# Idempotent, non-interactive and silent when everything is already installed (a stamp file in
# the venv records what was installed). Prints the venv's path with --print-venv.
# Environment: PYTHON (the interpreter that creates the venv, default python3).
set -euo pipefail

venv=${DISPOTIFY_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/venv}
if [[ "${1:-}" == --print-venv ]]; then
  echo "$venv"
  exit 0
fi

# Bump a pin here and every machine reinstalls on its next run.
requirements=(schemathesis==4.32.5)
stamp="$venv/.dispotify-requirements"
want="${requirements[*]}"

if [[ -x "$venv/bin/python" && -x "$venv/bin/st" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
  "$venv/bin/python" -c '' 2>/dev/null; then
  exit 0
fi

python=${PYTHON:-python3}
echo "install-test-tools: installing ${want} into $venv" >&2
if ! "$venv/bin/python" -c '' 2>/dev/null; then
  # Missing or broken (e.g. its interpreter was removed): start over.
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$venv/bin/python" -m pip install -q "${requirements[@]}"
"$venv/bin/st" --version >/dev/null
echo "$want" >"$stamp"
