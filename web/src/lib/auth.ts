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
// Kept in the cookie dispotify_csrf (Path=/, SameSite=Strict, not HttpOnly), whichever way the
// person signed in: the OIDC login ends in a redirect from the issuer, which has no body to carry
// it, so the node's callback sets that cookie; after a password login the UI writes the token of
// the answer's body there itself (setCsrfCookie), so the cookie is the one place for both. Script of this
// origin reads it and sends it back as X-CSRF-Token; a page of another origin can make the browser
// send the cookie along with a forged request but cannot read it, and the node checks the header,
// not the cookie. Every tab of the origin sees the same cookie, so a tab opened later has the token
// too, and it lives exactly as long as the session (same Max-Age; sign-out clears both).
// (Script-readable means readable by an XSS too, but an XSS can already make same-origin requests
// with the session; the token defends against other origins, and the CSP keeps out foreign script.)
export const CSRF_COOKIE = 'dispotify_csrf';

// The value of cookie `name` in a Cookie header or document.cookie ("" when absent).
export function cookieValue(cookies: string, name: string): string {
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return '';
}

export function csrfToken(): string {
  if (typeof document === 'undefined') return '';
  return cookieValue(document.cookie, CSRF_COOKIE);
}

// After a password login: the token of the answer, for as long as the session lives (Secure when
// the page is, as the node's own cookies are then).
export function setCsrfCookie(token: string, expiresMs: number): void {
  if (typeof document === 'undefined' || !/^[A-Za-z0-9_=-]+$/.test(token)) return;
  const maxAge = Math.max(0, Math.floor((expiresMs - Date.now()) / 1000));
  const secure = typeof location !== 'undefined' && location.protocol === 'https:' ? '; Secure' : '';
  document.cookie = `${CSRF_COOKIE}=${token}; Path=/; SameSite=Strict; Max-Age=${maxAge}${secure}`;
}

// After a 403 csrf: the token held is not the session's (a session replaced in another tab, or a
// cookie left from an ended one); signing in again sets a new one.
export function forgetCsrfToken(): void {
  if (typeof document === 'undefined') return;
  document.cookie = `${CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict`;
}

// ---- other tabs ----------------------------------------------------------------------------
//
// A sign-out in one tab signs the others out too (the session is shared through the cookie).
type Message = { type: 'signed-out' };
let bc: BroadcastChannel | null | undefined;
let onSignedOutElsewhere: () => void = () => {};

function channel(): BroadcastChannel | null {
  if (bc !== undefined) return bc;
  bc = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('dispotify-auth');
  if (bc) {
    bc.onmessage = (e: MessageEvent<Message>) => {
      if (e.data?.type === 'signed-out') onSignedOutElsewhere();
    };
  }
  return bc;
}

export function announceSignOut(): void {
  channel()?.postMessage({ type: 'signed-out' });
}

export function onSignOutElsewhere(fn: () => void): void {
  onSignedOutElsewhere = fn;
  channel();
}

// ---- the OIDC login ------------------------------------------------------------------------
//
// The node's callback always lands on "/": where the person was going waits here meanwhile (this
// tab only), and is taken once when the app starts signed in.
const NEXT_KEY = 'dispotify.next';

export function rememberNext(next: string): void {
  try {
    if (safeNext(next) !== '/') sessionStorage.setItem(NEXT_KEY, safeNext(next));
    else sessionStorage.removeItem(NEXT_KEY);
  } catch {
    // no sessionStorage: the person lands on the home page
  }
}

export function takeNext(): string {
  try {
    const next = sessionStorage.getItem(NEXT_KEY);
    sessionStorage.removeItem(NEXT_KEY);
    return safeNext(next);
  } catch {
    return '/';
  }
}

// The sign-ins a node offers (GET /auth/config). Only a path of this origin is followed.
export interface AuthConfig {
  password: boolean;
  oidc: { enabled: boolean; login_url?: string; name?: string };
}

export function oidcLoginUrl(config: AuthConfig | null | undefined): string {
  const url = config?.oidc?.enabled ? config.oidc.login_url : undefined;
  if (!url || !url.startsWith('/') || url.startsWith('//') || url.startsWith('/\\')) return '';
  return url;
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
