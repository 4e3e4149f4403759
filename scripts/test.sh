#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds and runs every test in the release preset,
# then again under AddressSanitizer + UndefinedBehaviorSanitizer (all but the Kubernetes suite,
# ctest label k8s, the container images, label containers, the monitoring checks, label
# monitoring, the browser tests, label browser, and lint, which run in the release preset only).
#   scripts/test.sh            release + asan
#   scripts/test.sh release    one preset only (release, asan, tsan, debug)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
# schemathesis (REST API fuzzing), dispotify-lincheck (Go), @grafana/schema and tsc (npm; the
# dashboard's type check), and the Kubernetes binaries and test
# kubelet of the operator's end-to-end tests (e2e/k8s; the first build takes about 11 minutes),
# chromium, playwright-core and @axe-core/playwright (the browser tests, e2e/web), ORY Hydra
# (the OIDC test; the first build takes a few minutes), and cosign and a registry (the image
# test's signatures; about 10 minutes to build once).
./scripts/install-test-tools.sh
# The tools are installed now: the e2e/k8s tests fail instead of skipping if they are missing.
export DISPOTIFY_REQUIRE_K8S=1
# So do the image and Swarm stack tests (e2e/containers; podman and docker-compose come from
# install-deps.sh).
export DISPOTIFY_REQUIRE_CONTAINERS=1
# And the browser tests (e2e/web: chromium and the npm packages from install-test-tools.sh, nginx
# and ffmpeg from install-deps.sh).
export DISPOTIFY_REQUIRE_BROWSER=1
# And the OIDC test (e2e/oidc_e2e_test.cc: ORY Hydra from install-test-tools.sh).
export DISPOTIFY_REQUIRE_OIDC=1

# ccache keys on paths relative to the checkout and not on the build directory (the presets
# compile with -g, which otherwise hashes it), so a clone elsewhere (a CI run) reuses the objects
# an earlier build compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(release asan); fi

for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure, build, test ==="
  cmake --preset "$preset"
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
