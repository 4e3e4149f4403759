#!/usr/bin/env python3
"""A real Prometheus (Debian's /usr/bin/prometheus) scrapes a live 3-node cluster of real
dispotify-node processes with the repository's alerting rules loaded. After a small workload
(uploads, streams, searches, 404s) every query of every panel of the Grafana dashboard, with its
variables substituted, returns data with at least one number (no NaN-only answer, and the queries
carry no `or vector(0)` padding); the dashboard's variable queries find the cluster and its nodes;
no alert is pending or firing on the healthy cluster. Then two of the three nodes are killed, and the no-leader
and quorum alerts must appear as firing in Prometheus's ALERTS (polled under a generous deadline:
their `for:` is one minute).

Security is on, as it is by default in a deployment: node-to-node gRPC is mutual TLS (a CA and each
node's certificate made by dispotify-pki), the nodes run with --auth true, the test's own calls
carry a static admin token, and Prometheus scrapes with the API token of a user holding only the
`metrics` role (from a file, as a Kubernetes Secret would give it). Before Prometheus starts, a
scrape without credentials must answer 401 and that token must be refused (403) by the catalog.

    prometheus_e2e.py PATH/TO/dispotify-node PATH/TO/dispotify-pki
                                (ctest: monitoring_prometheus_e2e, labels monitoring e2e)

Everything listens on 127.0.0.1 ports below the ephemeral range (as e2e/cluster_harness.cc does);
data in a temp dir, removed at the end (KEEP_TMP=1 keeps it). Every process is started in its own
process group and killed on every exit path, a failure and Ctrl-C included.
Environment: PROMETHEUS (default /usr/bin/prometheus), KEEP_TMP.
"""
import json
import math
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "monitoring" / "grafana" / "dispotify-cluster.json"
RULES = REPO / "deploy" / "monitoring" / "prometheus" / "dispotify-rules.yml"
PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
# Short intervals so that rates and `for:` durations play out in seconds, not minutes.
SCRAPE_INTERVAL = "1s"
RATE_WINDOW = "1m"  # what Grafana's $__rate_interval stands for here
T0 = time.monotonic()


def log(msg):
    print(f"[prometheus-e2e {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def free_ports(n):
    """n distinct loopback ports below the kernel's ephemeral range, all bound at once so none
    repeats; a port from bind(0) could meanwhile become the local port of an outgoing connection."""
    first_ephemeral = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    socks = []
    try:
        while len(socks) < n:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", random.randint(10000, first_ephemeral - 1)))
                socks.append(s)
            except OSError:
                s.close()
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http(method, url, body=None, headers=None, timeout=10):
    """(status, body bytes); status 0 when the connection failed."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


ADMIN_TOKEN = "static-" + os.urandom(24).hex()


def node_api(method, url, body=None, headers=None, timeout=10):
    """http() with the static admin token (a bearer: no session, no CSRF token)."""
    return http(method, url, body, {"Authorization": f"Bearer {ADMIN_TOKEN}", **(headers or {})}, timeout)


def scrape_token(rest_url):
    """The API token of a new user "prometheus" that holds only the metrics role: the admin creates
    the user, the user signs in and makes a token for itself (session cookie and CSRF token)."""
    password = "pw-" + os.urandom(12).hex()
    status, body = node_api("POST", f"{rest_url}/admin/users",
                            json.dumps({"name": "prometheus", "password": password, "roles": ["metrics"]}).encode(),
                            {"Content-Type": "application/json"})
    assert status == 201, f"POST /admin/users: HTTP {status} {body[:300]!r}"
    req = urllib.request.Request(f"{rest_url}/auth/login", method="POST",
                                 data=json.dumps({"name": "prometheus", "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        cookie = r.headers["Set-Cookie"].split(";")[0]
        csrf = json.loads(r.read())["csrf_token"]
    status, body = http("POST", f"{rest_url}/auth/tokens",
                        json.dumps({"name": "scrape", "roles": ["metrics"]}).encode(),
                        {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 201, f"POST /auth/tokens: HTTP {status} {body[:300]!r}"
    return json.loads(body)["token"]


def eventually(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.25)
    if not pred():
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def make_mp3(title, frames):
    """A minimal valid MP3: an ID3v2.4 tag and silent MPEG-1 Layer III frames (the layout of
    tests/support/audio_files.cc MakeMp3)."""
    def synchsafe(n):
        return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])

    def frame(fid, text):
        body = b"\x03" + text.encode()
        return fid.encode() + synchsafe(len(body)) + b"\x00\x00" + body

    tags = frame("TIT2", title) + frame("TPE1", "Monitoring Artist") + frame("TALB", "Scrape Album")
    return b"ID3\x04\x00\x00" + synchsafe(len(tags)) + tags + b"\xFF\xFB\x90\x00".ljust(417, b"\x00") * frames


class Processes:
    """Children in their own process groups; all killed by close(), whatever happened."""

    def __init__(self):
        self.procs = {}

    def start(self, name, argv, log_path):
        with open(log_path, "wb") as out:
            self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
        return self.procs[name]

    def kill(self, name, sig=signal.SIGKILL, timeout=10):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def close(self):
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM if name == "prometheus" else signal.SIGKILL)


class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path, **params):
        status, body = http("GET", f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}")
        if status != 200:
            raise AssertionError(f"Prometheus {path} {params}: HTTP {status}: {body[:500]!r}")
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: {answer}")
        return answer["data"]

    def has_numbers(self, expr, instant):
        """Whether the query answers at least one series with a number that is not NaN."""
        now = time.time()
        if instant:
            data = self.api("query", query=expr, time=now)
            values = [s["value"][1] for s in data["result"]] if data["resultType"] == "vector" else []
        else:
            data = self.api("query_range", query=expr, start=now - 60, end=now, step=5)
            values = [v[1] for s in data["result"] for v in s["values"]]
        return any(not math.isnan(float(v)) for v in values)


def substitute(expr, cluster, node):
    return (expr.replace("$__rate_interval", RATE_WINDOW).replace("${cluster}", cluster)
            .replace("$cluster", cluster).replace("${node}", node).replace("$node", node))


def panel_queries(dashboard):
    panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
    for p in panels:
        for t in p.get("targets", []):
            yield f"panel {p['title']!r} {t['refId']}", t["expr"], bool(t.get("instant"))


def make_certificates(pki_bin, tls_dir, cluster_id, ids):
    """The cluster's CA and one certificate per node (tls.crt, tls.key, ca.crt in tls_dir/node-N),
    as scripts/run-local-cluster.sh makes them."""
    tls_dir.mkdir(mode=0o700)
    subprocess.run([pki_bin, "ca", "--out", str(tls_dir / "ca"), "--cluster", cluster_id, "--days", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    for i in ids:
        subprocess.run([pki_bin, "issue", "--ca", str(tls_dir / "ca"), "--out", str(tls_dir / f"node-{i}"),
                        "--cluster", cluster_id, "--node", str(i), "--ip", "127.0.0.1", "--days", "2"],
                       check=True, stdout=subprocess.DEVNULL)


def main(node_bin, pki_bin):
    prometheus_version = subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True, check=True)
    log(prometheus_version.stdout.splitlines()[0] if prometheus_version.stdout else prometheus_version.stderr)
    dashboard = json.loads(DASHBOARD.read_text())
    for _, expr, _ in panel_queries(dashboard):
        assert "vector(0)" not in expr.replace(" ", ""), f"padded query: {expr}"

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="dispotify-prometheus-e2e."))
    procs = Processes()
    ok = False
    try:
        ports = free_ports(10)
        grpc = {i: ports[i - 1] for i in (1, 2, 3)}
        rest = {i: ports[i + 2] for i in (1, 2, 3)}
        metrics = {i: ports[i + 5] for i in (1, 2, 3)}
        prom_port = ports[9]
        cluster_id = f"monitoring-e2e-{random.randrange(1 << 30)}"
        peers = ",".join(f"{i}=127.0.0.1:{grpc[i]}" for i in (1, 2, 3))
        (tmp / "api-token").write_text(ADMIN_TOKEN)
        (tmp / "api-token").chmod(0o600)
        make_certificates(pki_bin, tmp / "tls", cluster_id, (1, 2, 3))
        for i in (1, 2, 3):
            tls = tmp / "tls" / f"node-{i}"
            procs.start(f"node{i}", [
                node_bin, "--node-id", str(i), "--cluster-id", cluster_id, "--data-dir", str(tmp / f"node-{i}"),
                "--listen", f"127.0.0.1:{grpc[i]}", "--peers", peers, "--metrics-listen", f"127.0.0.1:{metrics[i]}",
                "--http-listen", f"127.0.0.1:{rest[i]}", "--log-level", "warning",
                "--auth", "true", "--secure-cookies", "false", "--api-token-file", str(tmp / "api-token"),
                "--tls-cert-file", str(tls / "tls.crt"), "--tls-key-file", str(tls / "tls.key"),
                "--tls-ca-file", str(tls / "ca.crt")], tmp / f"node-{i}.log")
        log(f"nodes of cluster {cluster_id} started; data in {tmp}")

        def all_healthy(i):
            status, body = node_api("GET", f"http://127.0.0.1:{rest[i]}/cluster/status", timeout=2)
            if status != 200:
                return False
            members = json.loads(body)["members"]
            return len(members) == 3 and all(m["healthy"] for m in members)

        for i in (1, 2, 3):
            eventually(lambda: http("GET", f"http://127.0.0.1:{rest[i]}/readyz", timeout=2)[0] == 200, 60,
                       f"node {i} ready")
            eventually(lambda: all_healthy(i), 60, f"node {i} to see every peer healthy")
        log("every node is ready and sees every peer")

        # /metrics needs credentials; the scraper's token opens it and nothing else.
        token = scrape_token(f"http://127.0.0.1:{rest[1]}")
        (tmp / "scrape-token").write_text(token)
        (tmp / "scrape-token").chmod(0o600)
        for i in (1, 2, 3):
            status, body = http("GET", f"http://127.0.0.1:{metrics[i]}/metrics")
            assert status == 401, f"node {i}: /metrics without credentials answered {status}"
            # The user was made through Raft on node 1: the others see it once they applied it.
            eventually(lambda: http("GET", f"http://127.0.0.1:{metrics[i]}/metrics",
                                    headers={"Authorization": f"Bearer {token}"})[0] == 200, 20,
                       f"node {i} to accept the scrape token")
        status, body = http("GET", f"http://127.0.0.1:{rest[2]}/music/songs",
                            headers={"Authorization": f"Bearer {token}"})
        assert status == 403, f"the scrape token read the catalog: HTTP {status}"
        log("/metrics: 401 without credentials, 200 with the scrape token, which the catalog refuses (403)")

        (tmp / "prometheus.yml").write_text(f"""
global:
  scrape_interval: {SCRAPE_INTERVAL}
  scrape_timeout: {SCRAPE_INTERVAL}
  evaluation_interval: {SCRAPE_INTERVAL}
rule_files:
  - {RULES}
scrape_configs:
  - job_name: dispotify
    authorization:
      type: Bearer
      credentials_file: {tmp / "scrape-token"}
    static_configs:
      - targets: [{", ".join(f"'127.0.0.1:{metrics[i]}'" for i in (1, 2, 3))}]
""")
        procs.start("prometheus", [
            PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"], tmp / "prometheus.log")
        prom = Prometheus(prom_port)
        eventually(lambda: http("GET", f"{prom.base}/-/ready", timeout=2)[0] == 200, 60, "Prometheus ready")
        eventually(lambda: len(prom.api("query", query='up{job="dispotify"} == 1')["result"]) == 3, 60,
                   "Prometheus to scrape the three nodes")
        log(f"Prometheus on 127.0.0.1:{prom_port} scrapes the three nodes")

        # The workload: songs uploaded through every node, streamed from every node, searched, and
        # 404s (an unknown song, an unknown path). About 20 s, so that rates have samples.
        counts = {}

        def count(status):
            counts[status] = counts.get(status, 0) + 1

        uploaded = []
        deadline = time.monotonic() + 20
        round_no = 0
        while time.monotonic() < deadline or round_no < 2:
            round_no += 1
            for i in (1, 2, 3):
                file_id = f"round-{round_no}-node-{i}.mp3"
                status, body = node_api("POST", f"http://127.0.0.1:{rest[i]}/music/upload?filename={file_id}",
                                    make_mp3(f"Round {round_no} via {i}", 60 + 10 * i), {"Content-Type": "audio/mpeg"},
                                    timeout=30)
                count(status)
                if status == 201:
                    uploaded.append(file_id)
                elif status != 503:
                    raise AssertionError(f"upload {file_id} via node {i}: HTTP {status}: {body[:300]!r}")
            for i in (1, 2, 3):
                for file_id in uploaded[-3:]:
                    count(node_api("GET", f"http://127.0.0.1:{rest[i]}/music/stream/{file_id}")[0])
                count(node_api("GET", f"http://127.0.0.1:{rest[i]}/music/search?q=round")[0])
                count(node_api("GET", f"http://127.0.0.1:{rest[i]}/music/stream/No-Such-Song.mp3")[0])
                count(node_api("GET", f"http://127.0.0.1:{rest[i]}/no/such/path")[0])
            time.sleep(0.5)
        log(f"workload: {round_no} rounds, {len(uploaded)} songs uploaded, answers by status {sorted(counts.items())}")
        assert len(uploaded) >= 3, "fewer than three uploads succeeded"
        assert counts.get(404, 0) > 0 and counts.get(200, 0) > 0

        # The dashboard's variables: the cluster, then its nodes.
        clusters = prom.api("label/cluster_id/values", **{"match[]": "dispotify_build_info"})
        assert cluster_id in clusters, clusters
        nodes = prom.api("label/node_id/values", **{"match[]": f'dispotify_build_info{{cluster_id="{cluster_id}"}}'})
        assert sorted(nodes) == ["1", "2", "3"], nodes

        # Every panel query answers with numbers: for all nodes (the variable's "All", .*) and for
        # the leader alone. (Proposals are timed where they are made, on the leader: a follower
        # alone has no proposal latency, as the panel's description says.)
        status, body = node_api("GET", f"http://127.0.0.1:{rest[1]}/cluster/status")
        leader = json.loads(body).get("leader_id") if status == 200 else 0
        assert leader in (1, 2, 3), f"node 1 knows no leader: HTTP {status} {body[:300]!r}"
        queries = list(panel_queries(dashboard))
        for node in (".*", str(leader)):
            pending = {(where, substitute(expr, cluster_id, node), instant) for where, expr, instant in queries}
            deadline = time.monotonic() + 60
            while pending and time.monotonic() < deadline:
                pending = {q for q in pending if not prom.has_numbers(q[1], q[2])}
                if pending:
                    time.sleep(1)
            if pending:
                raise AssertionError(f"node={node}: {len(pending)} of {len(queries)} panel queries have no data:\n  " +
                                     "\n  ".join(f"{w}: {e}" for w, e, _ in sorted(pending)))
            log(f"all {len(queries)} panel queries answer with data (node={node})")
        # On a healthy cluster no alert's condition holds: none is even pending (every rule has been
        # evaluated once a second for a while now). But for a disk that really is nearly full: the
        # nodes' data share the file system of the temp dir.
        fs = os.statvfs(tmp)
        tolerated = {"DispotifyDiskNearlyFull"} if fs.f_bavail / fs.f_blocks < 0.15 else set()
        active = {a["metric"]["alertname"]
                  for a in prom.api("query", query=f'ALERTS{{cluster_id="{cluster_id}"}}')["result"]}
        assert active <= tolerated, f"alerts pending or firing on a healthy cluster: {sorted(active)}"

        # Two of three nodes die, the leader among them: no leader, no quorum.
        victims = [2, 3] if leader != 1 else [1, 2]
        for i in victims:
            procs.kill(f"node{i}")
        survivor = ({1, 2, 3} - set(victims)).pop()
        log(f"killed nodes {victims} (the leader was {leader}); node {survivor} is left")
        want = {"DispotifyNoLeader", "DispotifyQuorumAtRisk"}

        def firing_now():
            result = prom.api("query", query=f'ALERTS{{cluster_id="{cluster_id}", alertstate="firing"}}')["result"]
            return {a["metric"]["alertname"] for a in result}

        eventually(lambda: want <= firing_now(), 240, f"{sorted(want)} firing in ALERTS")
        log(f"firing: {sorted(firing_now())}")
        ok = True
    finally:
        procs.close()
        if not ok:
            for f in sorted(tmp.glob("*.log")):
                lines = f.read_text(errors="replace").splitlines()[-25:]
                log(f"last lines of {f.name}:\n" + "\n".join(lines))
        if os.environ.get("KEEP_TMP") == "1":
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log("passed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or not all(os.access(p, os.X_OK) for p in sys.argv[1:]):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    # SIGTERM (ctest's timeout) unwinds through the finally blocks like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(sys.argv[1], sys.argv[2]))
