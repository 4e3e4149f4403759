#!/usr/bin/env bash
# Smoke check of the test kubelet on a real control plane (root; about 20 s with the binaries
# cached): a 3-replica StatefulSet behind a headless Service (python3's http.server as the
# "node", its volume at /var/lib/dispotify like the real pods), then Ready with IPs, pod names
# resolving from inside a pod through the cluster DNS, a kill -9 restarting the container, a
# deleted pod coming back on its PVC, and a clean stop.
#   e2e/k8s/testkubelet/smoke.sh [WORKDIR]     (default: a fresh temp dir, removed on success)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
k8s="$(cd "$here/.." && pwd)"
keep=${1:-}
work=${1:-$(mktemp -d /tmp/testkubelet-smoke.XXXXXX)}
mkdir -p "$work"
kubelet_pid=
passed=0
cleanup() {
  [[ -n "$kubelet_pid" ]] && kill -TERM "$kubelet_pid" 2>/dev/null && wait "$kubelet_pid" 2>/dev/null || true
  "$k8s/control-plane.sh" stop "$work/cp" || true
  # Only after the stop: it needs the pid files under $work.
  if [[ $passed == 1 && -z "$keep" ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "smoke: FAIL: $*" >&2; echo "smoke: logs in $work" >&2; exit 1; }

"$k8s/build-testkubelet.sh"
kubelet=$("$k8s/build-testkubelet.sh" --print)
export KUBECONFIG
KUBECONFIG=$("$k8s/control-plane.sh" start "$work/cp" --ttl 300 | tail -1)
PATH="$("$k8s/install-k8s.sh" --print-bin):$PATH"
state="$work/state"
"$kubelet" --kubeconfig "$KUBECONFIG" --state-dir "$state" --namespace smoke --image python=/usr/bin/python3 \
  --ttl 300s 2>"$work/kubelet.log" &
kubelet_pid=$!

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: smoke}
---
apiVersion: v1
kind: Service
metadata: {name: web-peers, namespace: smoke}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: smoke}
spec:
  serviceName: web-peers
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      securityContext: {runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, runAsNonRoot: true}
      containers:
      - name: web
        image: python:3
        args: [-c, "import os,http.server,functools; open('/var/lib/dispotify/boots','a').write(os.environ['POD_NAME']+'\\n'); http.server.ThreadingHTTPServer((os.environ['POD_IP'],8080), functools.partial(http.server.SimpleHTTPRequestHandler, directory='/var/lib/dispotify')).serve_forever()"]
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
        readinessProbe: {httpGet: {path: /boots, port: 8080}, periodSeconds: 1}
        livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2, initialDelaySeconds: 2}
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
        volumeMounts: [{name: data, mountPath: /var/lib/dispotify}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
YAML

ready() {  # wait until the 3 pods are Ready
  for _ in $(seq 60); do
    [[ $(kubectl -n smoke get pods -l app=web -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True) == 3 ]] && return 0
    sleep 1
  done
  kubectl -n smoke get pods -o wide >&2
  fail "pods not Ready"
}
ready
echo "smoke: 3 pods Ready" >&2
kubectl -n smoke get pods -o wide

# Names resolve inside a pod (its netns and its resolv.conf) to the pods' IPs.
ip0=$(kubectl -n smoke get pod web-0 -o jsonpath='{.status.podIP}')
pid1=$(cat "$state/pods/smoke_web-1/pid")
got=$(nsenter -t "$pid1" -n -m -u getent hosts web-0.web-peers | awk '{print $1}')
[[ "$got" == "$ip0" ]] || fail "web-0.web-peers resolved to '$got' in web-1, want $ip0"
all=$(nsenter -t "$pid1" -n -m -u getent ahostsv4 web-peers.smoke.svc.cluster.local | awk '{print $1}' | sort -u | wc -l)
[[ "$all" == 3 ]] || fail "web-peers has $all addresses, want 3"
nsenter -t "$pid1" -n -m -u python3 -c "import urllib.request; urllib.request.urlopen('http://web-2.web-peers:8080/boots', timeout=2)" ||
  fail "web-1 cannot reach web-2 by name"
echo "smoke: DNS and pod-to-pod traffic ok" >&2

# kill -9: the container restarts.
kill -9 "$pid1"
for _ in $(seq 30); do
  [[ $(kubectl -n smoke get pod web-1 -o jsonpath='{.status.containerStatuses[0].restartCount}') -ge 1 ]] && break
  sleep 0.5
done
ready
echo "smoke: killed container restarted" >&2

# A deleted pod is stopped, deleted, recreated, and finds its volume.
uid0=$(kubectl -n smoke get pod web-0 -o jsonpath='{.metadata.uid}')
kubectl -n smoke delete pod web-0 --timeout=30s >/dev/null
ready
[[ $(kubectl -n smoke get pod web-0 -o jsonpath='{.metadata.uid}') != "$uid0" ]] || fail "web-0 was not recreated"
pvc=$(kubectl -n smoke get pvc data-web-0 -o jsonpath='{.metadata.uid}')
[[ $(grep -c web-0 "$state/volumes/$pvc/boots") == 2 ]] || fail "web-0's volume does not hold both boots"
echo "smoke: deletion and volume ok" >&2

kill -TERM "$kubelet_pid"
wait "$kubelet_pid" || fail "kubelet exit status $?"
kubelet_pid=
echo "smoke: PASS" >&2
passed=1
