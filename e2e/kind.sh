#!/usr/bin/env bash
# The operator's scenario on a real Kubernetes cluster (kind) with real images, for a machine with
# a container engine and internet access. Not run in CI (our CI machines have neither a Docker
# engine nor a registry); the same scenario runs there against a real API server with the test
# kubelet (e2e/k8s/operator_e2e_test.cc). Untested on our machines: kind needs a privileged
# engine that the CI sandbox does not give.
#
#   e2e/kind.sh            create the cluster, build and load the images, run the scenario
#   KEEP=1 e2e/kind.sh     leave the kind cluster running afterwards
#
# Needs: kind (https://kind.sigs.k8s.io), kubectl, docker or podman (KIND_EXPERIMENTAL_PROVIDER=
# podman), and the images' Dockerfiles (deploy/docker/).
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=${KIND_CLUSTER:-dispotify-e2e}
engine=${ENGINE:-$(command -v docker || command -v podman)}
version=$(sed -n 's/^project(dispotify .*VERSION \([0-9.]*\)).*/\1/p' CMakeLists.txt)
ns=music
k() { kubectl --context "kind-$cluster" "$@"; }
step() { printf '\n=== %s\n' "$*"; }
cleanup() {
  [[ -n "${pf_pid:-}" ]] && kill "$pf_pid" 2>/dev/null || true
  [[ "${KEEP:-0}" == 1 ]] || kind delete cluster --name "$cluster"
}
trap cleanup EXIT

step "kind cluster $cluster (3 workers: the pods prefer distinct nodes)"
cat > /tmp/dispotify-kind.yaml <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes: [{role: control-plane}, {role: worker}, {role: worker}, {role: worker}]
YAML
kind create cluster --name "$cluster" --config /tmp/dispotify-kind.yaml --wait 120s

step "images dispotify/node:$version and dispotify/operator:$version (multi-stage builds)"
for image in node operator; do
  "$engine" build --format docker --build-arg BASE=debian:bookworm-slim \
    -f "deploy/docker/$image.Dockerfile" -t "dispotify/$image:$version" . 2>/dev/null ||
    "$engine" build --build-arg BASE=debian:bookworm-slim \
      -f "deploy/docker/$image.Dockerfile" -t "dispotify/$image:$version" .
  kind load docker-image --name "$cluster" "dispotify/$image:$version"
done

step "the operator (kubectl apply -k deploy/kubernetes/)"
k apply --server-side -k deploy/kubernetes/
k -n dispotify-system rollout status deployment/dispotify-operator --timeout=180s

step "a three-member cluster"
k create namespace "$ns" --dry-run=client -o yaml | k apply -f -
k -n "$ns" apply -f deploy/kubernetes/examples/minimal.yaml
started=$(date +%s)
wait_ready() {  # wait_ready N: N voters, Ready
  local want=$1 deadline=$(($(date +%s) + 600))
  until [[ "$(k -n "$ns" get dspc music -o jsonpath='{.status.readyReplicas}/{.status.phase}')" == "$want/Running" ]]; do
    (($(date +%s) < deadline)) || { k -n "$ns" describe dspc music; return 1; }
    sleep 2
  done
}
wait_ready 3
echo "kubectl apply -> 3 Ready: $(($(date +%s) - started)) s"
k -n "$ns" get dspc music

step "upload and stream through the client Service (SONG=path/to/a-song.mp3: a name of letters, digits, . _ - is its own file id)"
k -n "$ns" port-forward svc/music 18080:8080 >/dev/null 2>&1 &
pf_pid=$!
sleep 3
ctl=build/release/cli/dispotifyctl/dispotifyctl
# The pods run with auth on: dispotifyctl sends the admin token the operator keeps in music-admin.
DISPOTIFY_TOKEN=$(k -n "$ns" get secret music-admin -o jsonpath='{.data.token}' | base64 -d)
export DISPOTIFY_TOKEN
if [[ -n "${SONG:-}" ]]; then
  "$ctl" --endpoints http://127.0.0.1:18080 upload "$SONG"
  "$ctl" --endpoints http://127.0.0.1:18080 stream "$(basename "$SONG" | tr ' ' '-')" -o /tmp/dispotify-kind-got
  cmp "$SONG" /tmp/dispotify-kind-got && echo "streamed back identical"
else
  echo "no SONG given: upload skipped"
fi

step "scale 3 -> 5 -> 3"
started=$(date +%s)
k -n "$ns" scale dspc/music --replicas=5
wait_ready 5
echo "kubectl scale 3 -> 5 voters: $(($(date +%s) - started)) s"
k -n "$ns" scale dspc/music --replicas=3
wait_ready 3

step "rolling upgrade (a template change restarts one pod at a time, the leader last)"
k -n "$ns" patch dspc/music --type=merge -p '{"spec":{"podTemplate":{"annotations":{"kind.sh/rolled":"'"$(date +%s)"'"}}}}'
sleep 5
wait_ready 3

step "a pod deleted at once (no grace) -> Degraded -> Ready"
k -n "$ns" delete pod music-1 --grace-period=0 --force
wait_ready 3

step "done"
k -n "$ns" get dspc,pods,pvc
