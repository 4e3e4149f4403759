#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the operator's tests: Debian's etcd,
# kube-apiserver and kube-controller-manager (built by e2e/k8s/install-k8s.sh), as
# controller-runtime's envtest runs them, plus the controller-manager so that StatefulSets create
# Pods and PVCs and owner references are garbage-collected. No kubelet, no scheduler: the test
# plays the kubelet (e2e/k8s/testkubelet).
#
#   control-plane.sh start DIR [--ttl SECONDS]   start everything, state and logs in DIR; prints
#                                                 the kubeconfig path (DIR/kubeconfig) when ready
#   control-plane.sh stop DIR                    stop (controller-manager, apiserver, then etcd)
#
# Everything listens on 127.0.0.1 free ports. --ttl (default 3600) arms a watchdog that stops the
# control plane by itself, so a test that dies without calling stop leaves nothing running.
# The admin identity is a static token in system:masters (DIR/token); DIR/env has the ports.
# The default admission plugins run, ServiceAccount among them: a pod gets its projected token,
# the cluster CA (kube-root-ca.crt, published by the controller-manager) and its namespace, as on
# a real cluster; the test kubelet routes the `kubernetes` Service's ClusterIP (10.0.0.1:443, a
# name in the API server's certificate) from inside each pod to this API server.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR [--ttl SECONDS]" >&2; exit 2; }

stop_pid() {  # name: SIGTERM, then SIGKILL after 15 s
  local f="$dir/$1.pid" pid
  [[ -f "$f" ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop_all() {
  # An apiserver whose etcd died first hangs on shutdown: stop from the top down.
  stop_pid kube-controller-manager
  stop_pid kube-apiserver
  stop_pid etcd
  if [[ -f "$dir/watchdog.pid" ]]; then
    local w
    w=$(cat "$dir/watchdog.pid")
    rm -f "$dir/watchdog.pid"
    kill "$w" 2>/dev/null || true
  fi
}

if [[ "$cmd" == stop ]]; then
  stop_all
  exit 0
fi
[[ "$cmd" == start ]] || { echo "unknown command $cmd" >&2; exit 2; }

ttl=3600
[[ "${3:-}" == --ttl ]] && ttl=${4:?}
bin=$("$here/install-k8s.sh" --print-bin)
"$here/install-k8s.sh"
etcd=$(command -v etcd) || { echo "control-plane: no etcd (Debian package etcd-server)" >&2; exit 1; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
etcd_port=$(free_port)
etcd_peer=$(free_port)
api_port=$(free_port)
kcm_port=$(free_port)
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" >"$dir/token"
cat >"$dir/env" <<ENV
ETCD_PORT=$etcd_port
API_PORT=$api_port
API_SERVER=https://127.0.0.1:$api_port
ENV

trap 'stop_all' ERR

"$etcd" --name cp --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "cp=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync \
  >"$dir/etcd.log" 2>&1 &
echo $! >"$dir/etcd.pid"

openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
echo "$token,admin,admin-uid,system:masters" >"$dir/tokens.csv"
mkdir -p "$dir/certs"
"$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --cert-dir "$dir/certs" \
  --service-account-key-file "$dir/sa.key" --service-account-signing-key-file "$dir/sa.key" \
  --service-account-issuer "https://127.0.0.1:$api_port" \
  --token-auth-file "$dir/tokens.csv" \
  --authorization-mode RBAC \
  --service-cluster-ip-range 10.0.0.0/24 \
  --endpoint-reconciler-type none \
  >"$dir/kube-apiserver.log" 2>&1 &
echo $! >"$dir/kube-apiserver.pid"

cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/certs/apiserver.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: test
  context:
    cluster: test
    user: admin
    namespace: default
current-context: test
KC

ready=""
for _ in $(seq 600); do
  if [[ -f "$dir/certs/apiserver.crt" ]] &&
    curl -fsS --cacert "$dir/certs/apiserver.crt" -H "Authorization: Bearer $token" \
      "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$ready" ]]; then
  echo "control-plane: kube-apiserver did not become ready; last lines of its log:" >&2
  tail -20 "$dir/kube-apiserver.log" >&2
  stop_all
  exit 1
fi

"$bin/kube-controller-manager" \
  --kubeconfig "$dir/kubeconfig" --leader-elect=false --use-service-account-credentials=false \
  --service-account-private-key-file "$dir/sa.key" --root-ca-file "$dir/certs/apiserver.crt" \
  --controllers '*' --bind-address 127.0.0.1 --secure-port "$kcm_port" \
  >"$dir/kube-controller-manager.log" 2>&1 &
echo $! >"$dir/kube-controller-manager.pid"

# The watchdog: stop everything after the TTL even if nobody calls stop.
(
  trap - ERR
  exec >/dev/null 2>&1 </dev/null
  sleep "$ttl" &
  sleeper=$!
  trap 'kill $sleeper 2>/dev/null; exit 0' TERM
  wait $sleeper
  "$here/control-plane.sh" stop "$dir"
) &
echo $! >"$dir/watchdog.pid"
disown -a
echo "$dir/kubeconfig"
