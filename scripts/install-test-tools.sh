#!/usr/bin/env bash
# Installs the tools that the tests use, each cached and rebuilt only when its pin changes:
#   - Python tools from PyPI (pinned) in a private virtualenv:
#       ${DISPOTIFY_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/venv}
#     Today: schemathesis (the `st` command), which fuzzes the REST API against docs/openapi.yaml
#     (e2e/schemathesis/run.sh, ctest label api).
#   - dispotify-lincheck, the linearizability checker of e2e/linearizability (Go, porcupine), built
#     with `go build` into ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/bin/dispotify-lincheck.
#   - The Kubernetes tools of the operator's end-to-end tests (e2e/k8s, ctest label operator):
#     kube-apiserver, kube-controller-manager and kubectl built from their Go module by
#     e2e/k8s/install-k8s.sh into ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/k8s-<version>/bin
#     (first run only: about 11 minutes on 2 cores), the test kubelet built by
#     e2e/k8s/build-testkubelet.sh into ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/bin, and helm
#     (the chart's test) built from its Go module by e2e/k8s/install-helm.sh into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/helm-<version>/bin (first run only: about 3
#     minutes). etcd is Debian's etcd-server (scripts/install-deps.sh).
#   - ORY Hydra, the OpenID Connect provider of the OIDC test (e2e/oidc_e2e_test.cc, ctest label
#     security), built from its Go module by e2e/oidc/install-hydra.sh into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/hydra-<version>/bin (first run only: see the
#     script for the time it takes).
#   - cosign and a container registry (distribution), the image test's signing step
#     (e2e/containers/sign-verify.sh, ctest label containers), built from their Go modules by
#     e2e/containers/install-signing-tools.sh into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/cosign-<version>/bin and registry-<version>/bin
#     (first run only: see the script for the time it takes).
#   - @grafana/schema and tsc (npm, pinned by deploy/monitoring/schema-check/package-lock.json),
#     which type-check the Grafana dashboards (deploy/monitoring/schema-check/check.sh, ctest label
#     monitoring): `npm ci` into
#       ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/grafana-schema-<hash of package.json + lockfile>
#     so every checkout with the same pins shares one install, and a bumped pin gets a new one.
#   - The browser tests' npm packages, playwright-core and @axe-core/playwright (pinned by
#     e2e/web/package-lock.json; e2e/web/run.sh, ctest label web and browser), the same way into
#       ${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/browser-tests-<hash of package.json + lockfile>
#     and Debian's chromium when it is missing (apt; playwright never downloads a browser).
# Idempotent, non-interactive and silent when everything is already installed (stamp files record
# what was installed: the pins for the venv, a hash of the Go sources and toolchain for the
# checker). --print-venv prints the venv's path, --print-lincheck the checker's,
# --print-grafana-schema the directory whose node_modules hold @grafana/schema and tsc,
# --print-browser-tests the one whose node_modules hold playwright-core and @axe-core/playwright.
# Environment: PYTHON (the interpreter that creates the venv, default python3), GO (default go).
set -euo pipefail

venv=${DISPOTIFY_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/venv}
lincheck=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/bin/dispotify-lincheck
schema_check_src="$(cd "$(dirname "$0")/../deploy/monitoring/schema-check" && pwd)"
grafana_schema=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/grafana-schema-$(
  cat "$schema_check_src/package.json" "$schema_check_src/package-lock.json" | sha256sum | cut -c1-16
)
browser_tests_src="$(cd "$(dirname "$0")/../e2e/web" && pwd)"
browser_tests=${XDG_CACHE_HOME:-$HOME/.cache}/dispotify/browser-tests-$(
  cat "$browser_tests_src/package.json" "$browser_tests_src/package-lock.json" | sha256sum | cut -c1-16
)
case "${1:-}" in
  --print-browser-tests)
    echo "$browser_tests"
    exit 0
    ;;
  --print-grafana-schema)
    echo "$grafana_schema"
    exit 0
    ;;
  --print-venv)
    echo "$venv"
    exit 0
    ;;
  --print-lincheck)
    echo "$lincheck"
    exit 0
    ;;
esac

install_python_tools() {
  # Bump a pin here and every machine reinstalls on its next run.
  # spdx-tools: pyspdxtools validates the images' SBOMs (e2e/containers/image-test.sh).
  local requirements=(schemathesis==4.32.5 spdx-tools==0.8.3)
  local stamp="$venv/.dispotify-requirements"
  local want="${requirements[*]}"

  if [[ -x "$venv/bin/python" && -x "$venv/bin/st" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
    "$venv/bin/python" -c '' 2>/dev/null; then
    return 0
  fi

  local python=${PYTHON:-python3}
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
  "$venv/bin/pyspdxtools" --help >/dev/null
  echo "$want" >"$stamp"
}

install_lincheck() {
  local go=${GO:-go}
  local src
  src="$(cd "$(dirname "$0")/../e2e/linearizability" && pwd)"
  if ! command -v "$go" >/dev/null; then
    echo "install-test-tools: no '$go' on PATH to build dispotify-lincheck (scripts/install-deps.sh installs golang-go)" >&2
    return 1
  fi
  # The stamp names what the binary was built from: the toolchain, go.mod, go.sum and every
  # non-test Go source (paths relative to the module, so every checkout of the same sources
  # shares the binary).
  local stamp="$lincheck.stamp" want
  want="dispotify-lincheck $("$go" env GOVERSION) $(
    cd "$src" &&
      find . -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum | LC_ALL=C sort |
      xargs sha256sum | sha256sum | cut -d' ' -f1
  )"
  if [[ -x "$lincheck" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi

  echo "install-test-tools: building $lincheck" >&2
  mkdir -p "$(dirname "$lincheck")"
  # Built aside and renamed, so that a concurrent run never sees half a binary. -mod=readonly:
  # go.sum pins porcupine; the module proxy (or the module cache, once filled) supplies it.
  local tmp="$lincheck.tmp.$$"
  (cd "$src" && "$go" build -mod=readonly -buildvcs=false -trimpath -o "$tmp" ./cmd/dispotify-lincheck)
  mv -f "$tmp" "$lincheck"
  echo "$want" >"$stamp"
}

install_signing_tools() {
  # Silent and well under a second when both pinned binaries are cached.
  "$(cd "$(dirname "$0")/../e2e/containers" && pwd)/install-signing-tools.sh"
}

install_grafana_schema() {
  local stamp="$grafana_schema/.dispotify-installed"
  if [[ -f "$stamp" && -x "$grafana_schema/node_modules/.bin/tsc" ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    echo "install-test-tools: no npm on PATH to install @grafana/schema (scripts/install-deps.sh installs nodejs and npm)" >&2
    return 1
  fi
  echo "install-test-tools: npm ci @grafana/schema and typescript into $grafana_schema" >&2
  # Installed aside and renamed, so that a concurrent run never sees half a node_modules.
  local tmp="$grafana_schema.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp "$schema_check_src/package.json" "$schema_check_src/package-lock.json" "$tmp/"
  (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$tmp/.dispotify-installed"
  rm -rf "$grafana_schema"
  mv "$tmp" "$grafana_schema"
}

install_browser_tests() {
  if [[ ! -x /usr/bin/chromium ]]; then
    echo "install-test-tools: installing Debian's chromium (the browser tests, e2e/web)" >&2
    local sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends chromium ||
      { "${sudo_cmd[@]}" apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends chromium; }
  fi
  local stamp="$browser_tests/.dispotify-installed"
  if [[ -f "$stamp" && -d "$browser_tests/node_modules/playwright-core" ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null; then
    echo "install-test-tools: no npm on PATH to install playwright-core (scripts/install-deps.sh installs nodejs and npm)" >&2
    return 1
  fi
  echo "install-test-tools: npm ci playwright-core and @axe-core/playwright into $browser_tests" >&2
  # --ignore-scripts: playwright-core has no install script today; none may ever fetch a browser.
  local tmp="$browser_tests.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp "$browser_tests_src/package.json" "$browser_tests_src/package-lock.json" "$tmp/"
  (cd "$tmp" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$tmp/.dispotify-installed"
  rm -rf "$browser_tests"
  mv "$tmp" "$browser_tests"
}

install_k8s_tools() {
  local k8s
  k8s="$(cd "$(dirname "$0")/../e2e/k8s" && pwd)"
  # Each script is silent and takes well under a second when its binaries are up to date.
  "$k8s/install-k8s.sh"
  "$k8s/build-testkubelet.sh"
  "$k8s/install-helm.sh"
}

install_hydra() {
  # Silent and well under a second when the pinned binary is cached.
  "$(cd "$(dirname "$0")/../e2e/oidc" && pwd)/install-hydra.sh"
}

install_python_tools
install_lincheck
install_hydra
install_signing_tools
install_grafana_schema
install_browser_tests
install_k8s_tools
