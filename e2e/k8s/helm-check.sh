#!/usr/bin/env bash
# Checks the Helm chart helm/dispotify-operator with a real helm (e2e/k8s/install-helm.sh) and a
# real kube-apiserver:
#   - offline: `helm lint --strict` with the default values and with every value changed
#     (ci/namespaced-values.yaml); `helm template` with the defaults renders exactly
#     deploy/kubernetes/operator/ (RBAC rules compared as sets, so neither can drift), and with
#     the other values a namespaced RBAC, the flags, a DispotifyCluster and a ServiceMonitor
#     (helm-render-check.py); bad values are refused by values.schema.json or the templates; the
#     chart's crds/ (a symlink to the repository's crds/) is packaged and shown as that very file;
#   - on the server: `helm install` into a namespace that enforces the restricted Pod Security
#     Standard installs the CRD from crds/ and the operator's objects (no PodSecurity warning), and
#     a first DispotifyCluster the API server's schema accepts; `kubectl auth can-i` as the
#     operator's ServiceAccount proves every verb of rbac.yaml is granted and a few others are not,
#     for every namespace and for one watched namespace; `helm upgrade` from the previous chart
#     version (below) leaves the CRD alone, `kubectl apply --server-side --force-conflicts -f
#     crds/` (the documented step before an upgrade) is idempotent, and is what brings a changed CRD
#     (a copy with one description changed) to the server, which `helm upgrade` does not, and
#     which kubectl refuses without --force-conflicts (Helm owns the fields it created); `helm
#     uninstall` keeps the CRD and the DispotifyCluster (helm.sh/resource-policy: keep).
# The operator's pod never runs here (no kubelet): only the objects are checked.
#
# The previous chart version is taken from git: the chart as it was just before the commit that
# set Chart.yaml's current version (`git archive`, with crds/). While 0.1.0 is the only version,
# there is none before it, and the upgrade starts from the first commit of the current version,
# said so in the output. DISPOTIFY_HELM_PREVIOUS_REF=<commit> picks another one. Needs the
# repository's history (not a shallow clone).
#
# Usage: e2e/k8s/helm-check.sh KUBECONFIG
#        e2e/k8s/helm-check.sh --own-control-plane     (starts and stops e2e/k8s/control-plane.sh)
# Environment: HELM (default: the one e2e/k8s/install-helm.sh built), KUBECTL (default: the one
# e2e/k8s/install-k8s.sh built), DISPOTIFY_HELM_PREVIOUS_REF.
# Exits 0 when every check passed, 1 otherwise (each failure is printed), 2 on bad usage.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chart_rel=helm/dispotify-operator
chart=$repo/$chart_rel
[[ $# -eq 1 ]] || { echo "usage: $0 KUBECONFIG|--own-control-plane" >&2; exit 2; }

helm=${HELM:-$("$here/install-helm.sh" --print-bin)/helm}
[[ -x "$helm" ]] || { echo "helm-check: no helm at $helm (run e2e/k8s/install-helm.sh)" >&2; exit 2; }
kubectl=${KUBECTL:-$("$here/install-k8s.sh" --print-bin)/kubectl}
[[ -x "$kubectl" ]] || { echo "helm-check: no kubectl at $kubectl (run e2e/k8s/install-k8s.sh)" >&2; exit 2; }

cp_dir=""
work=$(mktemp -d /tmp/helm-check.XXXXXX)
# Helm keeps no state of ours: its config, cache and data live in the work directory.
export HELM_CONFIG_HOME=$work/helm/config HELM_CACHE_HOME=$work/helm/cache HELM_DATA_HOME=$work/helm/data
namespaces=()
cleanup() {
  local ns
  if [[ -z "$cp_dir" && -n "${KUBECONFIG:-}" ]]; then  # someone else's server: leave it as found
    for rel in "${releases[@]}"; do "$helm" uninstall "${rel#*/}" -n "${rel%%/*}" >/dev/null 2>&1 || true; done
    for ns in "${namespaces[@]}"; do "$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; done
    [[ -z "$stub_crd" ]] || "$kubectl" delete crd servicemonitors.monitoring.coreos.com --wait=false >/dev/null 2>&1 || true
    [[ -z "$own_crd" ]] || "$kubectl" delete crd "$own_crd" --wait=false >/dev/null 2>&1 || true
  fi
  [[ -z "$cp_dir" ]] || { "${CONTROL_PLANE:-$here/control-plane.sh}" stop "$cp_dir" || true; rm -rf "$cp_dir"; }
  rm -rf "$work"
}
releases=()
stub_crd=""
own_crd=""  # the CRD this test installed (the server had none)
trap cleanup EXIT

failures=0
passed=0
pass() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failures=$((failures + 1)); echo "FAIL  $*"; }
expect_eq() { if [[ "$2" == "$3" ]]; then pass "$1 = $2"; else fail "$1: want '$2', got '$3'"; fi; }
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
# run_check NAME COMMAND...: the command's own ok/FAIL lines, counted as one check.
run_check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name:"; fi
  sed 's/^/        /' <<<"$out"
}

echo "== helm $("$helm" version --short)"

echo "== helm lint --strict"
run_check "lint, default values" "$helm" lint --strict "$chart"
for values in "$chart"/ci/*-values.yaml; do
  run_check "lint, $(basename "$values")" "$helm" lint --strict "$chart" -f "$values"
done

echo "== helm template, default values: deploy/kubernetes/operator/"
manifests=$repo/deploy/kubernetes/operator
# The kubectl install's release name and namespace, read from its own Deployment.
default_name=$(awk '/^kind: Deployment/{d=1} d && $1=="name:"{print $2; exit}' "$manifests/deployment.yaml")
default_ns=$(awk '/^kind: Deployment/{d=1} d && $1=="namespace:"{print $2; exit}' "$manifests/deployment.yaml")
"$helm" template "$default_name" "$chart" -n "$default_ns" >"$work/default.yaml"
run_check "default values render deploy/kubernetes/operator/" \
  python3 "$here/helm-render-check.py" default "$work/default.yaml" "$manifests"

echo "== helm template, non-default values"
for values in "$chart"/ci/*-values.yaml; do
  "$helm" template other "$chart" -n other-system -f "$values" >"$work/other.yaml"
  run_check "$(basename "$values") renders what it asks for" \
    python3 "$here/helm-render-check.py" values "$work/other.yaml" "$manifests" "$values" other other-system
done
"$helm" template dispotify-operator "$chart" --set cluster.enabled=true >"$work/cluster.yaml"
expect_eq "cluster.enabled: a DispotifyCluster" 1 "$(grep -c '^kind: DispotifyCluster$' "$work/cluster.yaml")"
"$helm" template dispotify-operator "$chart" --set watchNamespace=music >"$work/ns.yaml"
expect_eq "watchNamespace: Roles (the watched namespace's and the Lease's)" 2 "$(grep -c '^kind: Role$' "$work/ns.yaml")"

echo "== bad values are refused"
t() { "$helm" template x "$chart" "$@"; }
expect_refused "an unknown value" "additional properties 'replicas' not allowed" t --set replicas=3
expect_refused "an unknown nested value" "additional properties 'tagg' not allowed" t --set image.tagg=1
expect_refused "replicaCount 0" "replicaCount" t --set replicaCount=0
expect_refused "a pull policy" "pullPolicy" t --set image.pullPolicy=Sometimes
expect_refused "a watchNamespace that is no namespace" "watchNamespace" t --set watchNamespace=Music_NS
expect_refused "a lease shorter than 1.5 s" "leaseDurationMs" t --set operator.leaseDurationMs=100
expect_refused "a cluster storage size" "size" t --set cluster.storage.size=ten
expect_refused "a cluster name too long" "name" t --set "cluster.name=$(printf 'a%.0s' {1..53})"
expect_refused "a config key not in snake_case" "'TickMs' does not match pattern" t --set cluster.config.TickMs=20
expect_refused "R above replicas" "must not exceed cluster.replicas" \
  t --set cluster.enabled=true --set cluster.replicas=1
expect_refused "a cluster outside the watched namespace" "the operator watches only watchNamespace" \
  t --set cluster.enabled=true --set watchNamespace=music --set cluster.namespace=other

echo "== crds/: the repository's file, not a copy"
crd_file=$repo/crds/dispotifyclusters.dispotify.io.yaml
if [[ -L "$chart/crds/$(basename "$crd_file")" &&
  "$(readlink -f "$chart/crds/$(basename "$crd_file")")" == "$(readlink -f "$crd_file")" ]]; then
  pass "helm/dispotify-operator/crds/$(basename "$crd_file") is a symlink to crds/"
else
  fail "helm/dispotify-operator/crds/$(basename "$crd_file") is not a symlink to $crd_file"
fi
"$helm" show crds "$chart" >"$work/show-crds.yaml"
# (It separates files with "---" and ends each with a newline of its own.)
if [[ "$(sed '/^---$/d' "$work/show-crds.yaml")" == "$(sed '/^---$/d' "$crd_file")" ]]; then
  pass "helm show crds prints crds/'s file"
else
  fail "helm show crds differs from $crd_file"
fi
mkdir -p "$work/pkg"
"$helm" package "$chart" -d "$work/pkg" >/dev/null
chart_version=$(awk '$1 == "version:" {print $2; exit}' "$chart/Chart.yaml")
tgz=$work/pkg/dispotify-operator-$chart_version.tgz
if tar -xzOf "$tgz" "dispotify-operator/crds/$(basename "$crd_file")" 2>/dev/null | cmp -s - "$crd_file"; then
  pass "helm package holds crds/'s file (the symlink followed)"
else
  fail "helm package: dispotify-operator/crds/$(basename "$crd_file") missing or different from $crd_file"
fi
ls_crds=$(tar -tzf "$tgz" | grep '/crds/' | sort | tr '\n' ' ')
want_crds=$(cd "$repo/crds" && ls -1 *.yaml | sed 's|^|dispotify-operator/crds/|' | sort | tr '\n' ' ')
expect_eq "the package's crds/ (every *.yaml of crds/)" "$want_crds" "$ls_crds"

echo "== the previous chart version (git)"
if [[ -n "${DISPOTIFY_HELM_PREVIOUS_REF:-}" ]]; then
  prev_ref=$(git -C "$repo" rev-parse --verify "${DISPOTIFY_HELM_PREVIOUS_REF}^{commit}")
  prev_why="DISPOTIFY_HELM_PREVIOUS_REF"
elif [[ "$(git -C "$repo" rev-parse --is-shallow-repository 2>/dev/null)" != false ]]; then
  # A shallow clone (or no git at all) has no earlier chart: the upgrade is then from the chart as
  # it is, which still checks that an upgrade keeps the release and leaves the CRD alone. Said, so
  # nobody takes it for the real thing.
  echo "helm-check: WARNING: $repo has no full git history (a shallow clone?): the upgrade is" \
    "from the current chart, not from the previous version" >&2
  prev_ref=""
  prev_why="no git history: the current chart"
else
  # The commits that changed Chart.yaml, newest first: the last one still at the current version
  # set it; the chart just before that commit is the previous version.
  first_current=""
  prev_ref=""
  while read -r c; do
    v=$(git -C "$repo" show "$c:$chart_rel/Chart.yaml" 2>/dev/null | awk '$1 == "version:" {print $2; exit}')
    if [[ "$v" == "$chart_version" ]]; then
      first_current=$c
    else
      break
    fi
  done < <(git -C "$repo" log --first-parent --format=%H -- "$chart_rel/Chart.yaml")
  [[ -n "$first_current" ]] || {
    echo "helm-check: no commit has $chart_rel/Chart.yaml at version $chart_version: commit the chart" >&2
    exit 1
  }
  if git -C "$repo" cat-file -e "$first_current^:$chart_rel/Chart.yaml" 2>/dev/null; then
    prev_ref=$(git -C "$repo" rev-parse "$first_current^")
    prev_why="the chart before $(git -C "$repo" log -1 --format='%h (%s)' "$first_current" | cut -c1-80)"
  else
    prev_ref=$first_current
    prev_why="no chart version before $chart_version: its first commit"
  fi
fi
mkdir -p "$work/prev"
if [[ -n "$prev_ref" ]]; then
  git -C "$repo" archive "$prev_ref" "$chart_rel" crds | tar -x -C "$work/prev"
  prev_at=$(git -C "$repo" rev-parse --short "$prev_ref")
else
  (cd "$repo" && tar -c "$chart_rel" crds) | tar -x -C "$work/prev"
  prev_at="the working tree"
fi
prev_chart=$work/prev/$chart_rel
prev_version=$(awk '$1 == "version:" {print $2; exit}' "$prev_chart/Chart.yaml")
echo "      previous: $prev_version at $prev_at, $prev_why"

echo "== on the API server"
if [[ "$1" == --own-control-plane ]]; then
  cp_dir=$(mktemp -d /tmp/helm-check-cp.XXXXXX)
  export KUBECONFIG
  KUBECONFIG=$("${CONTROL_PLANE:-$here/control-plane.sh}" start "$cp_dir" --ttl 900 | tail -1)
else
  export KUBECONFIG=$1
fi
[[ -f "$KUBECONFIG" ]] || { echo "helm-check: no kubeconfig at $KUBECONFIG" >&2; exit 2; }
k() { "$kubectl" "$@"; }
crd=$(awk '$1 == "name:" {print $2; exit}' "$crd_file")
if k get crd "$crd" >/dev/null 2>&1; then
  echo "helm-check: the server already has the CRD $crd: this test must install it (use --own-control-plane)" >&2
  exit 1
fi
own_crd=$crd
# Whether helm's output holds a warning (the API server's, e.g. "would violate PodSecurity"), but
# for the line that says it followed crds/'s symlink.
warned() { grep -v 'found symbolic link in path' <<<"$1" | grep -qiE 'warn|would violate'; }
suffix=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
new_ns() {  # a namespace enforcing (and warning about) the restricted Pod Security Standard
  k create namespace "$1" >/dev/null
  namespaces+=("$1")
  k label namespace "$1" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
}

# The ServiceMonitor CRD (Prometheus Operator), for the chart's and the operator's ServiceMonitors:
# a stand-in that accepts any spec when the real one is absent.
if ! k get crd servicemonitors.monitoring.coreos.com >/dev/null 2>&1; then
  k apply -f "$here/servicemonitor-crd-standin.yaml" >/dev/null
  [[ -n "$cp_dir" ]] || stub_crd=1
  k wait --for=condition=Established crd/servicemonitors.monitoring.coreos.com --timeout=60s >/dev/null
fi

# check_installed NAMESPACE RELEASE CHART [HELM_ARGS...]: every object `helm template` renders for
# these values exists on the server, by kind, name and namespace.
check_installed() {
  local ns=$1 rel=$2 ch=$3 missing="" kind name namespace got
  shift 3
  "$helm" template "$rel" "$ch" -n "$ns" "$@" 2>/dev/null >"$work/installed-$rel.yaml"
  while read -r kind name namespace; do
    if [[ "$namespace" == - ]]; then got=$(k get "$kind" "$name" -o name 2>/dev/null || true)
    else got=$(k get "$kind" "$name" -n "$namespace" -o name 2>/dev/null || true); fi
    [[ -n "$got" ]] || missing+=" $kind/$name"
  done < <(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d: print(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", "-"))' "$work/installed-$rel.yaml")
  expect_eq "$rel: rendered objects missing on the server" "" "$missing"
}
kinds_of() {
  python3 -c '
import sys, yaml
print(" ".join(sorted({d["kind"] for d in yaml.safe_load_all(open(sys.argv[1])) if d})))' "$work/installed-$1.yaml"
}

echo "-- helm install (every namespace watched, a first cluster)"
ns=$default_ns-$suffix
new_ns "$ns"
releases+=("$ns/$default_name")
if out=$("$helm" install "$default_name" "$chart" -n "$ns" --set cluster.enabled=true 2>&1); then
  pass "helm install $default_name -n $ns --set cluster.enabled=true"
  if warned "$out"; then fail "helm install warned: $out"; else pass "no warning (PodSecurity or other)"; fi
  grep -q "kubectl -n $ns get dspc" <<<"$out" && pass "NOTES.txt printed" || fail "no NOTES.txt in: $out"
else
  fail "helm install: $out"
fi
k wait --for=condition=Established "crd/$crd" --timeout=60s >/dev/null && pass "CRD $crd Established" || fail "CRD not Established"
crd_json=$(k get crd "$crd" -o json)
expect_eq "the CRD comes from crds/ (not a release's template)" "" \
  "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"].get("annotations",{}).get("meta.helm.sh/release-name",""))' <<<"$crd_json")"
if out=$(k diff --server-side --force-conflicts -f "$crd_file" 2>&1); then
  pass "the server's CRD is crds/'s (kubectl diff finds nothing)"
else
  fail "the server's CRD differs from $crd_file: $out"
fi
check_installed "$ns" "$default_name" "$chart" --set cluster.enabled=true
expect_eq "kinds installed" "ClusterRole ClusterRoleBinding Deployment DispotifyCluster Role RoleBinding Service ServiceAccount" \
  "$(kinds_of "$default_name")"
expect_eq "the DispotifyCluster's defaults from the CRD (spec.storage.retention.whenDeleted)" Retain \
  "$(k get dspc music -n "$ns" -o jsonpath='{.spec.storage.retention.whenDeleted}')"

echo "-- RBAC, as the operator's ServiceAccount"
# can SA_NAMESPACE:SA_NAME NAMESPACE|--all-namespaces yes|no VERB RESOURCE[/NAME]
can() {
  local sa=$1 where=$2 want=$3 got
  shift 3
  if [[ "$where" == --all-namespaces ]]; then set -- "$@" --all-namespaces; else set -- "$@" -n "$where"; fi
  got=$(k auth can-i --as="system:serviceaccount:$sa" "$@" 2>/dev/null || true)
  if [[ "$got" == "$want" ]]; then pass "$sa $* -> $want"; else fail "$sa $*: want $want, got $got"; fi
}
# Every verb of every rule of rbac.yaml's ClusterRole: granted everywhere.
rbac_rules() {  # KIND: its rules in rbac.yaml as lines "VERB RESOURCE[.GROUP][/NAME]"
  python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == sys.argv[2]:
        for r in d["rules"]:
            for g in r["apiGroups"]:
                for res in r["resources"]:
                    for v in r["verbs"]:
                        for n in r.get("resourceNames", [""]):
                            print(v, res + ("." + g if g else "") + ("/" + n if n else ""))' \
    "$manifests/rbac.yaml" "$1"
}
sa=$ns:$default_name
while read -r verb res; do can "$sa" --all-namespaces yes "$verb" "$res"; done < <(rbac_rules ClusterRole)
while read -r verb res; do can "$sa" "$ns" yes "$verb" "$res"; done < <(rbac_rules Role)
can "$sa" --all-namespaces no list secrets
can "$sa" --all-namespaces no delete statefulsets.apps
can "$sa" --all-namespaces no update dispotifyclusters.dispotify.io
can "$sa" default no create leases.coordination.k8s.io
can "$sa" --all-namespaces no get "customresourcedefinitions.apiextensions.k8s.io/$crd"

echo "-- helm install, one watched namespace"
ns2=ops-$suffix
watched=music-$suffix
new_ns "$ns2"
new_ns "$watched"
releases+=("$ns2/scoped")
scoped=(--set watchNamespace="$watched" --set cluster.enabled=true --set cluster.namespace="$watched"
  --set cluster.name=library --set serviceMonitor.enabled=true)
if out=$("$helm" install scoped "$chart" -n "$ns2" "${scoped[@]}" 2>&1); then
  pass "helm install scoped -n $ns2 ${scoped[*]}"
  if warned "$out"; then fail "helm install warned: $out"; fi
else
  fail "helm install scoped: $out"
fi
check_installed "$ns2" scoped "$chart" "${scoped[@]}"
expect_eq "kinds installed" \
  "ClusterRole ClusterRoleBinding Deployment DispotifyCluster Role RoleBinding Service ServiceAccount ServiceMonitor" \
  "$(kinds_of scoped)"
sa2=$ns2:scoped-dispotify-operator
while read -r verb res; do
  if [[ "$res" == customresourcedefinitions.* ]]; then
    can "$sa2" --all-namespaces yes "$verb" "$res"
  else
    can "$sa2" "$watched" yes "$verb" "$res"
  fi
done < <(rbac_rules ClusterRole)
can "$sa2" "$ns" no list dispotifyclusters.dispotify.io
can "$sa2" --all-namespaces no list pods
can "$sa2" "$ns2" yes update leases.coordination.k8s.io
can "$sa2" "$watched" no update leases.coordination.k8s.io
expect_eq "the scoped Deployment's --namespace" "--namespace=$watched" \
  "$(k get deploy -n "$ns2" scoped-dispotify-operator -o jsonpath='{.spec.template.spec.containers[0].args}' |
    python3 -c 'import json,sys; print(" ".join(a for a in json.load(sys.stdin) if a.startswith("--namespace=")))')"
expect_eq "the scoped release's DispotifyCluster" library "$(k get dspc -n "$watched" library -o jsonpath='{.metadata.name}')"

echo "-- helm upgrade from the previous chart version ($prev_version)"
ns3=upgrade-$suffix
new_ns "$ns3"
releases+=("$ns3/upgrade")
crd_rv() { k get crd "$crd" -o jsonpath='{.metadata.resourceVersion}'; }
if out=$("$helm" install upgrade "$prev_chart" -n "$ns3" 2>&1); then
  pass "helm install upgrade ($prev_version, $(git -C "$repo" rev-parse --short "$prev_ref"))"
else
  fail "helm install of the previous chart: $out"
fi
rv0=$(crd_rv)
if out=$("$helm" upgrade upgrade "$chart" -n "$ns3" --set cluster.enabled=true 2>&1); then
  pass "helm upgrade to $chart_version"
else
  fail "helm upgrade: $out"
fi
expect_eq "revision after the upgrade" 2 "$("$helm" history upgrade -n "$ns3" -o json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["revision"])')"
expect_eq "CRD resourceVersion after helm upgrade alone (Helm never touches crds/)" "$rv0" "$(crd_rv)"
expect_eq "the upgraded release's DispotifyCluster" music "$(k get dspc -n "$ns3" music -o jsonpath='{.metadata.name}')"
# The documented step before `helm upgrade`: it brings a changed CRD to the server; applied twice
# it changes nothing the second time.
if out=$(k apply --server-side --force-conflicts -f "$chart/crds/" 2>&1); then
  pass "kubectl apply --server-side --force-conflicts -f $chart_rel/crds/: $out"
else
  fail "kubectl apply -f crds/: $out"
fi
rv1=$(crd_rv)
k apply --server-side --force-conflicts -f "$chart/crds/" >/dev/null
expect_eq "CRD resourceVersion after applying crds/ again (idempotent)" "$rv1" "$(crd_rv)"
"$helm" upgrade upgrade "$chart" -n "$ns3" --reuse-values >/dev/null
expect_eq "CRD resourceVersion after another helm upgrade" "$rv1" "$(crd_rv)"

echo "-- a changed CRD: helm upgrade ignores it, the documented kubectl apply brings it"
# A copy of the chart whose CRD differs in one printer column's description (not committed
# anywhere: it stands for the next chart version's CRD).
cp -rL "$chart" "$work/changed"
changed_crd=$work/changed/crds/$(basename "$crd_file")
column_jsonpath='{.spec.versions[0].additionalPrinterColumns[0].description}'
old_desc=$(k get crd "$crd" -o jsonpath="$column_jsonpath")
sed -i "0,/description: $old_desc\$/s//description: $old_desc (changed)/" "$changed_crd"
if cmp -s "$changed_crd" "$crd_file"; then fail "could not change the copy's CRD (description '$old_desc')"; fi
"$helm" upgrade upgrade "$work/changed" -n "$ns3" --reuse-values >/dev/null 2>&1 || fail "helm upgrade to the changed chart"
expect_eq "the CRD after helm upgrade with a changed crds/" "$old_desc" "$(k get crd "$crd" -o jsonpath="$column_jsonpath")"
# Helm created the CRD (field manager "helm"): without --force-conflicts the apply is refused.
expect_refused "kubectl apply --server-side without --force-conflicts" 'conflict with "helm"' \
  k apply --server-side -f "$work/changed/crds/"
k apply --server-side --force-conflicts -f "$work/changed/crds/" >/dev/null
expect_eq "the CRD after kubectl apply --server-side --force-conflicts" "$old_desc (changed)" \
  "$(k get crd "$crd" -o jsonpath="$column_jsonpath")"
k apply --server-side --force-conflicts -f "$chart/crds/" >/dev/null

echo "-- helm uninstall keeps the CRD and the cluster"
if out=$("$helm" uninstall "$default_name" -n "$ns" 2>&1); then pass "helm uninstall $default_name"; else fail "helm uninstall: $out"; fi
gone=""
for _ in $(seq 50); do
  gone=$(k get deploy,serviceaccount,service,role,rolebinding -n "$ns" -l app.kubernetes.io/instance="$default_name" -o name 2>/dev/null)
  [[ -z "$gone" ]] && break
  sleep 0.2
done
expect_eq "the release's namespaced objects left" "" "$gone"
expect_eq "its ClusterRole left" "" "$(k get clusterrole "$default_name" -o name 2>/dev/null || true)"
expect_eq "the CRD kept" "customresourcedefinition.apiextensions.k8s.io/$crd" "$(k get crd "$crd" -o name)"
expect_eq "the DispotifyCluster kept (keepOnUninstall)" music "$(k get dspc -n "$ns" music -o jsonpath='{.metadata.name}')"

echo "helm-check: $passed passed, $failures failed"
[[ $failures -eq 0 ]]
