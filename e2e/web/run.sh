#!/usr/bin/env bash
# ctest's web_browser_test: e2e/web/browser_test.mjs with playwright-core and @axe-core/playwright
# from the cache that scripts/install-test-tools.sh fills (npm ci of this folder's package.json and
# package-lock.json into a directory keyed by their hash, as for @grafana/schema).
#   e2e/web/run.sh --node-binary PATH --pki-binary PATH --web-root DIR --artifacts DIR
# Exit 77 (skipped) when node, the npm packages, chromium, nginx or ffmpeg are missing, unless
# DISPOTIFY_REQUIRE_BROWSER=1 (scripts/test.sh, so CI), which makes a missing tool a failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
missing() {
  if [[ "${DISPOTIFY_REQUIRE_BROWSER:-0}" == 1 ]]; then
    echo "web_browser_test: $* (DISPOTIFY_REQUIRE_BROWSER=1: failing instead of skipping)" >&2
    exit 1
  fi
  echo "web_browser_test: $*: skipped"
  exit 77
}
command -v node >/dev/null || missing "no node on PATH (scripts/install-deps.sh installs nodejs)"
modules="$("$repo/scripts/install-test-tools.sh" --print-browser-tests)/node_modules"
if [[ ! -d "$modules/playwright-core" || ! -d "$modules/@axe-core/playwright" ]]; then
  missing "no playwright-core and @axe-core/playwright in $modules (run scripts/install-test-tools.sh)"
fi
export DISPOTIFY_BROWSER_TEST_MODULES="$modules"
exec node "$here/browser_test.mjs" "$@"
