// The browser's side of authentication (docs/security.md, "Users, roles and API tokens"; the
// contract is node/api/auth_api.h). The session itself is the HttpOnly cookie dispotify_session,
// which script never sees; this module keeps who is signed in, their roles, and the CSRF token
// that every state-changing request authenticated by that cookie must send back.
//
// Modes: 'off' (the node runs without --auth: every /auth/* answers 404 auth_off and the UI works
// as it always did, everything shown), 'anon' (security on, nobody signed in: the login page),
// 'user' (signed in). 'loading' until GET /auth/me has answered.

export type Role = 'listener' | 'uploader' | 'admin' | 'metrics';

export type AuthState =
  | { mode: 'loading' }
  | { mode: 'off' }
  | { mode: 'anon'; reason?: 'expired' | 'csrf' | 'signed-out' }
  | { mode: 'user'; name: string; roles: string[] };

export type Action = 'upload' | 'delete' | 'admin';

// What each role may do in the UI (node/auth/policy.cc is the authority; this only hides controls
// that would be refused). An uploader's delete of someone else's song is still refused (403) by
// the node, which does not tell the UI who uploaded what: that refusal is shown as an error.
export function can(state: AuthState, action: Action): boolean {
  if (state.mode === 'off') return true;
  if (state.mode !== 'user') return false;
  const r = state.roles;
  if (r.includes('admin')) return true;
  if (action === 'admin') return false;
  return r.includes('uploader');
}

let state: AuthState = { mode: 'loading' };
const listeners = new Set<() => void>();

export function getAuth(): AuthState {
  return state;
}

export function setAuth(next: AuthState): void {
  state = next;
  listeners.forEach((l) => l());
}

export function subscribeAuth(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

// ---- the CSRF token ------------------------------------------------------------------------
//
// Kept in sessionStorage, not in a cookie: a cookie would be sent by the browser with every request,
// including one forged by another site, which is exactly what the token must not be; it has to be
// something only our own script can read and add as a header. Not in localStorage either: that
// outlives the browser session and is shared by every tab forever, while sessionStorage survives a
// reload of this tab and goes with it. (Script-readable storage is readable by an XSS too, but an
// XSS can already make same-origin requests with the cookie; the token defends against other
// origins, and the CSP keeps out foreign script.)
//
// A tab opened later (a link opened in a new tab) starts with an empty sessionStorage. It asks the
// other open tabs of this origin for the token over a BroadcastChannel; a tab that signs in tells the
// others the new one. If no tab has it (all were closed, the session cookie lived on), the first
// state-changing request answers 403 csrf, and the UI asks the person to sign in again (the login
// page with a note): a new session and a new token, with no silent retry of the refused request.
const KEY = 'dispotify.csrf';
let memoryToken = ''; // when sessionStorage is unavailable (privacy modes): this page's lifetime

export function csrfToken(): string {
  try {
    return sessionStorage.getItem(KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

export function setCsrfToken(token: string, share = true): void {
  memoryToken = token;
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    // keep it in memory only
  }
  if (share && token) channel()?.postMessage({ type: 'csrf', token });
}

type Message = { type: 'csrf'; token: string } | { type: 'csrf?' } | { type: 'signed-out' };
let bc: BroadcastChannel | null | undefined;
let onSignedOutElsewhere: () => void = () => {};

function channel(): BroadcastChannel | null {
  if (bc !== undefined) return bc;
  bc = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('dispotify-auth');
  if (bc) {
    bc.onmessage = (e: MessageEvent<Message>) => {
      const m = e.data;
      if (m.type === 'csrf' && typeof m.token === 'string') setCsrfToken(m.token, false);
      else if (m.type === 'csrf?' && csrfToken()) bc?.postMessage({ type: 'csrf', token: csrfToken() });
      else if (m.type === 'signed-out') onSignedOutElsewhere();
    };
  }
  return bc;
}

// A new tab without the token asks the others for it.
export function askOtherTabsForToken(): void {
  if (!csrfToken()) channel()?.postMessage({ type: 'csrf?' });
}

export function announceSignOut(): void {
  channel()?.postMessage({ type: 'signed-out' });
}

export function onSignOutElsewhere(fn: () => void): void {
  onSignedOutElsewhere = fn;
  channel();
}

// ---- where to go back to after the login page ----------------------------------------------

// Only a path of this origin, never the login page itself: `next` comes from the address bar.
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (next === '/login' || next.startsWith('/login?') || next.startsWith('/login/')) return '/';
  return next;
}

export function loginPath(from: string, reason?: string): string {
  const p = new URLSearchParams();
  const next = safeNext(from);
  if (next !== '/') p.set('next', next);
  if (reason) p.set('reason', reason);
  const qs = p.toString();
  return qs ? `/login?${qs}` : '/login';
}
