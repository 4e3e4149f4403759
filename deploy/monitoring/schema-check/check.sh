#!/usr/bin/env bash
# Type-checks Grafana dashboards against Grafana's published schema: generate-ts.mjs writes them as
# TypeScript constants typed with @grafana/schema, and tsc (both pinned in package.json and
# package-lock.json) compiles that with --strict. ctest runs it (label monitoring):
#   deploy/monitoring/schema-check/check.sh [DASHBOARD.json...]   (default: deploy/monitoring/grafana/*.json)
#   deploy/monitoring/schema-check/check.sh --self-test           a broken copy must fail
# node_modules come from scripts/install-test-tools.sh (npm ci into a cache dir keyed by the
# lockfile); a missing install fails the check rather than skipping it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
modules="$("$repo/scripts/install-test-tools.sh" --print-grafana-schema)/node_modules"
if [[ ! -x "$modules/.bin/tsc" || ! -d "$modules/@grafana/schema" ]]; then
  echo "check.sh: no @grafana/schema and tsc in $modules: run scripts/install-test-tools.sh" >&2
  exit 1
fi
if [[ "${1:-}" == --self-test ]]; then
  # Proves the check fails on what it must catch: a value outside an enum and a misspelt field, in
  # a copy of the real dashboard.
  dir=$(mktemp -d "${TMPDIR:-/tmp}/dispotify-schema-self-test.XXXXXX")
  trap 'rm -rf "$dir"' EXIT
  node -e '
    const fs = require("fs");
    const d = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const stat = d.panels.find((p) => p.type === "stat");
    const ts = d.panels.find((p) => p.type === "timeseries");
    stat.fieldConfig.defaults.thresholds.mode = "absolut";
    ts.options.legend.placment = "bottom";
    fs.writeFileSync(process.argv[2], JSON.stringify(d));
  ' "$repo/deploy/monitoring/grafana/dispotify-cluster.json" "$dir/broken.json"
  if "$0" "$dir/broken.json" >"$dir/out" 2>&1; then
    echo "check.sh --self-test: a broken dashboard passed" >&2
    exit 1
  fi
  for want in '"absolut"' '"placment"'; do
    grep -q "$want" "$dir/out" || { echo "check.sh --self-test: no error about $want:" >&2; cat "$dir/out" >&2; exit 1; }
  done
  echo "check.sh --self-test: a wrong enum value and an unknown field are both reported"
  exit 0
fi
dashboards=("$@")
if ((${#dashboards[@]} == 0)); then dashboards=("$repo"/deploy/monitoring/grafana/*.json); fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dispotify-schema-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ln -s "$modules" "$tmp/node_modules"
cat >"$tmp/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "strict": true,
    "noEmit": true,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler",
    "skipLibCheck": true
  },
  "files": ["dashboards.ts"]
}
JSON
node "$here/generate-ts.mjs" "$tmp/dashboards.ts" "${dashboards[@]}"
"$modules/.bin/tsc" -p "$tmp/tsconfig.json"
echo "check.sh: ${#dashboards[@]} dashboard(s) match @grafana/schema $(node -p "require('$modules/@grafana/schema/package.json').version")"
