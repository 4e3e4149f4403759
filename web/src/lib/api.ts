// The one API client: every request the UI makes goes through here. Same-origin only (paths, never
// absolute URLs), cookies sent with 'same-origin'. With security on (docs/security.md) the session
// is the HttpOnly cookie; a state-changing request also sends the CSRF token (read from the cookie
// dispotify_csrf: lib/auth.ts says why); a 401 anywhere goes to the login page, a 403 csrf too
// (sign in again). The types follow docs/openapi.yaml.
import { announceSignOut, csrfToken, forgetCsrfToken, loginPath, setAuth, setCsrfCookie, type AuthConfig } from './auth';

export interface Replica {
  node_id: number;
  state: 'pending' | 'healthy' | 'corrupt' | 'missing';
}

export interface Song {
  file_id: string;
  title: string;
  artist: string;
  album: string;
  file_name: string;
  content_type: string;
  track: number;
  year: number;
  duration_ms: number;
  size_bytes: number;
  sha256: string;
  created_at_ms: number;
  stream_url?: string;
  replicas?: Replica[];
  // Added with the album/artist routes; absent on older nodes.
  album_artist?: string;
  disc?: number;
  genre?: string;
  compilation?: boolean;
  album_id?: string;
  // The SHA-256 of the embedded picture (GET /music/covers/{sha256}); "" or absent when none.
  cover?: string;
}

export interface Page<T> {
  items: T[];
  next_after: string;
}

export interface SearchPage {
  total: number;
  items: Song[];
  next_cursor: string;
}

export interface ArtistSummary {
  name: string;
  album_count: number;
  song_count: number;
}

export interface AlbumSummary {
  album_id: string;
  title: string;
  album_artist: string;
  year: number;
  song_count: number;
  duration_ms: number;
  created_at_ms: number;
  // The album's picture, named like Song.cover; "" or absent when none.
  cover?: string;
}

export interface AlbumDetail extends AlbumSummary {
  genres: string[];
  songs: Song[];
}

export type AlbumSort = 'name' | 'year' | 'recent';

export interface ClusterMember {
  node_id: number;
  address: string;
  role: 'leader' | 'voter' | 'learner';
  healthy: boolean;
  draining?: boolean;
  match_index?: number;
  files?: number;
  bytes?: number;
  free_bytes?: number;
}

export interface ClusterStatus {
  node_id: number;
  cluster_id: string;
  version: string;
  role: string;
  term: number;
  leader_id: number;
  leader_address?: string;
  commit_index: number;
  applied_index: number;
  replication_factor: number;
  members: ClusterMember[];
  songs?: number;
  bytes?: number;
  replicas_healthy?: number;
  replicas_other?: number;
  // The answering node's own copies and disk (the members list has them for the others).
  local?: { files?: number; bytes?: number; free_bytes?: number };
  repair?: {
    under_replicated?: number;
    unavailable?: number;
    queued?: number;
    copies_made?: number;
    bytes_copied?: number;
  };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterS?: number, // 429: the Retry-After header
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type SignInReason = 'expired' | 'csrf';

// The default: forget the user and go to the login page, keeping where they were to come back.
let unauthorizedHandler: (reason: SignInReason) => void = (reason) => {
  if (reason === 'csrf') forgetCsrfToken();
  setAuth({ mode: 'anon', reason });
  if (typeof window !== 'undefined' && window.location.pathname !== '/login') {
    const here = window.location.pathname + window.location.search + window.location.hash;
    window.history.pushState(null, '', loginPath(here, reason));
    window.dispatchEvent(new PopStateEvent('popstate'));
  }
};

// The one place a 401 (and a 403 csrf) is handled.
export function onUnauthorized(handler: (reason: SignInReason) => void): void {
  unauthorizedHandler = handler;
}

export function handleStatus(status: number, code?: string): void {
  if (status === 401) unauthorizedHandler('expired');
  else if (status === 403 && code === 'csrf') unauthorizedHandler('csrf');
}

// The headers a state-changing request needs: the CSRF token once signed in (the node ignores it
// for bearer or anonymous requests, and with security off).
export function mutationHeaders(): Record<string, string> {
  const token = csrfToken();
  return token ? { 'X-CSRF-Token': token } : {};
}

type Query = Record<string, string | number | undefined>;

export function apiPath(path: string, query?: Query): string {
  if (!path.startsWith('/') || path.startsWith('//')) throw new Error(`not a same-origin path: ${path}`);
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export async function errorFrom(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  const retry = Number(res.headers?.get('Retry-After') ?? NaN);
  return new ApiError(res.status, code, message, Number.isFinite(retry) ? retry : undefined);
}

interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  // The caller handles a 401 itself (the login form, the first GET /auth/me).
  own401?: boolean;
}

export async function request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') Object.assign(headers, mutationHeaders());
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(apiPath(path, opts.query), {
    method,
    credentials: 'same-origin',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: opts.signal,
  });
  if (!res.ok) {
    const err = await errorFrom(res);
    if (!(opts.own401 && res.status === 401)) handleStatus(res.status, err.code);
    throw err;
  }
  return res;
}

export async function getJson<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
  return (await (await request('GET', path, { query, signal })).json()) as T;
}

export interface Me {
  name: string;
  roles: string[];
  via?: string;
}

export interface Login extends Me {
  csrf_token: string; // kept in the cookie dispotify_csrf, where the UI reads it
  expires_ms: number;
}

// GET /auth/config (public): the sign-ins the node offers, for the login page. null when the node
// cannot say (security off answers 404 auth_off; an older node has no such route): password only.
export async function fetchAuthConfig(signal?: AbortSignal): Promise<AuthConfig | null> {
  try {
    return (await (await request('GET', '/auth/config', { signal, own401: true })).json()) as AuthConfig;
  } catch {
    return null;
  }
}

// GET /auth/me: who is signed in; 'off' when the node runs without security (404 auth_off);
// null when nobody is (401).
export async function fetchMe(signal?: AbortSignal): Promise<Me | 'off' | null> {
  try {
    return (await (await request('GET', '/auth/me', { signal, own401: true })).json()) as Me;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && e.code === 'auth_off') return 'off';
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export async function signIn(name: string, password: string): Promise<Login> {
  const res = await request('POST', '/auth/login', { body: { name, password }, own401: true });
  const login = (await res.json()) as Login;
  setCsrfCookie(login.csrf_token, login.expires_ms);
  setAuth({ mode: 'user', name: login.name, roles: login.roles });
  return login;
}

// Ends the session at the node (the cookie alone would not), then forgets it here and in the other
// tabs. Signed out here even when the node could not be told (it lets the session expire).
export async function signOut(): Promise<void> {
  try {
    await request('POST', '/auth/logout', { own401: true });
  } catch {
    // already over, or the node is unreachable
  }
  // The node clears the cookie too; this covers a node that could not be reached.
  forgetCsrfToken();
  announceSignOut();
  setAuth({ mode: 'anon', reason: 'signed-out' });
}

export async function deleteSong(fileId: string): Promise<void> {
  await request('DELETE', `/music/songs/${encodeURIComponent(fileId)}`);
}

export const api = {
  songs: (after: string, limit: number, signal?: AbortSignal) =>
    getJson<Page<Song>>('/music/songs', { limit, after }, signal),
  song: (fileId: string, signal?: AbortSignal) =>
    getJson<Song>(`/music/songs/${encodeURIComponent(fileId)}`, undefined, signal),
  search: (q: string, limit: number, signal?: AbortSignal) =>
    getJson<SearchPage>('/music/search', { q, limit }, signal),
  artists: (after: string, limit: number, signal?: AbortSignal) =>
    getJson<Page<ArtistSummary>>('/music/artists', { limit, after }, signal),
  albums: (opts: { after: string; limit: number; sort?: AlbumSort; artist?: string }, signal?: AbortSignal) =>
    getJson<Page<AlbumSummary>>('/music/albums', { ...opts }, signal),
  album: (albumId: string, signal?: AbortSignal) =>
    getJson<AlbumDetail>(`/music/albums/${encodeURIComponent(albumId)}`, undefined, signal),
  clusterStatus: (signal?: AbortSignal) => getJson<ClusterStatus>('/cluster/status', undefined, signal),
};

// The URL the player streams: the content-addressed one when the song has it (plays from any copy,
// without a quorum), else the one by id.
export function streamUrl(song: Pick<Song, 'file_id' | 'stream_url' | 'sha256'>): string {
  if (song.stream_url && song.stream_url.startsWith('/')) return song.stream_url;
  return apiPath(`/music/stream/${encodeURIComponent(song.file_id)}`, song.sha256 ? { sha256: song.sha256 } : {});
}

// The only sizes the node scales covers to; a few fixed ones also let pages share the browser's
// cache (the answers are immutable).
export type CoverSize = 64 | 128 | 256 | 512 | 1024;

// The cover's SHA-256 when the value is one, else "": anything else is no picture, not a path.
export function coverSha(value: string | undefined): string {
  return value && /^[0-9a-f]{64}$/i.test(value) ? value : '';
}

// A cover is named by the SHA-256 of the picture, so one URL per picture and size, cached for good.
export function coverUrl(sha: string, size: CoverSize): string {
  return apiPath(`/music/covers/${encodeURIComponent(sha)}`, { size });
}

// albumId: an album picture's album, when the songs beside it said which it is.
export function uploadUrl(relativePath: string, albumId?: string): string {
  return apiPath('/music/upload', albumId ? { path: relativePath, album_id: albumId } : { path: relativePath });
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404;
}
