#!/usr/bin/env bash
# Checks the DispotifyCluster CRD and the objects operator/specs builds against a real
# kube-apiserver (and kube-controller-manager):
#   - the CRD is accepted and Established; an example is accepted with every default filled in;
#   - bad specs are refused with the CRD's own CEL messages, at create and on update (R above
#     replicas, replicas 0, a shrinking volume, a storage class or metadata store change, ...);
#   - `kubectl scale` and the status subresource work, printer columns are there, the journal in
#     status.operation keeps fields the schema does not name;
#   - every object dispotify-operator-specs-dump produces passes a server-side dry-run apply, for
#     the minimal example and for one that sets every field; the minimal one is then applied for
#     real in a namespace that enforces the restricted Pod Security Standard, and the StatefulSet
#     controller must create its pods (with their pod-index label) and PVCs; deleting the cluster
#     collects the owned objects and keeps the PVCs (retention Retain).
#
# Usage: e2e/k8s/crd-check.sh KUBECONFIG [SPECS_DUMP]
#        e2e/k8s/crd-check.sh --own-control-plane [SPECS_DUMP]   (starts and stops
#                                                                 e2e/k8s/control-plane.sh)
# SPECS_DUMP defaults to build/release/tests/operator/specs/dispotify-operator-specs-dump.
# Environment: KUBECTL (default: the one e2e/k8s/install-k8s.sh built).
# Exits 0 when every check passed, 1 otherwise (each failure is printed).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
[[ $# -ge 1 ]] || { echo "usage: $0 KUBECONFIG|--own-control-plane [SPECS_DUMP]" >&2; exit 2; }

cp_dir=""
cleanup_cp() { [[ -z "$cp_dir" ]] || { "${CONTROL_PLANE:-$here/control-plane.sh}" stop "$cp_dir" || true; rm -rf "$cp_dir"; }; }
if [[ "$1" == --own-control-plane ]]; then
  cp_dir=$(mktemp -d /tmp/crd-check-cp.XXXXXX)
  trap cleanup_cp EXIT
  export KUBECONFIG
  KUBECONFIG=$("${CONTROL_PLANE:-$here/control-plane.sh}" start "$cp_dir" --ttl 900 | tail -1)
else
  export KUBECONFIG=$1
fi
[[ -f "$KUBECONFIG" ]] || { echo "crd-check: no kubeconfig at $KUBECONFIG" >&2; exit 2; }
dump=${2:-$repo/build/release/tests/operator/specs/dispotify-operator-specs-dump}
[[ -x "$dump" ]] || { echo "crd-check: no $dump (build the target dispotify-operator-specs-dump)" >&2; exit 2; }
kubectl=${KUBECTL:-$("$here/install-k8s.sh" --print-bin)/kubectl}
[[ -x "$kubectl" ]] || { echo "crd-check: no kubectl at $kubectl (run e2e/k8s/install-k8s.sh)" >&2; exit 2; }
k() { "$kubectl" "$@"; }

work=$(mktemp -d /tmp/crd-check.XXXXXX)
ns=crd-check-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
stub_crd=""
cleanup() {
  k delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  [[ -z "$stub_crd" ]] || k delete crd servicemonitors.monitoring.coreos.com --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
  cleanup_cp
}
trap cleanup EXIT

failures=0
passed=0
pass() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failures=$((failures + 1)); echo "FAIL  $*"; }

# expect_refused NAME MESSAGE_FRAGMENT COMMAND...: the command fails and prints the fragment.
expect_refused() {
  local name=$1 want=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    fail "$name: accepted, expected a refusal with \"$want\""
  elif grep -qF -- "$want" <<<"$out"; then
    pass "$name: refused ($want)"
  else
    fail "$name: refused without \"$want\": $out"
  fi
}

# expect_eq NAME WANT GOT
expect_eq() {
  if [[ "$2" == "$3" ]]; then pass "$1 = $2"; else fail "$1: want '$2', got '$3'"; fi
}

cluster() {  # cluster NAME SPEC_YAML_FLOW -> a manifest on stdout
  printf 'apiVersion: dispotify.io/v1alpha1\nkind: DispotifyCluster\nmetadata:\n  name: %s\n  namespace: %s\nspec: %s\n' \
    "$1" "$ns" "$2"
}

echo "== the CRD"
k apply --server-side --force-conflicts -f "$repo/crds/dispotifyclusters.dispotify.io.yaml" >/dev/null
k wait --for=condition=Established crd/dispotifyclusters.dispotify.io --timeout=60s >/dev/null
pass "CRD applied and Established"
k create namespace "$ns" >/dev/null
k label namespace "$ns" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null

echo "== the minimal example, defaults filled in"
sed "s/^  name: music$/  name: music\n  namespace: $ns/" "$repo/deploy/kubernetes/examples/minimal.yaml" >"$work/minimal.yaml"
k apply -f "$work/minimal.yaml" >/dev/null
pass "deploy/kubernetes/examples/minimal.yaml accepted"
get() { k get dspc -n "$ns" music -o jsonpath="{$1}"; }
expect_eq spec.replicas 3 "$(get .spec.replicas)"
expect_eq spec.replicationFactor 3 "$(get .spec.replicationFactor)"
expect_eq spec.storage.size 10Gi "$(get .spec.storage.size)"
expect_eq spec.storage.retention.whenScaled Retain "$(get .spec.storage.retention.whenScaled)"
expect_eq spec.storage.retention.whenDeleted Retain "$(get .spec.storage.retention.whenDeleted)"
expect_eq spec.metadataStore.type embedded "$(get .spec.metadataStore.type)"
expect_eq spec.service.type ClusterIP "$(get .spec.service.type)"
expect_eq spec.service.port 8080 "$(get .spec.service.port)"
expect_eq spec.paused false "$(get .spec.paused)"
expect_eq spec.monitoring.interval 30s "$(get .spec.monitoring.interval)"
header=$(k get dspc -n "$ns" | head -1 | tr -s ' ')
expect_eq "printer columns" "NAME REPLICAS READY LEADER R PHASE AGE" "$header"

echo "== bad specs are refused with the CRD's messages"
refuse_new() {  # refuse_new NAME SPEC MESSAGE
  cluster bad "$2" >"$work/bad.yaml"
  expect_refused "$1" "$3" k apply -f "$work/bad.yaml"
}
refuse_new "R above replicas" '{replicas: 3, replicationFactor: 4}' \
  "spec.replicationFactor must not exceed spec.replicas"
refuse_new "replicas 0" '{replicas: 0, replicationFactor: 1}' "spec.replicas must be at least 1"
refuse_new "replicas 1 with the default R 3" '{replicas: 1}' "spec.replicationFactor must not exceed spec.replicas"
refuse_new "R 0" '{replicationFactor: 0}' "spec.replicationFactor"
refuse_new "postgres without a Secret" '{metadataStore: {type: postgres}}' \
  "spec.metadataStore.postgres.secretName is required"
refuse_new "an operator-owned config key" '{config: {node_id: "3"}}' "spec.config may not set keys the operator owns"
refuse_new "replication_factor in config" '{config: {replication_factor: 2}}' \
  "spec.config may not set keys the operator owns"
refuse_new "auth in config (the operator runs its pods with auth on)" '{config: {auth: "false"}}' \
  "spec.config may not set keys the operator owns"
refuse_new "insecure_grpc in config (the operator issues the pods' certificates)" \
  '{config: {insecure_grpc: "true"}}' "spec.config may not set keys the operator owns"
refuse_new "a config key not in snake_case" '{config: {TickMs: 5}}' "spec.config keys are node settings in snake_case"
refuse_new "a storage size that is no quantity" '{storage: {size: lots}}' "spec.storage.size must be a positive quantity"
refuse_new "a selector label in podTemplate" '{podTemplate: {labels: {app.kubernetes.io/instance: x}}}' \
  "spec.podTemplate.labels may not set app.kubernetes.io/name, instance or managed-by"
refuse_new "a retention policy not in the enum" '{storage: {retention: {whenScaled: Keep}}}' "Unsupported value"
cluster "a$(printf 'b%.0s' $(seq 52))" '{}' >"$work/long.yaml"
expect_refused "a name longer than 52" "metadata.name must be at most 52 characters" k apply -f "$work/long.yaml"

echo "== updates"
patch() { k patch dspc -n "$ns" music --type merge -p "$1"; }
expect_refused "storage shrinks" "spec.storage.size may grow but never shrink" patch '{"spec":{"storage":{"size":"5Gi"}}}'
if patch '{"spec":{"storage":{"size":"20Gi"}}}' >/dev/null; then pass "storage grows"; else fail "storage grows: refused"; fi
expect_refused "same size in smaller units shrinks" "never shrink" patch '{"spec":{"storage":{"size":"20479Mi"}}}'
expect_refused "storage class changes" "spec.storage.storageClassName cannot change" \
  patch '{"spec":{"storage":{"storageClassName":"fast"}}}'
expect_refused "metadata store changes" "spec.metadataStore.type cannot change" \
  patch '{"spec":{"metadataStore":{"type":"postgres","postgres":{"secretName":"pg"}}}}'
expect_refused "R raised above replicas" "spec.replicationFactor must not exceed spec.replicas" \
  patch '{"spec":{"replicationFactor":4}}'
if k scale dspc -n "$ns" music --replicas=5 >/dev/null; then pass "kubectl scale --replicas=5"; else fail "kubectl scale 5"; fi
expect_eq "spec.replicas after scale" 5 "$(get .spec.replicas)"
expect_refused "kubectl scale --replicas=0" "spec.replicas must be at least 1" k scale dspc -n "$ns" music --replicas=0
expect_refused "kubectl scale below R" "spec.replicationFactor must not exceed spec.replicas" \
  k scale dspc -n "$ns" music --replicas=2
k scale dspc -n "$ns" music --replicas=3 >/dev/null

echo "== the status subresource"
status='{"status":{"observedGeneration":2,"phase":"Scaling","selector":"app.kubernetes.io/instance=music,app.kubernetes.io/name=dispotify",
 "replicas":3,"readyReplicas":3,"leader":"music-0","replicationFactor":3,"underReplicatedFiles":0,"bootstrapped":true,
 "conditions":[{"type":"Ready","status":"True","reason":"AllMembersReady","message":"3 of 3","lastTransitionTime":"2026-01-02T03:04:05Z","observedGeneration":2}],
 "members":[{"pod":"music-0","nodeId":1,"nodeUuid":"u0","role":"leader","healthy":true,"caughtUp":true,"version":"0.1.0"}],
 "operation":{"type":"ScaleUp","member":"music-3","nodeId":4,"step":"AddLearner","started":"2026-01-02T03:04:00Z","targetReplicas":5,"attempts":2}}}'
if k patch dspc -n "$ns" music --subresource=status --type merge -p "$status" >/dev/null; then
  pass "status written through the status subresource"
else
  fail "status subresource refused a full status"
fi
expect_eq status.leader music-0 "$(get .status.leader)"
expect_eq status.members[0].role leader "$(get '.status.members[0].role')"
expect_eq "status.operation keeps unknown fields" 2 "$(get .status.operation.attempts)"
expect_eq "scale subresource selector" "app.kubernetes.io/instance=music,app.kubernetes.io/name=dispotify" \
  "$(k get --raw "/apis/dispotify.io/v1alpha1/namespaces/$ns/dispotifyclusters/music/scale" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["selector"])')"
expect_refused "a member role not in the enum" "Unsupported value" \
  k patch dspc -n "$ns" music --subresource=status --type merge -p '{"status":{"members":[{"pod":"music-0","role":"king"}]}}'
if k patch dspc -n "$ns" music --type merge -p '{"status":{"phase":"Hacked"}}' >/dev/null 2>&1 &&
  [[ "$(get .status.phase)" == Scaling ]]; then
  pass "status is not written through the main resource"
else
  fail "status changed through the main resource"
fi
k patch dspc -n "$ns" music --type merge -p '{"spec":{"storage":{"size":"10Gi"}}}' >/dev/null 2>&1 || true

echo "== the owned objects: server-side dry run"
# A cluster that sets every field; its ServiceMonitor needs the monitoring.coreos.com CRD, so a
# stand-in that accepts any spec is installed when the real one is absent.
if ! k get crd servicemonitors.monitoring.coreos.com >/dev/null 2>&1; then
  stub_crd=1
  k apply -f "$here/servicemonitor-crd-standin.yaml" >/dev/null
  k wait --for=condition=Established crd/servicemonitors.monitoring.coreos.com --timeout=60s >/dev/null
fi
cluster full '{replicas: 5, replicationFactor: 2, image: "registry.example/dispotify/node:1.2.3",
  imagePullPolicy: IfNotPresent, resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}},
  storage: {size: 50Gi, storageClassName: fast, retention: {whenScaled: Delete, whenDeleted: Retain}},
  metadataStore: {type: postgres, postgres: {secretName: music-pg}},
  service: {type: LoadBalancer, port: 80, annotations: {lb.example/internal: "true"}}, paused: false,
  podTemplate: {labels: {team: audio}, annotations: {example/scrape: "yes"},
    affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms:
      [{matchExpressions: [{key: disk, operator: In, values: [ssd]}]}]}}},
    tolerations: [{key: dedicated, operator: Equal, value: music, effect: NoSchedule}],
    topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway,
      labelSelector: {matchLabels: {app.kubernetes.io/instance: full}}}],
    nodeSelector: {pool: music}, priorityClassName: system-cluster-critical},
  monitoring: {serviceMonitor: true, interval: 15s}, config: {tick_ms: 20, log_level: debug, auto_promote: "false"}}' \
  >"$work/full.yaml"
k apply -f "$work/full.yaml" >/dev/null
pass "a cluster setting every field accepted"
for name in music full; do
  mkdir -p "$work/$name"
  k get dspc -n "$ns" "$name" -o json >"$work/$name.json"
  if ! "$dump" "$work/$name.json" "$work/$name" >"$work/$name.list"; then
    fail "$name: dispotify-operator-specs-dump failed"
    continue
  fi
  for f in $(cat "$work/$name.list"); do
    if out=$(k apply --server-side --field-manager=dispotify-operator --dry-run=server -f "$f" 2>&1); then
      if grep -q "Warning" <<<"$out"; then fail "$name: $(basename "$f"): $out"; else pass "$name: $(basename "$f") dry-run"; fi
    else
      fail "$name: $(basename "$f"): $out"
    fi
  done
done
expect_eq "objects of the full cluster (and the CA and TLS Secrets)" 10 "$(wc -l <"$work/full.list")"

echo "== the minimal cluster's objects applied for real (restricted Pod Security Standard enforced)"
if out=$(k apply --server-side --field-manager=dispotify-operator -f "$work/music" 2>&1); then
  if grep -q "violate PodSecurity" <<<"$out"; then fail "PodSecurity warnings: $out"; else pass "applied"; fi
else
  fail "apply: $out"
fi
if out=$(k apply --server-side --field-manager=dispotify-operator -f "$work/music" 2>&1); then
  pass "applied again (idempotent, no conflicts)"
else
  fail "second apply: $out"
fi
pods=""
for _ in $(seq 100); do
  pods=$(k get pods -n "$ns" -l app.kubernetes.io/instance=music \
    -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.labels.apps\.kubernetes\.io/pod-index} {end}')
  [[ $(wc -w <<<"$pods") -ge 3 ]] && break
  sleep 0.2
done
expect_eq "pods created by the StatefulSet controller (name=pod-index)" "music-0=0 music-1=1 music-2=2" \
  "$(tr ' ' '\n' <<<"$pods" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')"
if k get events -n "$ns" --field-selector reason=FailedCreate -o name | grep -q .; then
  fail "the StatefulSet controller failed to create pods: $(k get events -n "$ns" --field-selector reason=FailedCreate)"
fi
pvcs=$(k get pvc -n "$ns" -l app.kubernetes.io/instance=music -o jsonpath='{.items[*].metadata.name}')
expect_eq "PVCs" "data-music-0 data-music-1 data-music-2" "$pvcs"

echo "== deleting the cluster collects its objects and keeps its PVCs"
k delete dspc -n "$ns" music --wait=true >/dev/null
left=""
for _ in $(seq 150); do
  left=$(k get statefulset,service,configmap,secret,pdb,networkpolicy,pods -n "$ns" \
    -l app.kubernetes.io/instance=music -o name 2>/dev/null)
  [[ -z "$left" ]] && break
  sleep 0.2
done
expect_eq "objects left after delete" "" "$left"
expect_eq "PVCs kept (whenDeleted: Retain)" "data-music-0 data-music-1 data-music-2" \
  "$(k get pvc -n "$ns" -l app.kubernetes.io/instance=music -o jsonpath='{.items[*].metadata.name}')"

echo "== deploy/kubernetes: the operator's install and every example, checked by the server's schemas"
# A dry run creates nothing: the namespace the rest goes into must exist for real.
k apply -f "$repo/deploy/kubernetes/operator/namespace.yaml" >/dev/null
if out=$(k apply --server-side --dry-run=server -k "$repo/deploy/kubernetes/" 2>&1); then
  pass "kubectl apply -k deploy/kubernetes/ (server-side dry run)"
else
  fail "kubectl apply -k deploy/kubernetes/: $out"
fi
for example in "$repo"/deploy/kubernetes/examples/*.yaml; do
  if out=$(k apply --server-side --dry-run=server -n "$ns" -f "$example" 2>&1); then
    pass "example $(basename "$example") (server-side dry run)"
  else
    fail "example $(basename "$example"): $out"
  fi
done

echo "crd-check: $passed passed, $failures failed"
[[ $failures -eq 0 ]]
