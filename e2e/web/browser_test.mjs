// Browser tests of the web UI (issue 12): Debian's chromium, headless, driven by playwright-core
// over CDP, against a real local cluster that this test starts: three dispotify-node processes on
// free loopback ports serving web/dist, and Debian's nginx in front of them
// (scripts/nginx-front.sh, the same configuration as scripts/run-local-cluster.sh's front address),
// which is the only origin the browser talks to.
//
//   node browser_test.mjs --node-binary PATH --pki-binary PATH --web-root DIR --artifacts DIR
//
// Security is on (issue 13): node-to-node gRPC is mutual TLS (a CA and each node's certificate made
// by dispotify-pki), the nodes run with --auth true (and --secure-cookies false: plain http on
// loopback), the leader creates the user "admin" from --admin-password-file, and the test holds a
// static admin token (--api-token-file) for its own API calls. First an anonymous visit lands on
// the login page (screenshot), the API answers 401, a wrong password shows an error; then the admin
// signs in through the login page and everything below runs in that session, the CSRF token read
// by the page from the cookie dispotify_csrf. At the end, in fresh browser contexts: a listener
// sees no upload or delete control (and still plays a song); an uploader's delete of the admin's
// song is refused (403) and the page says so; the uploader uploads a song of its own and deletes
// it through the UI (both requests carry the cookie's token as X-CSRF-Token; the same DELETE
// without it answers 403 csrf); demoted to listener while signed in, its upload is refused and the
// page says so, and after a reload the upload control is gone; sign-out returns to the login page
// and the API then answers 401.
//
// OIDC: the cluster's nodes are given ORY Hydra (e2e/oidc/install-hydra.sh's cached binary, as
// oidc_e2e_test runs it) as their issuer, with the browser login. The login page shows "Sign in
// with <issuer's host>"; a click goes through the node's /auth/oidc/login to Hydra, whose login and
// consent app is a small server of this test (it accepts the login as "alice" and grants the
// scopes listener and uploader through Hydra's admin API), and back through the node's callback:
// the page is signed in as oidc-alice, on the page it started from, and uploads and deletes a song
// through the UI with the CSRF token of the cookie. Without the Hydra binary that part is skipped,
// loudly (a failure with DISPOTIFY_REQUIRE_OIDC set). A lone node without OIDC shows no such button.
//
// Scenarios, in one browser session (the player keeps playing across pages, as for a listener):
// upload four ffmpeg-made songs (tags, one with an embedded cover) by dropping them on the page;
// find one by a misspelled search; play it and see the time advance; seek and see the time jump,
// with a Range request (206) counted by a node's /metrics and logged by nginx; the album and artist
// pages with the embedded cover shown (an immutable JPEG from /music/covers/, the right colour)
// and the placeholder for the album without one, the cover in the player bar and the Media
// Session; the gap between two queued songs (with responses delayed as on a real network); the
// cluster page with 3 members and a leader; with the download throttled so that the browser holds
// only part of a song: kill -9 the node serving it and see playback go on from the same position
// with no error (the rest asked for with a Range request, answered by a live node), then have the
// front refuse the stream until the player's own reload-and-seek-back has run, with the same
// outcome; see the killed node turn unhealthy; the phone layout (390x844). Every page gets a
// screenshot (printed paths, under --artifacts) and an axe-core check: no serious or critical
// violation. Prints the JavaScript's gzip size, the gap between songs, and the home page's
// time to first render.
//
// Cleanup: every child (nodes, nginx, chromium) runs in its own process group, all killed on exit,
// on failure, on SIGINT/SIGTERM and after DISPOTIFY_BROWSER_TTL_S (default 480 s); a detached shell
// watchdog kills them too if this process itself is killed (ctest's timeout).
// Exit 77 (skipped) when chromium, nginx or ffmpeg is missing, unless DISPOTIFY_REQUIRE_BROWSER=1.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
// playwright-core and @axe-core/playwright: from the cache that scripts/install-test-tools.sh fills
// (run.sh passes it), else from a node_modules beside this file (`npm ci` here).
const modules = process.env.DISPOTIFY_BROWSER_TEST_MODULES ?? join(here, 'node_modules');
const requireModule = createRequire(join(modules, 'package.json'));
const { chromium } = requireModule('playwright-core');
const { AxeBuilder } = requireModule('@axe-core/playwright');

// ---- arguments and tools --------------------------------------------------------------------

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const nodeBinary = arg('node-binary', join(repo, 'build/release/node/server/dispotify-node'));
const pkiBinary = arg('pki-binary', join(repo, 'build/release/cli/dispotify-pki/dispotify-pki'));
const webRoot = resolve(arg('web-root', join(repo, 'web/dist')));
const artifacts = resolve(arg('artifacts', join(repo, 'build/release/e2e/web/artifacts')));
const chromiumPath = process.env.DISPOTIFY_CHROMIUM ?? '/usr/bin/chromium';
const ttlSeconds = Number(process.env.DISPOTIFY_BROWSER_TTL_S ?? 480);
const frontScript = join(repo, 'scripts/nginx-front.sh');

function skip(why) {
  if (process.env.DISPOTIFY_REQUIRE_BROWSER === '1') {
    console.error(`browser_test: ${why} (DISPOTIFY_REQUIRE_BROWSER=1: failing instead of skipping)`);
    process.exit(1);
  }
  console.log(`browser_test: ${why}: skipped`);
  process.exit(77);
}
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
if (!existsSync(chromiumPath)) skip(`no chromium at ${chromiumPath} (scripts/install-test-tools.sh installs it)`);
if (spawnSync(frontScript, ['which'], { stdio: 'ignore' }).status !== 0) skip('nginx is not installed (scripts/install-deps.sh)');
if (!has('ffmpeg')) skip('ffmpeg is not installed (scripts/install-deps.sh)');
if (!existsSync(nodeBinary)) throw new Error(`no dispotify-node at ${nodeBinary}`);
// ORY Hydra for the OIDC login, where scripts/install-test-tools.sh cached it.
const hydraBinary = (() => {
  const r = spawnSync(join(repo, 'e2e/oidc/install-hydra.sh'), ['--print-bin'], { encoding: 'utf8' });
  const bin = r.status === 0 ? join(r.stdout.trim(), 'hydra') : '';
  return bin && existsSync(bin) ? bin : '';
})();
const oidcRequired = !['', '0', undefined].includes(process.env.DISPOTIFY_REQUIRE_OIDC);
if (!existsSync(join(webRoot, 'index.html'))) throw new Error(`no built UI at ${webRoot} (cmake --build --target web)`);

// ---- processes: own process groups, always stopped ------------------------------------------

const base = mkdtempSync(join(tmpdir(), 'dispotify-browser-'));
const groupsFile = join(base, 'pgids');
const children = new Map(); // name -> ChildProcess
writeFileSync(groupsFile, '');

function start(name, cmd, args, logFile, env = {}) {
  const out = logFile ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'ignore', 'ignore'];
  const child = spawn(cmd, args, { detached: true, stdio: out, env: { ...process.env, ...env } });
  if (logFile) {
    const chunks = [];
    const write = (d) => {
      chunks.push(d);
      writeFileSync(logFile, Buffer.concat(chunks));
    };
    child.stdout.on('data', write);
    child.stderr.on('data', write);
  }
  children.set(name, child);
  writeFileSync(groupsFile, [...children.values()].map((c) => c.pid).join('\n') + '\n');
  return child;
}

function killGroup(child, signal = 'SIGKILL') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of children.values()) killGroup(c);
  // nginx's logs are artifacts too (the requests, their Range headers and which node answered).
  for (const f of ['access.log', 'error.log', 'nginx.conf']) {
    try {
      writeFileSync(join(artifacts, `nginx-${f}`), readFileSync(join(base, 'front', f)));
    } catch {
      // not started
    }
  }
  try {
    rmSync(base, { recursive: true, force: true });
  } catch {
    // best effort
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`browser_test: ${sig}: stopping everything`);
    cleanup();
    process.exit(1);
  });
}
const ttl = setTimeout(() => {
  console.error(`browser_test: still running after ${ttlSeconds} s (DISPOTIFY_BROWSER_TTL_S): stopping everything`);
  cleanup();
  process.exit(1);
}, ttlSeconds * 1000);
ttl.unref();
// If this process dies without running its handlers (SIGKILL from a timeout), a detached watchdog
// kills the process groups it finds in the groups file, then removes the temporary directory.
spawn(
  'sh',
  [
    '-c',
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
     for g in $(cat "${groupsFile}" 2>/dev/null); do kill -KILL -- "-$g" 2>/dev/null; done
     rm -rf "${base}"`,
  ],
  { detached: true, stdio: 'ignore' },
).unref();

// ---- small helpers ---------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function eventually(what, fn, timeoutMs = 30_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}${last ? ` (${last.message})` : ''}`);
    await sleep(everyMs);
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

async function getJson(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

function log(msg) {
  console.log(`[browser_test +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
}
const t0 = Date.now();

// ---- the audio files --------------------------------------------------------------------------

const ALBUM = 'Night Drive Sessions';
// The same artist's other album: no picture in its one song, so its cover is the placeholder.
const BARE_ALBUM = 'Quiet Hours';
const ARTIST = 'The Lamplighters';
// The long one is played: 8 minutes at 128 kb/s (7.7 MB).
const SONGS = [
  { file: 'Moonlight Serenade.mp3', title: 'Moonlight Serenade', track: 1, seconds: 480, freq: 440, kbps: 128 },
  { file: 'Harbour Lights.mp3', title: 'Harbour Lights', track: 2, seconds: 20, freq: 660, kbps: 192, cover: 'maroon' },
  { file: 'Paper Lanterns.mp3', title: 'Paper Lanterns', track: 1, seconds: 10, freq: 550, kbps: 128, album: BARE_ALBUM },
  // Played only under a throttled network, so that the rest of it is still on the node when that
  // node is killed. 36 MB: well over what the socket buffers between the node, nginx and the
  // browser hold (7 to 14 MB seen on loopback, where receive buffers grow to 32 MB), which still
  // reach the browser after the node is gone.
  { file: 'Slow Tide.mp3', title: 'Slow Tide', track: 2, seconds: 900, freq: 330, kbps: 320, album: BARE_ALBUM },
];
// Slow Tide plays at 16 times its speed (the most Chrome allows), so that those buffered megabytes
// are played out in seconds rather than minutes, with the download throttled to 1.5 times what that
// consumes: the browser's own buffer grows by half a second a second and never holds the song.
const SLOW_RATE = 16;
const THROTTLE_BYTES_S = 1.5 * SLOW_RATE * (320_000 / 8);
// Between the end of one song and the start of the next in the queue, with every response delayed
// by GAP_LATENCY_MS as on a real network (on loopback a new request costs next to nothing): a
// player that only asks for the next song when the first ends waits at least that long.
const GAP_LATENCY_MS = 200;
const MAX_GAP_MS = 100;
// ffmpeg's maroon, what the centre of the shown cover must be (JPEG moves it a little).
const MAROON = [128, 0, 0];
const COVER_TOLERANCE = 40;

// Uploaded by their uploaders at the end (the uploader, then the OIDC user) and deleted again.
const OWN_SONGS = [
  { file: 'Ulla Own.mp3', title: 'Ulla Own', track: 1, seconds: 5, freq: 770, kbps: 128, album: 'Own Uploads' },
  { file: 'Alice Own.mp3', title: 'Alice Own', track: 2, seconds: 5, freq: 880, kbps: 128, album: 'Own Uploads' },
];

function makeAudio(dir, songs = SONGS) {
  mkdirSync(dir, { recursive: true });
  return songs.map((s) => {
    const path = join(dir, s.file);
    // MP3s with ID3v2 tags; Harbour Lights has an attached front cover, a 300x300 JPEG of one
    // colour, so the colour shown proves which picture the page shows.
    const cover = s.cover
      ? ['-f', 'lavfi', '-i', `color=c=${s.cover}:s=300x300:d=1`, '-map', '0:a', '-map', '1:v', '-frames:v', '1',
         '-c:v', 'mjpeg', '-disposition:v', 'attached_pic', '-metadata:s:v', 'title=Album cover',
         '-metadata:s:v', 'comment=Cover (front)']
      : [];
    const r = spawnSync(
      'ffmpeg',
      [
        '-hide_banner', '-loglevel', 'error', '-y',
        '-f', 'lavfi', '-i', `sine=frequency=${s.freq}:duration=${s.seconds}:sample_rate=44100`,
        ...cover,
        '-c:a', 'libmp3lame', '-b:a', `${s.kbps}k`, '-ac', '2',
        '-id3v2_version', '3',
        '-metadata', `title=${s.title}`, '-metadata', `artist=${ARTIST}`, '-metadata', `album_artist=${ARTIST}`,
        '-metadata', `album=${s.album ?? ALBUM}`, '-metadata', `track=${s.track}`, '-metadata', 'genre=Jazz',
        '-metadata', 'date=2024',
        path,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`ffmpeg failed for ${s.file}: ${r.stderr}`);
    return { ...s, path, size: statSync(path).size };
  });
}

// ---- the cluster ------------------------------------------------------------------------------

// Security on: the first admin's password and a static admin token, as files (secrets).
const ADMIN_PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const API_TOKEN = `static-${randomBytes(24).toString('hex')}`;

// The cluster's CA and each node's certificate (as scripts/run-local-cluster.sh makes them): the
// node flags of each id.
function makeCertificates(cluster, ids) {
  if (!existsSync(pkiBinary)) throw new Error(`no dispotify-pki at ${pkiBinary} (cmake --build --target dispotify-pki)`);
  const dir = join(base, `tls-${cluster}`);
  mkdirSync(dir, { mode: 0o700 });
  const pki = (args) => {
    const r = spawnSync(pkiBinary, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dispotify-pki ${args.join(' ')}: ${r.stderr}`);
  };
  pki(['ca', '--out', join(dir, 'ca'), '--cluster', cluster, '--days', '2']);
  const flags = {};
  for (const id of ids) {
    const out = join(dir, `node-${id}`);
    pki(['issue', '--ca', join(dir, 'ca'), '--out', out, '--cluster', cluster, '--node', String(id), '--ip', '127.0.0.1', '--days', '2']);
    flags[id] = ['--tls-cert-file', join(out, 'tls.crt'), '--tls-key-file', join(out, 'tls.key'), '--tls-ca-file', join(out, 'ca.crt')];
  }
  return flags;
}

// ORY Hydra (`serve all --dev`: plain http on loopback, its database in memory, JWT access tokens)
// and its login and consent app, a server of this test: it accepts every login as OIDC_SUBJECT
// and grants the scopes that are our roles, through Hydra's admin API, as oidc_e2e_test does.
const OIDC_SUBJECT = 'alice';
const OIDC_AUDIENCE = 'dispotify';
const OIDC_CLIENT = 'dispotify-web';
async function startHydra() {
  const [pub, admin] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${pub}`;
  const adminUrl = `http://127.0.0.1:${admin}`;
  const seen = [];
  const accept = async (flow, challenge, body) => {
    const r = await fetch(`${adminUrl}/admin/oauth2/auth/requests/${flow}/accept?${flow}_challenge=${encodeURIComponent(challenge ?? '')}`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok) throw new Error(`hydra ${flow} accept: ${r.status} ${await r.text()}`);
    return (await r.json()).redirect_to;
  };
  const app = createHttpServer((req, res) => {
    const u = new URL(req.url, 'http://app');
    const step = u.pathname === '/login'
      ? accept('login', u.searchParams.get('login_challenge'), { subject: OIDC_SUBJECT })
      : u.pathname === '/consent'
        ? accept('consent', u.searchParams.get('consent_challenge'), { grant_scope: ['openid', 'listener', 'uploader'], grant_access_token_audience: [OIDC_AUDIENCE] })
        : Promise.reject(new Error(`no such step ${u.pathname}`));
    step.then((to) => {
      seen.push(u.pathname);
      res.writeHead(302, { Location: to }).end();
    }, (e) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(e)));
  });
  await new Promise((r) => app.listen(0, '127.0.0.1', r));
  app.unref();
  const dir = join(base, 'hydra');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'hydra.yml'), [
    'dsn: memory',
    'serve:',
    `  public: {host: 127.0.0.1, port: ${pub}}`,
    `  admin: {host: 127.0.0.1, port: ${admin}}`,
    'urls:',
    `  self: {issuer: ${issuer}}`,
    `  login: http://127.0.0.1:${app.address().port}/login`,
    `  consent: http://127.0.0.1:${app.address().port}/consent`,
    'strategies: {access_token: jwt}',
    'secrets: {system: ["a system secret of the dispotify browser test"]}',
    'log: {level: info}',
    '',
  ].join('\n'));
  start('hydra', hydraBinary, ['serve', 'all', '--dev', '-c', join(dir, 'hydra.yml')], join(artifacts, 'hydra.log'));
  await eventually('hydra ready', async () =>
    (await fetch(`${adminUrl}/health/ready`)).ok && (await fetch(`${issuer}/.well-known/openid-configuration`)).ok, 60_000);
  return { issuer, adminUrl, seen };
}

// The web UI's client at Hydra: public (PKCE is its proof), the authorization code grant, back at
// the front's callback.
async function createWebClient(hydra, redirectUri) {
  const r = await fetch(`${hydra.adminUrl}/admin/clients`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_id: OIDC_CLIENT, grant_types: ['authorization_code'], response_types: ['code'],
      scope: 'openid listener uploader', audience: [OIDC_AUDIENCE], redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
    }),
  });
  check(r.status === 201, `hydra: POST /admin/clients: ${r.status} ${await r.text()}`);
}

async function startCluster(hydra) {
  const adminPasswordFile = join(base, 'admin-password');
  const apiTokenFile = join(base, 'api-token');
  writeFileSync(adminPasswordFile, ADMIN_PASSWORD, { mode: 0o600 });
  writeFileSync(apiTokenFile, API_TOKEN, { mode: 0o600 });
  const nodes = [];
  for (const id of [1, 2, 3]) {
    nodes.push({ id, peer: await freePort(), http: await freePort(), metrics: await freePort() });
  }
  const peers = nodes.map((n) => `${n.id}=127.0.0.1:${n.peer}`).join(',');
  const tls = makeCertificates('browser-test', nodes.map((n) => n.id));
  // The front's address is the OIDC redirect URI: chosen before the nodes start.
  const front = { port: await freePort(), dir: join(base, 'front') };
  front.url = `http://127.0.0.1:${front.port}`;
  const oidc = [];
  if (hydra) {
    await createWebClient(hydra, `${front.url}/auth/oidc/callback`);
    oidc.push('--oidc-issuer', hydra.issuer, '--oidc-audience', OIDC_AUDIENCE, '--oidc-roles-claim', 'scp',
      '--oidc-client-id', OIDC_CLIENT, '--oidc-redirect-uri', `${front.url}/auth/oidc/callback`,
      '--oidc-scopes', 'openid listener uploader');
  }
  for (const n of nodes) {
    n.log = join(artifacts, `node-${n.id}.log`);
    n.args = [
      '--node-id', String(n.id), '--cluster-id', 'browser-test',
      '--data-dir', join(base, `node-${n.id}`),
      '--listen', `127.0.0.1:${n.peer}`, '--peers', peers,
      '--http-listen', `127.0.0.1:${n.http}`, '--metrics-listen', `127.0.0.1:${n.metrics}`,
      '--web-root', webRoot,
      '--auth', 'true', '--secure-cookies', 'false',
      '--admin-password-file', adminPasswordFile, '--api-token-file', apiTokenFile,
      ...tls[n.id], ...oidc,
    ];
    n.proc = start(`node-${n.id}`, nodeBinary, n.args, n.log);
  }
  await eventually('a leader and every node ready', async () => {
    for (const n of nodes) {
      const r = await fetch(`http://127.0.0.1:${n.http}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (r.status !== 200) return false;
    }
    return true;
  }, 60_000);
  front.log = join(artifacts, 'nginx.log');
  start('nginx', frontScript, ['run', front.dir, `127.0.0.1:${front.port}`, ...nodes.map((n) => `127.0.0.1:${n.http}`)], front.log);
  await eventually('nginx in front of the nodes', async () => (await fetch(`${front.url}/readyz`)).ok, 20_000);
  // The leader creates "admin" shortly after it is elected (through Raft): seen by every node.
  await eventually('the first admin created', async () => {
    for (const n of nodes) {
      const r = await adminApi(`http://127.0.0.1:${n.http}`, 'GET', '/admin/users');
      if (!r.ok || !JSON.stringify(await r.json()).includes('"admin"')) return false;
    }
    return true;
  }, 30_000);
  return { nodes, front };
}

// The test's own calls to the API, with the static admin token (a bearer: no CSRF token needed).
function adminApi(origin, method, path, body) {
  return fetch(`${origin}${path}`, {
    method,
    headers: { Authorization: `Bearer ${API_TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
}

// The login page's form, as a person fills it in.
async function signIn(page, name, password) {
  await page.getByTestId('login-page').waitFor({ timeout: 15_000 });
  await page.getByLabel(/name/i).first().fill(name);
  await page.getByLabel(/password/i).fill(password);
  await page.getByRole('button', { name: /sign in/i }).click();
}

// What the page's own fetch gets from the API (with its cookie, if any).
const pageStatus = (page, path) => page.evaluate(async (p) => (await fetch(p, { cache: 'no-store' })).status, path);

// dispotify_http_requests_total{code="206",route="/music/stream/{file_id}"} summed over the nodes
// still running.
async function rangeAnswers(nodes) {
  let total = 0;
  for (const n of nodes) {
    if (n.dead) continue;
    const text = await (await fetch(`http://127.0.0.1:${n.metrics}/metrics`, { headers: { Authorization: `Bearer ${API_TOKEN}` } })).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('dispotify_http_requests_total{') && line.includes('code="206"') &&
          line.includes('route="/music/stream/{file_id}"')) {
        total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return total;
}

function accessLog(front) {
  try {
    return readFileSync(join(front.dir, 'access.log'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

// ---- the browser ------------------------------------------------------------------------------

async function startBrowser() {
  const profile = mkdtempSync(join(base, 'chromium-profile-'));
  const proc = start('chromium', chromiumPath, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-default-browser-check', '--mute-audio', '--remote-debugging-port=0',
    `--user-data-dir=${profile}`, 'about:blank',
  ], join(artifacts, 'chromium.log'));
  const portFile = join(profile, 'DevToolsActivePort');
  const port = await eventually('chromium DevTools port', () => existsSync(portFile) && readFileSync(portFile, 'utf8').split('\n')[0], 30_000, 100);
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
  return { browser, proc };
}

const screenshots = [];
const axeProblems = [];

async function shoot(page, name) {
  const path = join(artifacts, `${String(screenshots.length + 1).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path, fullPage: false });
  screenshots.push(path);
  log(`screenshot ${path}`);
}

async function axe(page, name) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) {
    const where = v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ');
    axeProblems.push(`${name}: ${v.id} (${v.impact}) ${v.help}: ${where}`);
  }
  log(`axe ${name}: ${r.violations.length} violation(s), ${bad.length} serious/critical`);
}

async function visit(page, name) {
  await shoot(page, name);
  await axe(page, name);
}

const audioTime = (page) => page.evaluate(() => document.querySelector('[data-testid=audio]').currentTime);
// The playing song since `since` (performance.now() in the page): its time and source, whether it
// is paused, how long it waited for data (from each 'waiting' of `url` to the next 'playing') and
// the player's reload counter.
const playbackSince = (page, since, url) => page.evaluate(({ since, url }) => {
  const a = document.querySelector('[data-testid=audio]');
  let stalled = 0;
  let from = null;
  for (const e of window.__media.filter((x) => x.src === url && x.t >= since)) {
    if (e.type === 'waiting' && from === null) from = e.t;
    if (e.type === 'playing' && from !== null) {
      stalled += e.t - from;
      from = null;
    }
  }
  return { t: a.currentTime, src: a.currentSrc, paused: a.paused, stalledMs: stalled, resumes: Number(document.querySelector('[data-testid=player-bar]').dataset.resumes) };
}, { since, url });

// Every answer to a cover request (/music/covers/...), recorded from the start: a picture shown
// on a later page may come from the browser's memory cache without a request of its own.
const coverAnswers = [];
function recordCovers(page) {
  page.on('response', (resp) => {
    if (!new URL(resp.url()).pathname.startsWith('/music/covers/')) return;
    const h = resp.headers();
    coverAnswers.push({ url: resp.url(), status: resp.status(), type: h['content-type'] ?? '', cache: h['cache-control'] ?? '' });
  });
}

// `cover` (a locator of a data-testid=cover element) shows the embedded picture: an <img> named by
// a SHA-256, loaded, no larger than the size it asked for (the node never upscales), answered 200
// as an immutable JPEG, and maroon in the middle (drawn into a canvas: same origin, so readable).
// Returns its SHA-256.
async function checkCover(page, cover, what) {
  await cover.waitFor({ timeout: 15_000 });
  const tag = await cover.evaluate((el) => el.tagName);
  check(tag === 'IMG', `${what}: the cover is an <img> (a ${tag}: the placeholder)`);
  const sha = (await cover.getAttribute('data-cover')) ?? '';
  check(/^[0-9a-f]{64}$/.test(sha), `${what}: data-cover is a SHA-256 (${JSON.stringify(sha)})`);
  // Lazy, but in view; a failed load would turn it into the placeholder (no longer an IMG).
  await eventually(`${what}: the cover loaded`, async () => {
    const st = await cover.evaluate((el) => ({ tag: el.tagName, complete: el.complete, w: el.naturalWidth }));
    if (st.tag !== 'IMG') throw new Error('the picture failed to load: the placeholder is shown');
    return st.complete && st.w > 0;
  }, 15_000);
  const shown = await cover.evaluate((el) => {
    // naturalWidth is divided by the srcset density of the candidate shown (a 300 px picture
    // chosen as "2x" reports 150): multiplied back, it is the picture's own pixels.
    const picked = el.srcset.split(',').map((c) => c.trim().split(/\s+/)).find(([u]) => new URL(u, document.baseURI).href === el.currentSrc);
    const density = picked && /^[\d.]+x$/.test(picked[1] ?? '') ? parseFloat(picked[1]) : 1;
    const canvas = document.createElement('canvas');
    canvas.width = el.naturalWidth;
    canvas.height = el.naturalHeight;
    const g = canvas.getContext('2d');
    g.drawImage(el, 0, 0);
    const [r, gr, b] = g.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
    return { src: el.currentSrc, w: Math.round(el.naturalWidth * density), h: Math.round(el.naturalHeight * density), rgb: [r, gr, b] };
  });
  const src = new URL(shown.src);
  check(src.pathname === `/music/covers/${sha}`, `${what}: the picture is /music/covers/${sha} (${shown.src})`);
  const size = Number(src.searchParams.get('size'));
  check([64, 128, 256, 512, 1024].includes(size), `${what}: asked for one of the node's sizes (${shown.src})`);
  check(shown.w <= size && shown.h <= size, `${what}: ${shown.w}x${shown.h} fits the ${size} asked for`);
  const answer = await eventually(`${what}: the answer to ${shown.src} seen`, () => coverAnswers.find((c) => c.url === shown.src), 5_000, 100);
  check(answer.status === 200, `${what}: ${shown.src} answered 200 (${answer.status})`);
  check(/^image\/jpeg\b/i.test(answer.type), `${what}: ${shown.src} is image/jpeg (${answer.type})`);
  check(/\bimmutable\b/i.test(answer.cache), `${what}: ${shown.src} is cached as immutable (Cache-Control: ${answer.cache})`);
  const off = shown.rgb.map((v, i) => Math.abs(v - MAROON[i]));
  check(off.every((d) => d <= COVER_TOLERANCE), `${what}: the centre of the cover is maroon (rgb ${shown.rgb.join(',')}, expected ${MAROON.join(',')} ± ${COVER_TOLERANCE})`);
  log(`${what}: cover ${sha.slice(0, 12)}… ${shown.w}x${shown.h} (size=${size}), rgb(${shown.rgb.join(',')}), Cache-Control: ${answer.cache}`);
  return sha;
}

// `cover` is the placeholder: no picture, the album's initials, named by the album's title.
async function checkPlaceholder(cover, title, what) {
  await cover.waitFor({ timeout: 15_000 });
  const el = await cover.evaluate((e) => ({ tag: e.tagName, role: e.getAttribute('role'), label: e.getAttribute('aria-label'), sha: e.getAttribute('data-cover') }));
  check(el.tag !== 'IMG' && el.role === 'img' && el.label === title && el.sha === null, `${what}: the placeholder cover (${JSON.stringify(el)})`);
}

// ---- the scenarios ----------------------------------------------------------------------------

async function main() {
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  log(`artifacts in ${artifacts}, temporary files in ${base}`);

  // Figure: the UI's JavaScript, gzip.
  let jsGzip = 0;
  const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  for (const f of walk(webRoot)) if (/\.m?js$/.test(f)) jsGzip += gzipSync(readFileSync(f), { level: 9 }).length;
  console.log(`FIGURE js_bundle_gzip_kib=${(jsGzip / 1024).toFixed(1)}`);

  const files = makeAudio(join(base, 'music'));
  const ownFiles = makeAudio(join(base, 'own'), OWN_SONGS);
  log(`made ${[...files, ...ownFiles].map((f) => `${f.file} (${(f.size / 1e6).toFixed(1)} MB)`).join(', ')}`);
  let hydra = null;
  if (!hydraBinary && oidcRequired) throw new Error('no Hydra binary (e2e/oidc/install-hydra.sh) and DISPOTIFY_REQUIRE_OIDC is set');
  if (hydraBinary) {
    hydra = await startHydra();
    log(`hydra: issuer ${hydra.issuer}`);
  } else {
    console.error('\n*** browser_test: SKIPPING the OIDC login: no Hydra binary (scripts/install-test-tools.sh builds it) ***\n');
  }
  const { nodes, front } = await startCluster(hydra);
  log(`cluster up: nodes ${nodes.map((n) => `${n.id}=:${n.http}`).join(' ')}, front ${front.url}`);

  const { browser } = await startBrowser();
  const context = browser.contexts()[0];
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  recordCovers(page);
  // Which node answered each stream response (the Dispotify-Node header), in order.
  const streams = [];
  page.on('response', (resp) => {
    if (!resp.url().includes('/music/stream/')) return;
    const h = resp.headers();
    streams.push({ at: Date.now(), url: resp.url(), status: resp.status(), node: h['dispotify-node'], range: resp.request().headers()['range'] });
  });

  // An anonymous visit: the login page, with where the person was kept for after signing in. Time
  // to first render (first contentful paint, and the page's heading shown) of what a new visitor
  // sees: this login page.
  const navStart = Date.now();
  await page.goto(`${front.url}/songs`);
  await page.getByTestId('login-page').locator('h1').waitFor();
  const shown = Date.now() - navStart;
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
  console.log(`FIGURE home_first_contentful_paint_ms=${fcp.toFixed(0)} home_heading_shown_ms=${shown} songs=0 (the login page)`);
  const anonUrl = new URL(page.url());
  check(anonUrl.pathname === '/login' && anonUrl.searchParams.get('next') === '/songs', `an anonymous visit lands on the login page (${page.url()})`);
  check((await pageStatus(page, '/music/songs')) === 401, 'anonymous: the API answers 401');
  check((await pageStatus(page, '/auth/me')) === 401, 'anonymous: /auth/me answers 401');
  await visit(page, 'login');
  // A wrong password: an error on the page, still on the login page.
  await signIn(page, 'admin', 'not-the-password');
  const wrong = page.getByTestId('login-error');
  await wrong.waitFor({ timeout: 15_000 });
  const wrongText = await wrong.innerText();
  check(/wrong name or password/i.test(wrongText) && (await wrong.getAttribute('role')) === 'alert', `a wrong password shows an error (${JSON.stringify(wrongText)})`);
  check(new URL(page.url()).pathname === '/login', 'still on the login page after a wrong password');
  await shoot(page, 'login-wrong-password');
  // The admin signs in and is back on the page asked for.
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.getByTestId('account-name').filter({ hasText: 'admin' }).waitFor({ timeout: 15_000 });
  await page.locator('main h1').first().waitFor();
  check(new URL(page.url()).pathname === '/songs', `after signing in, back on /songs (${page.url()})`);
  check((await pageStatus(page, '/auth/me')) === 200, 'signed in: /auth/me answers 200');
  const csrfKept = await csrfCookie(page);
  check(csrfKept.length > 10, `the CSRF token is in the cookie dispotify_csrf (${JSON.stringify(csrfKept)})`);
  log('login page: anonymous visit redirected, wrong password refused, admin signed in');
  await visit(page, 'home-empty');

  // Upload: drop both files on the page. The page fetches them from a small server of this test
  // (CSP set aside for this step only: the UI's connect-src is 'self'), builds a DataTransfer of
  // Files and dispatches the drag and drop events on the page.
  const fileServer = createHttpServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname.slice(1));
    const f = files.find((x) => x.file === name);
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'audio/mpeg', 'Access-Control-Allow-Origin': '*' });
    res.end(readFileSync(f.path));
  });
  await new Promise((r) => fileServer.listen(0, '127.0.0.1', r));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Page.setBypassCSP', { enabled: true });
  await page.reload();
  await page.locator('main h1').first().waitFor();
  await page.evaluate(async ({ origin, names }) => {
    const dt = new DataTransfer();
    for (const name of names) {
      const blob = await (await fetch(`${origin}/${encodeURIComponent(name)}`)).blob();
      dt.items.add(new File([blob], name, { type: 'audio/mpeg' }));
    }
    const opts = { bubbles: true, cancelable: true, dataTransfer: dt };
    document.body.dispatchEvent(new DragEvent('dragenter', opts));
    document.body.dispatchEvent(new DragEvent('dragover', opts));
    document.body.dispatchEvent(new DragEvent('drop', opts));
  }, { origin: `http://127.0.0.1:${fileServer.address().port}`, names: files.map((f) => f.file) });
  await page.locator('[data-testid=upload-item]').nth(SONGS.length - 1).waitFor();
  await shoot(page, 'uploading');
  await eventually('both uploads stored', async () => {
    const st = await page.locator('[data-testid=upload-item]').evaluateAll((els) => els.map((e) => e.dataset.status));
    if (st.includes('error')) throw new Error(`an upload failed: ${await page.locator('[data-testid=upload-panel]').innerText()}`);
    return st.length === SONGS.length && st.every((s) => s === 'done');
  }, 60_000);
  fileServer.close();
  // The new songs appear without a reload.
  for (const s of SONGS) await page.getByTestId('song-list').getByText(s.title, { exact: true }).first().waitFor();
  // From here on with the CSP again.
  await cdp.send('Page.setBypassCSP', { enabled: false });
  await page.reload();
  await page.getByTestId('song-list').getByText(SONGS[0].title, { exact: true }).first().waitFor();
  await visit(page, 'songs');

  // Search with a typo: "Moonlihgt" finds "Moonlight Serenade".
  const search = page.getByTestId('search-input');
  await search.click();
  await search.pressSequentially('moonlihgt', { delay: 40 });
  const hit = page.getByTestId('search-song').filter({ hasText: 'Moonlight Serenade' });
  await hit.first().waitFor({ timeout: 15_000 });
  await visit(page, 'search');

  // Play it: the time advances. Downloads are throttled (to 2x what the song consumes) until the
  // seek below, so that the browser cannot hold the whole song by then and the seek past what it
  // holds must be a Range request (on loopback it sometimes had all 7.7 MB within a second).
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 32_000, uploadThroughput: -1 });
  await hit.first().click();
  await page.getByTestId('now-title').filter({ hasText: 'Moonlight Serenade' }).waitFor();
  await eventually('playback started', async () => (await audioTime(page)) > 1.0, 20_000).catch(async (e) => {
    const st = await page.evaluate(() => {
      const a = document.querySelector('[data-testid=audio]');
      return { src: a.src, readyState: a.readyState, networkState: a.networkState, error: a.error?.message, paused: a.paused, t: a.currentTime };
    });
    throw new Error(`${e.message}; audio element: ${JSON.stringify(st)}; stream responses: ${JSON.stringify(streams)}`);
  });
  const playingUrl = await page.evaluate(() => document.querySelector('[data-testid=audio]').currentSrc);
  const anonStream = await fetch(playingUrl, { headers: { Range: 'bytes=0-99' } });
  check(anonStream.status === 401, `the stream needs the session: without the cookie it answers ${anonStream.status}, not 401`);
  const a = await audioTime(page);
  await sleep(2500);
  const b = await audioTime(page);
  check(b - a > 1.5, `playback time advances (${a.toFixed(2)} -> ${b.toFixed(2)})`);
  const shownPos = await page.getByTestId('position').innerText();
  log(`playing: ${a.toFixed(1)} s -> ${b.toFixed(1)} s, the bar shows ${shownPos}`);
  await visit(page, 'playing');

  // Seek to 4:00: the time jumps, a Range request reaches a node.
  const rangesBefore = await rangeAnswers(nodes);
  const streamsBefore = streams.length;
  await page.getByRole('slider', { name: /seek/i }).evaluate((el) => {
    const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    set.call(el, '240');
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  });
  await eventually('the position shows 4:0x', async () => /^4:0\d$/.test(await page.getByTestId('position').innerText()), 10_000, 100);
  await eventually('playback goes on after the seek', async () => (await audioTime(page)) > 241, 15_000);
  const rangesAfter = await eventually('a 206 counted by a node', async () => {
    const n = await rangeAnswers(nodes);
    return n > rangesBefore ? n : false;
  }, 10_000);
  const seekReq = streams.slice(streamsBefore).find((s) => s.status === 206 && /^bytes=[1-9]/.test(s.range ?? ''));
  check(seekReq, `the browser asked for a range after the seek (saw ${JSON.stringify(streams.slice(streamsBefore))})`);
  const loggedRanges = accessLog(front).filter((l) => l.includes('/music/stream/') && / 206 /.test(l) && /range="bytes=[1-9]/.test(l));
  check(loggedRanges.length > 0, 'nginx logged a 206 answer to a Range request');
  log(`seek: ${seekReq.range} answered 206 by node ${seekReq.node}; nodes' 206 count ${rangesBefore} -> ${rangesAfter}; nginx: ${loggedRanges.at(-1)}`);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

  // Album and artist pages (the song keeps playing while browsing), with the picture embedded in
  // Harbour Lights.mp3 as the album's cover and the placeholder for the album without a picture.
  await page.getByRole('link', { name: /albums/i }).first().click();
  const card = page.getByTestId('album-card').filter({ hasText: ALBUM });
  await card.first().waitFor({ timeout: 15_000 });
  const gridSha = await checkCover(page, card.first().getByTestId('cover'), 'albums page');
  await checkPlaceholder(page.getByTestId('album-card').filter({ hasText: BARE_ALBUM }).first().getByTestId('cover'), BARE_ALBUM, 'albums page, the album without a picture');
  await visit(page, 'albums');
  await card.first().click();
  await page.getByTestId('album-title').filter({ hasText: ALBUM }).waitFor();
  const albumSongs = SONGS.filter((s) => (s.album ?? ALBUM) === ALBUM);
  for (const s of albumSongs) await page.getByText(s.title, { exact: true }).first().waitFor();
  await page.getByRole('link', { name: ARTIST }).first().waitFor();
  // The album's cover comes first in the page (the player bar, outside main, has its own).
  const albumSha = await checkCover(page, page.locator('main').getByTestId('cover').first(), 'album page');
  check(albumSha === gridSha, `the album page shows the grid's cover (${albumSha} vs ${gridSha})`);

  // The player bar shows the playing song's own cover: play Harbour Lights for a moment, then
  // Moonlight Serenade again for the rest of the test (the node kill needs the long song).
  const covered = SONGS.find((s) => s.cover);
  await page.getByRole('button', { name: `Play: ${covered.title}`, exact: true }).click();
  await page.getByTestId('now-title').filter({ hasText: covered.title }).waitFor();
  const barSha = await checkCover(page, page.getByTestId('player-bar').getByTestId('cover'), 'player bar');
  if (barSha !== albumSha) log(`note: the song's cover ${barSha} is not the album's ${albumSha} (both maroon)`);
  // The operating system's media controls get the same picture at 256 and 512; the 512 one is
  // the 300x300 original, not upscaled.
  const artwork = await page.evaluate(async () => {
    const list = [...(navigator.mediaSession?.metadata?.artwork ?? [])].map((a) => ({ src: a.src, sizes: a.sizes, type: a.type }));
    const big = list.find((a) => a.sizes === '512x512');
    if (!big) return { list };
    const resp = await fetch(big.src);
    const bmp = await createImageBitmap(await resp.blob());
    return { list, status: resp.status, type: resp.headers.get('content-type'), w: bmp.width, h: bmp.height };
  });
  check(
    artwork.list.length === 2 &&
      artwork.list.every((a) => new URL(a.src).pathname === `/music/covers/${barSha}` && new URL(a.src).searchParams.get('size') === a.sizes.split('x')[0]) &&
      artwork.list.map((a) => a.sizes).join(' ') === '256x256 512x512',
    `Media Session artwork is the song's cover at 256 and 512 (${JSON.stringify(artwork.list)})`,
  );
  check(artwork.status === 200 && /^image\/jpeg\b/i.test(artwork.type ?? '') && artwork.w > 0 && artwork.w <= 300 && artwork.h <= 300,
    `the 512 artwork is the 300x300 picture, not upscaled (${JSON.stringify(artwork)})`);
  log(`player bar and Media Session: cover ${barSha.slice(0, 12)}…; size=512 answers ${artwork.w}x${artwork.h}`);
  await visit(page, 'album');
  await page.getByRole('button', { name: `Play: ${SONGS[0].title}`, exact: true }).click();
  await page.getByTestId('now-title').filter({ hasText: SONGS[0].title }).waitFor();
  await eventually('Moonlight Serenade plays again', async () => (await audioTime(page)) > 1.0, 20_000);

  await page.getByRole('link', { name: ARTIST }).first().click();
  await page.getByTestId('artist-name').filter({ hasText: ARTIST }).waitFor();
  await page.getByText(ALBUM).first().waitFor();
  const artistCards = page.getByTestId('album-card');
  const artistSha = await checkCover(page, artistCards.filter({ hasText: ALBUM }).first().getByTestId('cover'), 'artist page');
  check(artistSha === albumSha, `the artist page shows the album's cover (${artistSha} vs ${albumSha})`);
  await checkPlaceholder(artistCards.filter({ hasText: BARE_ALBUM }).first().getByTestId('cover'), BARE_ALBUM, 'artist page, the album without a picture');
  await visit(page, 'artist');
  await page.getByRole('link', { name: /artists/i }).first().click();
  await page.getByTestId('artist-list').getByText(ARTIST).first().waitFor();
  await visit(page, 'artists');

  // Gapless: Harbour Lights, then Paper Lanterns added to the queue while it plays (never played
  // before, so in no cache of the browser). In the page, the time from the first song's 'ended' to
  // the second's 'playing' (media events do not bubble: captured on the document, from whichever
  // <audio> element plays).
  await page.evaluate(() => {
    window.__media = [];
    for (const type of ['ended', 'playing', 'waiting']) {
      document.addEventListener(type, (e) => {
        const el = e.target;
        if (el instanceof HTMLMediaElement) window.__media.push({ type, src: el.currentSrc, t: performance.now(), ct: el.currentTime });
      }, true);
    }
  });
  const [short, next] = [SONGS.find((s) => s.title === 'Harbour Lights'), SONGS.find((s) => s.title === 'Paper Lanterns')];
  await page.getByRole('link', { name: /albums/i }).first().click();
  await page.getByTestId('album-card').filter({ hasText: ALBUM }).first().click();
  await page.getByRole('button', { name: `Play: ${short.title}`, exact: true }).click();
  await page.getByTestId('now-title').filter({ hasText: short.title }).waitFor();
  const shortUrl = await eventually(`${short.title} plays`, () => page.evaluate(() => {
    const a = document.querySelector('[data-testid=audio]');
    return a.currentTime > 0.2 && !a.paused ? a.currentSrc : false;
  }), 20_000, 100);
  await page.getByRole('link', { name: /albums/i }).first().click();
  await page.getByTestId('album-card').filter({ hasText: BARE_ALBUM }).first().click();
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: GAP_LATENCY_MS, downloadThroughput: -1, uploadThroughput: -1 });
  await page.getByRole('button', { name: `Add to queue: ${next.title}`, exact: true }).click();
  await page.getByTestId('now-title').filter({ hasText: next.title }).waitFor({ timeout: (short.seconds + 20) * 1000 });
  const gap = await eventually(`${next.title} plays after ${short.title}`, () => page.evaluate((first) => {
    const ended = window.__media.find((e) => e.type === 'ended' && e.src === first);
    const playing = ended && window.__media.find((e) => e.type === 'playing' && e.src !== first && e.t >= ended.t);
    return playing ? { ms: playing.t - ended.t, endedAt: ended.ct, startedAt: playing.ct, events: window.__media } : false;
  }, shortUrl), 20_000, 100);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  log(`gap between songs: ${gap.ms.toFixed(1)} ms, responses delayed ${GAP_LATENCY_MS} ms (${short.title} ended at ${gap.endedAt.toFixed(3)} s, ${next.title} started at ${gap.startedAt.toFixed(3)} s)`);
  console.log(`FIGURE gap_between_songs_ms=${gap.ms.toFixed(1)}`);
  check(gap.ms < MAX_GAP_MS, `the next song starts within ${MAX_GAP_MS} ms of the end of the previous one (${gap.ms.toFixed(1)} ms; events ${JSON.stringify(gap.events)})`);
  check(gap.startedAt < 0.5, `${next.title} starts from its beginning (${gap.startedAt} s)`);

  // Cluster page: 3 members, one leader, all healthy.
  await page.getByRole('link', { name: /cluster/i }).first().click();
  const members = page.getByTestId('cluster-member');
  await eventually('3 healthy members and a leader', async () =>
    (await members.count()) === 3 &&
    (await page.locator('[data-testid=cluster-member][data-healthy=true]').count()) === 3 &&
    (await page.locator('[data-testid=cluster-member][data-role=leader]').count()) === 1 &&
    /\d/.test(await page.getByTestId('cluster-leader').innerText()), 20_000);
  await visit(page, 'cluster');

  // Broken streams, while the browser holds only part of the song: Slow Tide, never played before,
  // with the download throttled and the HTTP cache off. First a network outage that outlasts the
  // browser's own retries, then kill -9 of the node serving it. Each time playback must go on from
  // where it was, with no error shown, with the rest asked for with a Range request on the same URL
  // and answered by a live node.
  const slow = SONGS.find((s) => s.title === 'Slow Tide');
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: THROTTLE_BYTES_S, uploadThroughput: -1 });
  await page.getByRole('link', { name: /albums/i }).first().click();
  await page.getByTestId('album-card').filter({ hasText: BARE_ALBUM }).first().click();
  await page.getByRole('button', { name: `Play: ${slow.title}`, exact: true }).click();
  await page.getByTestId('now-title').filter({ hasText: slow.title }).waitFor();
  // defaultPlaybackRate too: a reload of the element (the player's resume) resets playbackRate.
  await page.evaluate((rate) => {
    const a = document.querySelector('[data-testid=audio]');
    a.defaultPlaybackRate = rate;
    a.playbackRate = rate;
  }, SLOW_RATE);
  await eventually(`${slow.title} plays through the throttled network`, async () => (await audioTime(page)) > 20, 40_000).catch(async (e) => {
    const st = await page.evaluate(() => {
      const a = document.querySelector('[data-testid=audio]');
      return { src: a.src, readyState: a.readyState, networkState: a.networkState, error: a.error?.message, paused: a.paused, t: a.currentTime };
    });
    throw new Error(`${e.message}; audio element: ${JSON.stringify(st)}; stream responses: ${JSON.stringify(streams)}`);
  });
  await page.getByRole('link', { name: /cluster/i }).first().click();
  await page.getByTestId('cluster-members').waitFor();
  const slowUrl = await page.evaluate(() => document.querySelector('[data-testid=audio]').currentSrc);
  // First the player's own path (resume.ts: reload the same URL, seek back), which is for what
  // outlasts the browser's own retries: the front refusing every request for the song for a while
  // (DevTools' Fetch interception fails them) when the browser needs bytes it does not have, here
  // after a seek past what it holds. The refusal lasts until the player has stalled STALL_MS and
  // reloaded at least once.
  const resumesBefore = Number(await page.getByTestId('player-bar').getAttribute('data-resumes'));
  let refusing = true;
  let refused = 0;
  cdp.on('Fetch.requestPaused', (e) => {
    if (refusing) {
      refused++;
      cdp.send('Fetch.failRequest', { requestId: e.requestId, errorReason: 'ConnectionRefused' }).catch(() => {});
    } else {
      cdp.send('Fetch.continueRequest', { requestId: e.requestId }).catch(() => {});
    }
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*/music/stream/*', requestStage: 'Request' }] });
  const streamsAtCut = streams.length;
  const atCut = await page.evaluate(() => {
    const a = document.querySelector('[data-testid=audio]');
    const ends = Array.from({ length: a.buffered.length }, (_, i) => a.buffered.end(i));
    return { t: a.currentTime, buffered: Math.max(0, ...ends), now: performance.now() };
  });
  const target = Math.round(atCut.buffered + 60);
  check(target < slow.seconds - 60, `room to seek past what is buffered (${atCut.buffered.toFixed(1)} s of ${slow.seconds})`);
  await page.getByRole('slider', { name: /seek/i }).evaluate((el, to) => {
    const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    set.call(el, String(to));
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, target);
  let lowestCut = Infinity;
  let failedCut = false;
  // What the listener sees: the player bar's position (the element itself is at 0 for a moment
  // between a reload and its seek back).
  const seekBar = page.getByRole('slider', { name: /seek/i });
  const watch = async () => {
    lowestCut = Math.min(lowestCut, Number(await seekBar.inputValue()));
    failedCut ||= (await page.getByTestId('player-bar').locator('[role=alert]').count()) > 0;
  };
  await eventually('the player reloads the stream while the front refuses it', async () => {
    await watch();
    return Number(await page.getByTestId('player-bar').getAttribute('data-resumes')) > resumesBefore;
  }, 60_000, 200).catch(async (e) => {
    const st = await page.evaluate((since) => {
      const a = document.querySelector('[data-testid=audio]');
      const ends = Array.from({ length: a.buffered.length }, (_, i) => [a.buffered.start(i), a.buffered.end(i)]);
      return { t: a.currentTime, paused: a.paused, readyState: a.readyState, networkState: a.networkState, error: a.error?.message, buffered: ends, events: window.__media.filter((x) => x.t >= since) };
    }, atCut.now);
    throw new Error(`${e.message}; seek to ${target} s, ${refused} request(s) refused; audio element: ${JSON.stringify(st)}; stream responses since: ${JSON.stringify(streams.slice(streamsAtCut))}`);
  });
  refusing = false;
  const refusedWhile = refused;
  const goalCut = target + 10;
  await eventually(`playback goes on past ${goalCut} s once the front answers again`, async () => {
    await watch();
    return (await audioTime(page)) > goalCut;
  }, 60_000, 200);
  await cdp.send('Fetch.disable');
  const afterCut = await playbackSince(page, atCut.now, slowUrl);
  const cutSince = streams.slice(streamsAtCut);
  const cutRanges = cutSince.filter((r) => r.url === slowUrl && r.status === 206 && /^bytes=[1-9]/.test(r.range ?? '') && r.node);
  log(`refused stream: seek to ${target} s (buffered to ${atCut.buffered.toFixed(1)} s), ${refusedWhile} request(s) refused, the player reloaded ${afterCut.resumes - resumesBefore} time(s), waiting ${afterCut.stalledMs.toFixed(0)} ms in all, now at ${afterCut.t.toFixed(1)} s (lowest ${lowestCut.toFixed(1)} s); stream responses since: ${JSON.stringify(cutSince)}`);
  console.log(`FIGURE refused_player_reloads=${afterCut.resumes - resumesBefore} refused_waiting_ms=${afterCut.stalledMs.toFixed(0)}`);
  check(!failedCut, 'no error shown by the player while the stream was refused');
  check(afterCut.src === slowUrl && !afterCut.paused, `the same song plays on (${afterCut.src}, paused ${afterCut.paused})`);
  check(lowestCut >= target - 2, `playback resumed where it was (the bar's lowest position ${lowestCut.toFixed(1)} s after the seek to ${target} s)`);
  check(cutRanges.length > 0, `the reload asked for the same URL from a non-zero offset, answered 206 by a live node (saw ${JSON.stringify(cutSince)})`);
  // Then kill -9 the node serving the song.
  const serving = streams.filter((r) => r.url === slowUrl).at(-1);
  check(serving?.node, `stream responses carry Dispotify-Node (${JSON.stringify(serving)})`);
  const victim = nodes.find((n) => String(n.id) === serving.node);
  check(victim, `the serving node is one of ours (${serving.node})`);
  // Once the bytes already on their way are played, the response has ended early. Chrome's media
  // loader itself asks again from where its bytes end (a Range request on the same URL), so this
  // costs no reload of the element: the player's counter is reported, not required.
  const streamsAtKill = streams.length;
  const atKill = await page.evaluate(() => {
    const a = document.querySelector('[data-testid=audio]');
    const ends = Array.from({ length: a.buffered.length }, (_, i) => a.buffered.end(i));
    return { t: a.currentTime, buffered: Math.max(0, ...ends), now: performance.now(), resumes: Number(document.querySelector('[data-testid=player-bar]').dataset.resumes) };
  });
  killGroup(victim.proc);
  victim.dead = true;
  log(`killed node ${victim.id} (serving ${slow.title}) at ${atKill.t.toFixed(1)} s, with ${atKill.buffered.toFixed(1)} s of it in the browser`);
  check(atKill.buffered < slow.seconds / 2, `only part of the song is buffered when the node dies (${atKill.buffered.toFixed(1)} of ${slow.seconds} s)`);
  // Until a live node has answered a Range request on the same URL and playback is 10 s (of the
  // song) past where it was then, watching that it never goes back to the start and shows no error.
  const resumedBy = () => streams.slice(streamsAtKill).filter((r) => r.url === slowUrl && r.status === 206 && /^bytes=[1-9]/.test(r.range ?? '') && r.node && r.node !== String(victim.id));
  let lowest = Infinity;
  let failed = false;
  let goal = Infinity;
  await eventually('playback goes on with the bytes of a live node', async () => {
    const t = await audioTime(page);
    lowest = Math.min(lowest, t);
    failed ||= (await page.getByTestId('player-bar').locator('[role=alert]').count()) > 0;
    if (goal === Infinity && resumedBy().length > 0) goal = t + 10;
    return t > goal;
  }, 150_000, 200);
  const after = await playbackSince(page, atKill.now, slowUrl);
  const since = streams.slice(streamsAtKill);
  const resumed = resumedBy();
  log(`after the kill: ${atKill.t.toFixed(1)} -> ${after.t.toFixed(1)} s (lowest ${lowest.toFixed(1)} s, buffered at the kill ${atKill.buffered.toFixed(1)} s), rebuffering ${after.stalledMs.toFixed(0)} ms, player reloads ${atKill.resumes} -> ${after.resumes}; stream responses since: ${JSON.stringify(since)}`);
  console.log(`FIGURE resume_position_at_kill_s=${atKill.t.toFixed(1)} resume_buffered_at_kill_s=${atKill.buffered.toFixed(1)} resume_rebuffer_ms=${after.stalledMs.toFixed(0)} resume_player_reloads=${after.resumes - atKill.resumes}`);
  check(!failed, 'no error shown by the player after the node died');
  check(after.src === slowUrl, `still the same song and URL (${after.src})`);
  check(lowest >= atKill.t - 2, `playback did not restart (lowest ${lowest.toFixed(1)} s, killed at ${atKill.t.toFixed(1)} s)`);
  check(!after.paused, 'still playing');
  check(resumed.length > 0, `a Range request from a non-zero offset on the same URL was answered 206 by a live node after the kill (saw ${JSON.stringify(since)})`);
  check(since.every((r) => r.node !== String(victim.id)), 'no stream answer came from the dead node');
  log(`resumed with ${resumed.map((r) => `${r.range} from node ${r.node}`).join(', ')}`);

  // nginx logs a request when it ends: these streams end when the browser drops them (the seek) or
  // has the whole song.
  for (const r of [resumed[0], cutRanges[0]]) {
    const line = await eventually(`nginx logged ${r.range} answered by node ${r.node}`, () => accessLog(front).find((l) =>
      l.includes(new URL(slowUrl).pathname) && / 206 /.test(l) && l.includes(`range="${r.range}"`) && l.includes(`node=${r.node} `)), 60_000);
    log(`nginx: ${line}`);
  }
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  await page.evaluate(() => {
    const a = document.querySelector('[data-testid=audio]');
    a.defaultPlaybackRate = 1;
    a.playbackRate = 1;
  });
  // The same through the front, several times over (nginx skips the dead node, retrying on the next
  // one when it picks it).
  const url = slowUrl;
  for (let i = 0; i < 4; i++) {
    const r = await page.evaluate(async (u) => {
      const resp = await fetch(u, { headers: { Range: 'bytes=1000000-1000999' }, cache: 'no-store' });
      return { status: resp.status, node: resp.headers.get('dispotify-node'), length: (await resp.arrayBuffer()).byteLength };
    }, url);
    check(r.status === 206 && r.length === 1000 && r.node && r.node !== String(victim.id),
      `a Range request on the song's URL is answered by a live node (${JSON.stringify(r)})`);
  }
  log(`a Range request on the same URL after the kill: 206 from a live node (4 of 4)`);
  await shoot(page, 'playing-after-kill');

  // The killed node turns unhealthy on the cluster page.
  await eventually(`node ${victim.id} shown unhealthy`, async () =>
    (await page.locator('[data-testid=cluster-member][data-healthy=false]').count()) === 1 &&
    (await page.locator('[data-testid=cluster-member][data-healthy=true]').count()) === 2, 30_000);
  await visit(page, 'cluster-node-down');

  // Phone layout: 390x844, nothing wider than the screen, the player bar in view.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${front.url}/songs`);
  await page.getByText(SONGS[0].title, { exact: true }).first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal scrolling on a phone (${overflow}px too wide)`);
  const bar = await page.getByTestId('player-bar').boundingBox();
  check(bar && bar.y + bar.height <= 844 + 1 && bar.x >= 0 && bar.width <= 391, `the player bar fits the phone screen (${JSON.stringify(bar)})`);
  await visit(page, 'phone-songs');
  await page.goto(`${front.url}/cluster`);
  await page.getByTestId('cluster-members').waitFor();
  await visit(page, 'phone-cluster');

  await rolesAndSignOut(browser, front, files, ownFiles[0]);
  if (hydra) await oidcLogin(browser, front, hydra, ownFiles[1]);
  await noOidcButtonWithoutOidc(browser);

  check(consoleErrors.length === 0, `no uncaught page errors: ${consoleErrors.join('; ')}`);
  if (axeProblems.length) throw new Error(`axe-core: serious or critical violations:\n  ${axeProblems.join('\n  ')}`);
  await browser.close().catch(() => {});
}

// The CSRF token the page reads: the cookie dispotify_csrf ("" when there is none).
const csrfCookie = (page) => page.evaluate(() => {
  const c = document.cookie.split(';').map((x) => x.trim()).find((x) => x.startsWith('dispotify_csrf='));
  return c ? c.slice('dispotify_csrf='.length) : '';
});

// A signed-in uploader (`who`) uploads `song` through the UI and deletes it through the UI, each
// request with the cookie's CSRF token as X-CSRF-Token; the same DELETE without the header answers
// 403 csrf and deletes nothing.
async function uploadAndDeleteOwn(page, front, song, who) {
  const token = await csrfCookie(page);
  check(token.length > 10, `${who}: the CSRF token is in the cookie dispotify_csrf`);
  const changes = [];
  const onRequest = (r) => {
    if (r.method() !== 'GET' && r.method() !== 'HEAD') changes.push({ method: r.method(), path: new URL(r.url()).pathname, csrf: r.headers()['x-csrf-token'] });
  };
  page.on('request', onRequest);
  await page.getByTestId('upload-input').setInputFiles({ name: song.file, mimeType: 'audio/mpeg', buffer: readFileSync(song.path) });
  await eventually(`${who}: the upload of ${song.file} stored`, async () => {
    const st = await page.locator('[data-testid=upload-item]').evaluateAll((els) => els.map((e) => e.dataset.status));
    if (st.includes('error')) throw new Error(`the upload failed: ${await page.locator('[data-testid=upload-panel]').innerText()}`);
    return st.length > 0 && st.every((x) => x === 'done');
  }, 30_000);
  const fileId = changes.find((c) => c.method === 'POST' && c.path === '/music/upload');
  check(fileId?.csrf === token, `${who}: the upload sent X-CSRF-Token from the cookie (${JSON.stringify(fileId)})`);
  const stored = await adminApi(front.url, 'GET', '/music/songs?limit=100');
  const songRow = (await stored.json()).items.find((x) => x.title === song.title);
  check(songRow, `${who}: ${song.title} is in the catalog`);
  const songPath = `/music/songs/${encodeURIComponent(songRow.file_id)}`;
  // Without the header the session's change is refused, and nothing is deleted.
  const bare = await page.evaluate(async (p) => {
    const r = await fetch(p, { method: 'DELETE' });
    return { status: r.status, code: (await r.json().catch(() => ({}))).error?.code };
  }, songPath);
  check(bare.status === 403 && bare.code === 'csrf', `${who}: a DELETE without X-CSRF-Token answers 403 csrf (${JSON.stringify(bare)})`);
  check((await adminApi(front.url, 'GET', songPath)).status === 200, `${who}: the song is still there after the refused DELETE`);
  // Through the UI: play it, open its details, delete.
  await page.goto(`${front.url}/songs`);
  await page.getByRole('button', { name: `Play: ${song.title}`, exact: true }).first().click();
  await page.getByTestId('now-title').filter({ hasText: song.title }).waitFor();
  await page.getByTestId('now-title').click();
  await page.getByTestId('song-details').waitFor({ timeout: 15_000 });
  await page.getByTestId('delete-song').click();
  const answer = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().includes('/music/songs/'));
  await page.getByTestId('delete-confirm').click();
  const del = await answer;
  check(del.status() === 204, `${who}: deleting its own song through the UI answers 204 (${del.status()})`);
  const sent = changes.filter((c) => c.method === 'DELETE').at(-1);
  check(sent?.csrf === token, `${who}: the UI's DELETE sent X-CSRF-Token from the cookie (${JSON.stringify(sent)})`);
  check((await adminApi(front.url, 'GET', songPath)).status === 404, `${who}: the song is gone`);
  page.off('request', onRequest);
  log(`${who}: uploaded and deleted ${song.title} through the UI (X-CSRF-Token from the cookie); without the header: 403 csrf`);
}

// The OIDC login through Hydra, in a fresh context: the button, the round trip, signed in on the
// page it started from, and changes with the cookie's CSRF token.
async function oidcLogin(browser, front, hydra, song) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(`${front.url}/albums`);
  const button = page.getByTestId('login-oidc');
  await button.waitFor({ timeout: 15_000 });
  const text = (await button.innerText()).trim();
  const host = new URL(hydra.issuer).host;
  check(text === `Sign in with ${host}`, `the login page offers "Sign in with ${host}" (${JSON.stringify(text)})`);
  check((await button.getAttribute('href')) === '/auth/oidc/login', `the button leads to /auth/oidc/login (${await button.getAttribute('href')})`);
  await visit(page, 'login-oidc');
  await button.click();
  await page.getByTestId('account-name').filter({ hasText: `oidc-${OIDC_SUBJECT}` }).waitFor({ timeout: 30_000 }).catch(async (e) => {
    const body = await page.locator('body').innerText().catch(() => '?');
    throw new Error(`${e.message}; the browser is at ${page.url()}: ${body.slice(0, 500)}; Hydra's steps: ${hydra.seen.join(', ')}`);
  });
  check(new URL(page.url()).pathname === '/albums', `after the OIDC login, back on /albums (${page.url()})`);
  check(hydra.seen.includes('/login') && hydra.seen.includes('/consent'), `Hydra's login and consent steps ran (${hydra.seen.join(', ')})`);
  const me = await page.evaluate(async () => (await fetch('/auth/me', { cache: 'no-store' })).json());
  check(me.name === `oidc-${OIDC_SUBJECT}` && me.via === 'session' && me.roles.includes('uploader'), `signed in with a session as oidc-${OIDC_SUBJECT}, an uploader (${JSON.stringify(me)})`);
  await page.getByRole('button', { name: /^upload$/i }).waitFor();
  await visit(page, 'signed-in-oidc');
  await uploadAndDeleteOwn(page, front, song, `oidc-${OIDC_SUBJECT}`);
  log(`OIDC: signed in through Hydra as oidc-${OIDC_SUBJECT} (steps ${hydra.seen.join(', ')})`);
  await ctx.close();
}

// A lone node with security on and no OIDC: the login page has no "Sign in with" button.
async function noOidcButtonWithoutOidc(browser) {
  const n = { peer: await freePort(), http: await freePort(), metrics: await freePort() };
  const tls = makeCertificates('browser-test-plain', [1]);
  const proc = start('plain-node', nodeBinary, [
    '--node-id', '1', '--cluster-id', 'browser-test-plain', '--data-dir', join(base, 'plain-node'),
    '--listen', `127.0.0.1:${n.peer}`, '--http-listen', `127.0.0.1:${n.http}`, '--metrics-listen', `127.0.0.1:${n.metrics}`,
    '--web-root', webRoot, '--auth', 'true', '--secure-cookies', 'false', ...tls[1],
  ], join(artifacts, 'node-plain.log'));
  const origin = `http://127.0.0.1:${n.http}`;
  await eventually('the lone node ready', async () => (await fetch(`${origin}/readyz`)).ok, 60_000);
  const config = await getJson(`${origin}/auth/config`);
  check(config.password === true && config.oidc?.enabled === false && !('login_url' in config.oidc), `GET /auth/config without OIDC (${JSON.stringify(config)})`);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const asked = page.waitForResponse((r) => new URL(r.url()).pathname === '/auth/config');
  await page.goto(`${origin}/songs`);
  await page.getByTestId('login-page').waitFor({ timeout: 15_000 });
  check((await asked).status() === 200, 'the login page asked GET /auth/config');
  await page.getByTestId('login-submit').waitFor();
  check((await page.getByTestId('login-oidc').count()) === 0, 'without OIDC, the login page has no "Sign in with" button');
  await shoot(page, 'login-without-oidc');
  await ctx.close();
  killGroup(proc);
  log('without OIDC: no "Sign in with" button');
}

// Roles, in fresh browser contexts (their own cookies): a listener and an uploader made by the
// admin through the API; then sign-out.
async function rolesAndSignOut(browser, front, files, ownSong) {
  const pw = `pw-${randomBytes(9).toString('hex')}`;
  for (const [name, roles] of [['lena', ['listener']], ['ulla', ['uploader']]]) {
    const r = await adminApi(front.url, 'POST', '/admin/users', { name, password: pw, roles });
    check(r.status === 201, `POST /admin/users ${name}: ${r.status} ${await r.text()}`);
  }
  const played = SONGS.find((s) => s.title === 'Harbour Lights');
  const openDetails = async (page) => {
    await page.getByRole('button', { name: `Play: ${played.title}`, exact: true }).click();
    await page.getByTestId('now-title').filter({ hasText: played.title }).waitFor();
    await page.getByTestId('now-title').click();
    await page.getByTestId('song-details').waitFor({ timeout: 15_000 });
  };

  // The listener: no upload control, no delete control; browsing and playing work.
  const lctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const lena = await lctx.newPage();
  await lena.goto(`${front.url}/albums`);
  await signIn(lena, 'lena', pw);
  await lena.getByTestId('account-name').filter({ hasText: 'lena' }).waitFor({ timeout: 15_000 });
  await lena.getByTestId('album-card').filter({ hasText: ALBUM }).first().click();
  await openDetails(lena);
  await eventually('the listener plays a song (the stream with its session cookie)', () => lena.evaluate(() => document.querySelector('[data-testid=audio]').currentTime > 0.5), 20_000);
  check((await lena.getByRole('button', { name: /^upload$/i }).count()) === 0 && (await lena.getByTestId('upload-input').count()) === 0, 'a listener sees no upload control');
  check((await lena.getByTestId('delete-song').count()) === 0, 'a listener sees no delete control');
  await visit(lena, 'listener');
  log('listener: plays, no upload or delete control');

  // The uploader: delete the admin's song → refused (403), and the page says so.
  const uctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ulla = await uctx.newPage();
  await ulla.goto(`${front.url}/albums`);
  await signIn(ulla, 'ulla', pw);
  await ulla.getByTestId('account-name').filter({ hasText: 'ulla' }).waitFor({ timeout: 15_000 });
  await ulla.getByRole('button', { name: /^upload$/i }).waitFor();
  await ulla.getByTestId('album-card').filter({ hasText: ALBUM }).first().click();
  await openDetails(ulla);
  await ulla.getByTestId('delete-song').click();
  const deleteAnswer = ulla.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().includes('/music/songs/'));
  await ulla.getByTestId('delete-confirm').click();
  const del = await deleteAnswer;
  check(del.status() === 403, `an uploader's delete of the admin's song answers 403 (${del.status()})`);
  const delErr = ulla.getByTestId('delete-error');
  await delErr.waitFor({ timeout: 10_000 });
  const delText = await delErr.innerText();
  check(/only the songs you uploaded/i.test(delText) && (await delErr.getAttribute('role')) === 'alert', `the refusal is shown (${JSON.stringify(delText)})`);
  const still = await adminApi(front.url, 'GET', new URL(del.url()).pathname);
  check(still.status === 200, `the song is still there (${still.status})`);
  await shoot(ulla, 'uploader-delete-refused');
  // Its own song: uploaded and deleted through the UI, with the cookie's CSRF token.
  await uploadAndDeleteOwn(ulla, front, ownSong, 'ulla');

  // Demoted to listener while signed in: the page still shows the upload control (roles as at
  // sign-in), the node refuses the upload (403), the upload panel says so; after a reload the
  // control is gone.
  const demote = await adminApi(front.url, 'PUT', '/admin/users/ulla', { roles: ['listener'] });
  check(demote.ok, `PUT /admin/users/ulla: ${demote.status}`);
  await eventually('the demotion applied', async () => (await ulla.evaluate(async () => (await (await fetch('/auth/me', { cache: 'no-store' })).json()).roles)).join() === 'listener', 10_000);
  const small = readFileSync(files.find((f) => f.title === 'Paper Lanterns').path).subarray(0, 4096);
  await ulla.getByTestId('upload-input').setInputFiles({ name: 'Refused Song.mp3', mimeType: 'audio/mpeg', buffer: small });
  const refused = ulla.locator('[data-testid=upload-item][data-status=error]');
  await refused.waitFor({ timeout: 15_000 });
  const refusedText = await refused.locator('[role=alert]').innerText();
  check(/refused/i.test(refusedText), `the refused upload says so (${JSON.stringify(refusedText)})`);
  await shoot(ulla, 'upload-refused');
  await ulla.reload();
  await ulla.getByTestId('account-name').filter({ hasText: 'ulla' }).waitFor({ timeout: 15_000 });
  check((await ulla.getByRole('button', { name: /^upload$/i }).count()) === 0, 'after a reload, the demoted user sees no upload control');
  log(`uploader: delete refused (${JSON.stringify(delText)}); demoted: upload refused (${JSON.stringify(refusedText)}), control gone after reload`);
  await uctx.close();

  // Sign-out: back on the login page, and the API answers 401 again.
  await lena.getByTestId('sign-out').click();
  await lena.getByTestId('login-page').waitFor({ timeout: 15_000 });
  check(new URL(lena.url()).pathname === '/login', `sign-out returns to the login page (${lena.url()})`);
  check(await lena.evaluate(() => document.querySelector('[data-testid=audio]') === null), 'no player after sign-out');
  check((await pageStatus(lena, '/auth/me')) === 401, 'after sign-out /auth/me answers 401');
  check((await pageStatus(lena, '/music/songs')) === 401, 'after sign-out the API answers 401');
  await shoot(lena, 'signed-out');
  log('sign-out: login page, the API answers 401');
  await lctx.close();
}

// --measure URL: only the home page's time to first render at URL (a node already running, e.g.
// one loaded with 100,000 songs by e2e/web/first-render.sh): first contentful paint and the first
// song row shown, best of 3 fresh page loads.
async function measure(url) {
  mkdirSync(artifacts, { recursive: true });
  const { browser } = await startBrowser();
  const context = browser.contexts()[0];
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
    const start = Date.now();
    await page.goto(url);
    await page.getByTestId('song-row').first().waitFor({ timeout: 60_000 });
    const rows = Date.now() - start;
    const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
    runs.push({ fcp, rows });
    if (i === 0) await shoot(page, 'home-loaded');
    await page.close();
  }
  const best = (k) => Math.min(...runs.map((r) => r[k]));
  const songs = await (await fetch(new URL('/cluster/status', url))).json().then((j) => j.songs).catch(() => '?');
  console.log(`FIGURE home_first_contentful_paint_ms=${best('fcp').toFixed(0)} home_first_song_row_ms=${best('rows')} songs=${songs} (best of 3: ${JSON.stringify(runs)})`);
  await browser.close().catch(() => {});
}

try {
  const measureUrl = arg('measure');
  if (measureUrl) {
    await measure(measureUrl);
    cleanup();
    process.exit(0);
  }
  await main();
  console.log(`screenshots:\n  ${screenshots.join('\n  ')}`);
  console.log('browser_test: PASS');
  cleanup();
  process.exit(0);
} catch (e) {
  console.error(`browser_test: FAIL: ${e.stack ?? e}`);
  console.log(`screenshots so far:\n  ${screenshots.join('\n  ')}`);
  console.log(`node and nginx logs: ${artifacts}`);
  cleanup();
  process.exit(1);
}
