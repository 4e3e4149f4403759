# Shared by the scripts of e2e/containers (sourced): what to do when a tool is missing.
# Without the tools a test skips (exit 77, the tests' SKIP_RETURN_CODE); when
# DISPOTIFY_REQUIRE_CONTAINERS is set (to anything but "" or "0"; scripts/test.sh sets it) it fails
# instead, so CI cannot pass by skipping.

# skip_or_fail TEST WHY
skip_or_fail() {
  if [[ -n "${DISPOTIFY_REQUIRE_CONTAINERS:-}" && "${DISPOTIFY_REQUIRE_CONTAINERS}" != 0 ]]; then
    echo "*** FAILING $1: $2; DISPOTIFY_REQUIRE_CONTAINERS is set ***" >&2
    exit 1
  fi
  echo "*** SKIPPING $1: $2 ***" >&2
  exit 77
}
