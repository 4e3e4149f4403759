#!/usr/bin/env bash
# ctest's web_test: the Vitest suite. Exit 77 (skipped) when npm is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "web_test: npm/node not found: skipped (scripts/install-deps.sh installs them)"
  exit 77
fi
export npm_config_update_notifier=false
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm_config_cache="${1:-$HOME/.cache/dispotify/npm}" npm ci --no-audit --no-fund --prefer-offline
fi
exec npm test --silent
