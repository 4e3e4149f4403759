#!/usr/bin/env bash
# Runs one of e2e/k8s's script checks (crd-check.sh, helm-check.sh, testkubelet/smoke.sh) as a
# ctest test:
#   e2e/k8s/script-test.sh [--root] [--helm] SECONDS COMMAND [ARGS...]
#
# - Without the Kubernetes binaries (install-k8s.sh's kube-apiserver, kube-controller-manager,
#   kubectl and its stamp; etcd on PATH), without root when --root is given (the test kubelet
#   makes network namespaces), or without helm and its stamp when --helm is given
#   (install-helm.sh), it skips: exit 77, the tests' SKIP_RETURN_CODE. When
#   DISPOTIFY_REQUIRE_K8S is set (to anything but "" or "0"; scripts/test.sh sets it) it fails
#   instead. It never builds the binaries (that takes about 11 minutes: install-k8s.sh).
# - COMMAND runs under timeout(1), in a process group of its own: after SECONDS every process of
#   the group (the script, its kubectl calls, and the control plane and kubelet it started, which
#   stay in the group) gets SIGTERM, the script's EXIT trap stops what is left of its control
#   plane, and 60 s later whatever still runs gets SIGKILL. ctest's TIMEOUT must be above
#   SECONDS + 60 so that this, not ctest's kill of this script alone, ends a test that hangs.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
need_root=0
need_helm=0
while [[ "${1:-}" == --root || "${1:-}" == --helm ]]; do
  [[ "$1" == --root ]] && need_root=1
  [[ "$1" == --helm ]] && need_helm=1
  shift
done
[[ $# -ge 2 ]] || { echo "usage: $0 [--root] [--helm] SECONDS COMMAND [ARGS...]" >&2; exit 2; }
seconds=$1
shift

missing=()
bin=$("$here/install-k8s.sh" --print-bin)
for t in kube-apiserver kube-controller-manager kubectl; do
  [[ -x "$bin/$t" ]] || missing+=("$bin/$t")
done
# Without its stamp, install-k8s.sh (which control-plane.sh runs) would start a build.
[[ ${#missing[@]} -gt 0 || -f "$bin/.stamp" ]] || missing+=("$bin/.stamp (a build is running or was cut short)")
command -v etcd >/dev/null || missing+=("etcd (Debian package etcd-server)")
if [[ $need_root == 1 && $(id -u) -ne 0 ]]; then missing+=("root (network namespaces)"); fi
if [[ $need_helm == 1 ]]; then
  helm_bin=$("$here/install-helm.sh" --print-bin)
  [[ -x "$helm_bin/helm" && -f "$helm_bin/.stamp" ]] || missing+=("$helm_bin/helm or its stamp (e2e/k8s/install-helm.sh)")
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  why="missing: ${missing[*]} (scripts/install-test-tools.sh installs the tools)"
  if [[ -n "${DISPOTIFY_REQUIRE_K8S:-}" && "${DISPOTIFY_REQUIRE_K8S}" != 0 ]]; then
    echo "*** FAILING $(basename "$1"): $why; DISPOTIFY_REQUIRE_K8S is set ***" >&2
    exit 1
  fi
  echo "*** SKIPPING $(basename "$1"): $why ***" >&2
  exit 77
fi

rc=0
timeout --kill-after=60 "$seconds" "$@" || rc=$?
if [[ $rc == 124 || $rc == 137 ]]; then
  echo "*** $(basename "$1") timed out after $seconds s and was stopped ***" >&2
fi
exit "$rc"
