#!/usr/bin/env bash
# Runs a 3-node Dispotify cluster on loopback for local development.
#
#   scripts/run-local-cluster.sh [up]   build (release preset), start nodes 1-3 and the front
#                                       address, wait for a leader, print the addresses, then stay
#                                       in the foreground: Ctrl-C stops everything cleanly
#   scripts/run-local-cluster.sh down   stop the nodes and the front started by another `up`
#                                       (SIGTERM, then SIGKILL after 10 s)
#   scripts/run-local-cluster.sh status the cluster as a table (dispotifyctl cluster status)
#
# The web UI is served by every node at its REST address (web/, built by the `web` target when npm
# is installed): the script prints http://127.0.0.1:8081/ to open.
# Node N: REST API on http://127.0.0.1:808N, gRPC (Raft, Cluster, Replication, Files) on
# 127.0.0.1:700N, metrics on 127.0.0.1:910N/metrics, data in .cluster/node-N (kept between runs:
# embedded SQLite catalog + blob store), log in .cluster/node-N.log. Every node serves the web UI
# (web/dist). The front address http://127.0.0.1:8080/ is Debian's nginx balancing over the three
# nodes (scripts/nginx-front.sh: config, access log and error log in .cluster/front/), where the
# browser should go: a request to a dead node, or a stream cut by one, is retried on a live node.
# Without nginx the script says so and names node 1's address for the UI instead.
# Node-to-node gRPC uses mutual TLS: the first `up` makes a cluster CA and one certificate per node
# with dispotify-pki in .cluster/tls/ (ca/ holds the CA key; node-N/ holds tls.crt, tls.key, ca.crt),
# kept between runs like the data. Delete .cluster/tls (with the nodes down) to start over with a
# new CA; the data dirs stay valid (they belong to the cluster id, not to a CA). dispotify-kvctl
# speaks to the nodes as node 1 (--tls-dir), since the nodes serve only members.
# Users and roles are on (auth: true; docs/security.md): the first `up` makes the first admin's
# password and a static admin token for this machine's own tools, in .cluster/credentials and
# .cluster/api-token (mode 0600, kept between runs), prints the password with the UI's address,
# and the leader creates the user "admin" with it when the cluster has no user. Sign in to the web
# UI as admin; `dispotifyctl login admin` for the CLI (or DISPOTIFY_TOKEN from .cluster/api-token).
# The session cookie is not marked Secure: the UI is plain http on loopback.
# Environment: JOBS (build parallelism, default 2), SKIP_BUILD=1 (use the existing binaries),
# BUILD_DIR (default build/release).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster_dir="$repo/.cluster"
build_dir=${BUILD_DIR:-$repo/build/release}
node_bin="$build_dir/node/server/dispotify-node"
kvctl_bin="$build_dir/node/server/dispotify-kvctl"
ctl_bin="$build_dir/cli/dispotifyctl/dispotifyctl"
pki_bin="$build_dir/cli/dispotify-pki/dispotify-pki"
tls_dir="$cluster_dir/tls"
credentials="$cluster_dir/credentials"
password_file="$cluster_dir/admin-password"
token_file="$cluster_dir/api-token"
cluster_id=dispotify-local
api_endpoints="http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083"
ids=(1 2 3)
front_listen=127.0.0.1:8080
front_dir="$cluster_dir/front"
peers="1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
endpoints="127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

log() { echo "[local-cluster] $*" >&2; }

pid_of() {
  local f="$cluster_dir/node-$1.pid"
  [[ -f "$f" ]] || return 1
  local pid
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

stop_front() {
  local f="$cluster_dir/front.pid" pid
  [[ -f "$f" ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping the front address (nginx, pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Starts nginx in front of the nodes, unless it runs already; says when nginx is missing.
start_front() {
  local f="$cluster_dir/front.pid" pid
  if [[ -f "$f" ]] && pid=$(cat "$f") && kill -0 "$pid" 2>/dev/null; then
    log "front address already running (pid $pid)"
    return 0
  fi
  if ! "$repo/scripts/nginx-front.sh" which >/dev/null 2>&1; then
    log "nginx is not installed (scripts/install-deps.sh installs nginx-light): no front address"
    return 1
  fi
  local nodes=() id
  for id in "${ids[@]}"; do nodes+=("127.0.0.1:808$id"); done
  "$repo/scripts/nginx-front.sh" run "$front_dir" "$front_listen" "${nodes[@]}" \
    >>"$cluster_dir/front.log" 2>&1 &
  echo $! >"$f"
  log "started the front address (nginx, pid $!) on $front_listen, log $cluster_dir/front.log"
  for _ in $(seq 50); do
    curl -fs -o /dev/null "http://$front_listen/readyz" 2>/dev/null && return 0
    kill -0 "$!" 2>/dev/null || { log "nginx exited; see $cluster_dir/front.log"; return 1; }
    sleep 0.1
  done
  return 0
}

down() {
  local id pid
  stop_front
  for id in "${ids[@]}"; do
    if pid=$(pid_of "$id"); then
      log "stopping node $id (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for id in "${ids[@]}"; do
    if pid=$(pid_of "$id"); then
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        log "node $id did not stop in 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$cluster_dir/node-$id.pid"
  done
}

build() {
  if [[ "${SKIP_BUILD:-0}" == 1 ]]; then return; fi
  log "building (cmake --preset release, -j ${JOBS:-2})"
  local targets=(dispotify-node dispotify-kvctl dispotifyctl dispotify-pki)
  (cd "$repo" && cmake --preset release >/dev/null)
  # The web UI when the build has it (node and npm found: web/CMakeLists.txt).
  if grep -q '^DISPOTIFY_BUILD_WEB:BOOL=ON$' "$build_dir/CMakeCache.txt" 2>/dev/null; then targets+=(web); fi
  (cd "$repo" && cmake --build --preset release -j "${JOBS:-2}" --target "${targets[@]}")
}

# The cluster CA and the nodes' certificates, made once and kept (a missing piece is made again).
make_certificates() {
  local id
  if [[ ! -f "$tls_dir/ca/ca.key" ]]; then
    log "making the cluster CA in $tls_dir/ca (dispotify-pki)"
    mkdir -p "$tls_dir"
    chmod 700 "$tls_dir"
    "$pki_bin" ca --out "$tls_dir/ca" --cluster "$cluster_id" --days 3650
  fi
  for id in "${ids[@]}"; do
    [[ -f "$tls_dir/node-$id/tls.crt" ]] && continue
    log "issuing node $id's certificate in $tls_dir/node-$id"
    "$pki_bin" issue --ca "$tls_dir/ca" --out "$tls_dir/node-$id" --cluster "$cluster_id" --node "$id" \
      --ip 127.0.0.1 --dns localhost --days 365
  done
}

# The first admin's password and the static admin token, made once and kept. Only the files'
# owner may read them; the password is also the node's admin_password_file (read at start, used
# only while the cluster has no user).
make_credentials() {
  [[ -s "$password_file" && -s "$token_file" && -s "$credentials" ]] && return
  log "making the first admin's password and an admin token in $credentials and $token_file"
  local old_umask
  old_umask=$(umask)
  umask 077
  od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$password_file"
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^/local-/' >"$token_file"
  printf 'user: admin\npassword: %s\napi_token: %s\n' "$(cat "$password_file")" "$(cat "$token_file")" >"$credentials"
  umask "$old_umask"
  chmod 600 "$password_file" "$token_file" "$credentials"
}

up() {
  build
  [[ -x "$node_bin" && -x "$kvctl_bin" && -x "$pki_bin" ]] || { log "binaries not found under $build_dir"; exit 1; }
  mkdir -p "$cluster_dir"
  make_certificates
  make_credentials
  local id
  for id in "${ids[@]}"; do
    if pid=$(pid_of "$id"); then
      log "node $id already running (pid $pid)"
      continue
    fi
    "$node_bin" --node-id "$id" --cluster-id "$cluster_id" --data-dir "$cluster_dir/node-$id" \
      --listen "127.0.0.1:700$id" --peers "$peers" --metrics-listen "127.0.0.1:910$id" \
      --http-listen "127.0.0.1:808$id" \
      --tls-cert-file "$tls_dir/node-$id/tls.crt" --tls-key-file "$tls_dir/node-$id/tls.key" \
      --tls-ca-file "$tls_dir/node-$id/ca.crt" \
      --auth true --admin-password-file "$password_file" --api-token-file "$token_file" \
      --secure-cookies false \
      >>"$cluster_dir/node-$id.log" 2>&1 &
    echo $! >"$cluster_dir/node-$id.pid"
    log "started node $id (pid $!), log $cluster_dir/node-$id.log"
  done
  trap 'echo; down; exit 0' INT TERM

  local leader
  if ! leader=$("$kvctl_bin" --endpoints "$endpoints" --tls-dir "$tls_dir/node-1" --cluster-id "$cluster_id" \
    --timeout 30 wait-leader); then
    log "no leader after 30 s; see the logs in $cluster_dir"
    down
    exit 1
  fi
  for id in "${ids[@]}"; do
    for _ in $(seq 100); do
      curl -fs "http://127.0.0.1:808$id/readyz" >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
  echo
  echo "Dispotify local cluster is up (leader: node ${leader%% *} at ${leader#* })"
  for id in "${ids[@]}"; do
    echo "  node $id  API http://127.0.0.1:808$id  metrics http://127.0.0.1:910$id/metrics  gRPC 127.0.0.1:700$id (mTLS)  data $cluster_dir/node-$id"
  done
  local ui=http://127.0.0.1:8081/
  if start_front; then
    ui=http://$front_listen/
    echo "  front    http://$front_listen/ (nginx over the 3 nodes)  logs $front_dir/"
  fi
  echo
  if curl -fs -o /dev/null "$ui" 2>/dev/null; then
    echo "Web UI: $ui  (open it in a browser)"
    echo "        sign in as admin, password $(cat "$password_file")  (also in $credentials, mode 0600;"
    echo "        it is the first admin's: once changed in the UI, that file no longer says it)"
  else
    echo "Web UI: not built (install node and npm, then build the 'web' target)"
  fi
  echo
  echo "Try:  export DISPOTIFY_ENDPOINTS=$api_endpoints"
  echo "      $ctl_bin login admin          # the password above; stores a token for the CLI"
  echo "      $ctl_bin upload ~/Music"
  echo "      $ctl_bin search beatles"
  echo "      $ctl_bin cluster status"
  echo "      export DISPOTIFY_TOKEN=\$(cat $token_file)   # curl: this machine's admin token"
  echo "      curl -H \"Authorization: Bearer \$DISPOTIFY_TOKEN\" -F file=@song.mp3 http://127.0.0.1:8081/music/upload"
  echo "      curl -H \"Authorization: Bearer \$DISPOTIFY_TOKEN\" 'http://127.0.0.1:8082/music/search?q=song'"
  echo "      curl -H \"Authorization: Bearer \$DISPOTIFY_TOKEN\" -o out.mp3 http://127.0.0.1:8083/music/stream/song.mp3"
  echo "      curl -H \"Authorization: Bearer \$DISPOTIFY_TOKEN\" http://127.0.0.1:8081/cluster/status"
  echo "Ctrl-C (or '$0 down' from another shell) stops the cluster and the front address."
  # Stay in the foreground while any node runs.
  while :; do
    local alive=0
    for id in "${ids[@]}"; do pid_of "$id" >/dev/null && alive=1; done
    [[ $alive == 1 ]] || { log "all nodes have exited"; exit 0; }
    sleep 1
  done
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) DISPOTIFY_TOKEN=${DISPOTIFY_TOKEN:-$(cat "$token_file" 2>/dev/null)} "$ctl_bin" --endpoints "$api_endpoints" cluster status ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
