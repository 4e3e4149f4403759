#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds and runs every test in the release preset,
# then again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh            release + asan
#   scripts/test.sh release    one preset only (release, asan, tsan, debug)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/install-test-tools.sh  # schemathesis (REST API fuzzing), dispotify-lincheck (Go)

presets=("$@")
if ((${#presets[@]} == 0)); then presets=(release asan); fi

for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure, build, test ==="
  cmake --preset "$preset"
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
