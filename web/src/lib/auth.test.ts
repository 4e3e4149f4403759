import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { jsonResponse } from '../test/fixtures';
import { ApiError, deleteSong, fetchMe, getJson, signIn, signOut } from './api';
import { can, cookieValue, csrfToken, forgetCsrfToken, getAuth, loginPath, oidcLoginUrl, rememberNext, safeNext, setAuth, takeNext } from './auth';
import { outcomeOf } from '../features/upload/manager';

type Call = { url: string; init: RequestInit };
let calls: Call[] = [];
let answer: (url: string, init: RequestInit) => Response;

function header(init: RequestInit, name: string): string | undefined {
  return (init.headers as Record<string, string> | undefined)?.[name];
}

// What the browser does with the node's Set-Cookie (a fetch Response cannot carry one in jsdom).
function nodeSetsCsrfCookie(token: string): void {
  document.cookie = `dispotify_csrf=${token}; Path=/; SameSite=Strict`;
}

beforeEach(() => {
  calls = [];
  sessionStorage.clear();
  forgetCsrfToken();
  setAuth({ mode: 'loading' });
  window.history.replaceState(null, '', '/');
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return answer(url, init);
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
});

const login = { name: 'ann', roles: ['uploader'], csrf_token: 'tok-123', expires_ms: Date.now() + 3_600_000 };

describe('CSRF token', () => {
  it('is kept from the password login in the cookie dispotify_csrf and sent on mutating calls only', async () => {
    answer = (url) => (url === '/auth/login' ? jsonResponse(login) : url.startsWith('/music/songs/') ? new Response(null, { status: 204 }) : jsonResponse({ items: [], next_after: '' }));
    expect(csrfToken()).toBe('');
    await signIn('ann', 'secret-pw');
    expect(cookieValue(document.cookie, 'dispotify_csrf')).toBe('tok-123');
    expect(csrfToken()).toBe('tok-123');
    // Nothing of it is kept anywhere else.
    expect(sessionStorage.length).toBe(0);
    expect(getAuth()).toEqual({ mode: 'user', name: 'ann', roles: ['uploader'] });
    // The login itself: JSON body, same-origin credentials.
    expect(calls[0].init.method).toBe('POST');
    expect(calls[0].init.credentials).toBe('same-origin');
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ name: 'ann', password: 'secret-pw' });

    await getJson('/music/songs');
    expect(header(calls[1].init, 'X-CSRF-Token')).toBeUndefined();

    await deleteSong('a b.mp3');
    expect(calls[2].url).toBe('/music/songs/a%20b.mp3');
    expect(calls[2].init.method).toBe('DELETE');
    expect(header(calls[2].init, 'X-CSRF-Token')).toBe('tok-123');
  });

  it('after the OIDC login (the cookie only: a redirect has no body), every change sends it', async () => {
    nodeSetsCsrfCookie('from-oidc');
    setAuth({ mode: 'user', name: 'oidc-alice', roles: ['uploader'] });
    answer = () => new Response(null, { status: 204 });
    await deleteSong('x.mp3');
    expect(header(calls[0].init, 'X-CSRF-Token')).toBe('from-oidc');
  });

  it('without the cookie, no header (the node answers 403 csrf)', async () => {
    setAuth({ mode: 'user', name: 'ann', roles: ['uploader'] });
    answer = () => new Response(null, { status: 204 });
    await deleteSong('x.mp3');
    expect(header(calls[0].init, 'X-CSRF-Token')).toBeUndefined();
  });

  it('is sent on logout, then forgotten', async () => {
    nodeSetsCsrfCookie('tok-9');
    setAuth({ mode: 'user', name: 'ann', roles: ['listener'] });
    answer = () => new Response(null, { status: 204 });
    await signOut();
    expect(calls[0].url).toBe('/auth/logout');
    expect(header(calls[0].init, 'X-CSRF-Token')).toBe('tok-9');
    expect(csrfToken()).toBe('');
    expect(document.cookie).not.toContain('dispotify_csrf');
    expect(getAuth()).toEqual({ mode: 'anon', reason: 'signed-out' });
  });

  it('403 csrf: forgets the token and asks to sign in again, keeping the page', async () => {
    nodeSetsCsrfCookie('stale');
    setAuth({ mode: 'user', name: 'ann', roles: ['admin'] });
    window.history.replaceState(null, '', '/albums/x?y=1');
    answer = () => jsonResponse({ error: { code: 'csrf', message: 'missing X-CSRF-Token' } }, 403);
    await expect(deleteSong('s.mp3')).rejects.toMatchObject({ status: 403, code: 'csrf' });
    expect(csrfToken()).toBe('');
    expect(getAuth()).toEqual({ mode: 'anon', reason: 'csrf' });
    expect(window.location.pathname).toBe('/login');
    const q = new URLSearchParams(window.location.search);
    expect(q.get('next')).toBe('/albums/x?y=1');
    expect(q.get('reason')).toBe('csrf');
  });

  it('403 forbidden is an error for the caller, not a sign-in', async () => {
    setAuth({ mode: 'user', name: 'ann', roles: ['uploader'] });
    answer = () => jsonResponse({ error: { code: 'forbidden', message: 'uploaded by someone else' } }, 403);
    await expect(deleteSong('s.mp3')).rejects.toMatchObject({ status: 403, code: 'forbidden' });
    expect(getAuth().mode).toBe('user');
    expect(window.location.pathname).toBe('/');
  });
});

describe('401', () => {
  it('on any API call goes to the login page and remembers where the person was', async () => {
    setAuth({ mode: 'user', name: 'ann', roles: ['listener'] });
    window.history.replaceState(null, '', '/artists/Some%20One');
    answer = () => jsonResponse({ error: { code: 'unauthenticated', message: 'sign in' } }, 401);
    await expect(getJson('/music/artists')).rejects.toBeInstanceOf(ApiError);
    expect(getAuth()).toEqual({ mode: 'anon', reason: 'expired' });
    expect(window.location.pathname).toBe('/login');
    expect(new URLSearchParams(window.location.search).get('next')).toBe('/artists/Some%20One');
  });

  it('from the login form is a wrong password, not a redirect', async () => {
    window.history.replaceState(null, '', '/login');
    answer = () => jsonResponse({ error: { code: 'bad_credentials', message: 'wrong' } }, 401);
    await expect(signIn('ann', 'nope-nope')).rejects.toMatchObject({ status: 401, code: 'bad_credentials' });
    expect(getAuth().mode).toBe('loading');
    expect(window.location.search).toBe('');
  });

  it('429 carries Retry-After', async () => {
    answer = () => new Response(JSON.stringify({ error: { code: 'rate_limited' } }), { status: 429, headers: { 'Retry-After': '42' } });
    await expect(signIn('ann', 'x')).rejects.toMatchObject({ status: 429, retryAfterS: 42 });
  });
});

describe('GET /auth/me', () => {
  it('404 auth_off: security off', async () => {
    answer = () => jsonResponse({ error: { code: 'auth_off', message: 'security is off' } }, 404);
    expect(await fetchMe()).toBe('off');
  });
  it('401: nobody signed in, and no redirect of its own', async () => {
    answer = () => jsonResponse({ error: { code: 'unauthenticated' } }, 401);
    expect(await fetchMe()).toBeNull();
    expect(window.location.pathname).toBe('/');
  });
  it('200: the user', async () => {
    answer = () => jsonResponse({ name: 'root', roles: ['admin'], via: 'session' });
    expect(await fetchMe()).toEqual({ name: 'root', roles: ['admin'], via: 'session' });
  });
});

describe('roles', () => {
  const user = (roles: string[]) => ({ mode: 'user' as const, name: 'u', roles });
  it('listener: no upload, no delete; uploader: both; admin: all; security off: all', () => {
    expect(can(user(['listener']), 'upload')).toBe(false);
    expect(can(user(['listener']), 'delete')).toBe(false);
    expect(can(user(['uploader']), 'upload')).toBe(true);
    expect(can(user(['uploader']), 'delete')).toBe(true);
    expect(can(user(['uploader']), 'admin')).toBe(false);
    expect(can(user(['admin']), 'admin')).toBe(true);
    expect(can({ mode: 'off' }, 'upload')).toBe(true);
    expect(can({ mode: 'off' }, 'admin')).toBe(true);
    expect(can({ mode: 'anon' }, 'upload')).toBe(false);
  });
});

describe('where to return after login', () => {
  it('only paths of this origin, never the login page', () => {
    expect(safeNext('/albums/a?b=1')).toBe('/albums/a?b=1');
    expect(safeNext('//evil.example/x')).toBe('/');
    expect(safeNext('/\\evil.example')).toBe('/');
    expect(safeNext('https://evil.example/')).toBe('/');
    expect(safeNext('/login?next=/x')).toBe('/');
    expect(safeNext(null)).toBe('/');
    expect(loginPath('/songs', 'expired')).toBe('/login?next=%2Fsongs&reason=expired');
    expect(loginPath('/')).toBe('/login');
  });
});

describe('cookies', () => {
  it('finds a cookie by its exact name', () => {
    expect(cookieValue('a=1; dispotify_csrf=abc; b=2', 'dispotify_csrf')).toBe('abc');
    expect(cookieValue('dispotify_csrf=abc', 'dispotify_csrf')).toBe('abc');
    expect(cookieValue('xdispotify_csrf=no; dispotify_csrf_old=no', 'dispotify_csrf')).toBe('');
    expect(cookieValue('', 'dispotify_csrf')).toBe('');
    expect(cookieValue('dispotify_csrf=a=b', 'dispotify_csrf')).toBe('a=b');
  });
});

describe('the OIDC login', () => {
  it('follows only a login URL of this origin, and only when enabled', () => {
    expect(oidcLoginUrl({ password: true, oidc: { enabled: true, login_url: '/auth/oidc/login', name: 'id.example.com' } })).toBe('/auth/oidc/login');
    expect(oidcLoginUrl({ password: true, oidc: { enabled: false, login_url: '/auth/oidc/login' } })).toBe('');
    expect(oidcLoginUrl({ password: true, oidc: { enabled: true } })).toBe('');
    expect(oidcLoginUrl({ password: true, oidc: { enabled: true, login_url: 'https://evil.example/' } })).toBe('');
    expect(oidcLoginUrl({ password: true, oidc: { enabled: true, login_url: '//evil.example/' } })).toBe('');
    expect(oidcLoginUrl(null)).toBe('');
  });

  it('keeps where the person was going for after the redirect, once', () => {
    rememberNext('/albums/x?y=1');
    expect(takeNext()).toBe('/albums/x?y=1');
    expect(takeNext()).toBe('/');
    rememberNext('//evil.example');
    expect(takeNext()).toBe('/');
  });
});

describe('upload refusals', () => {
  it('403 forbidden and 403 csrf are told apart', () => {
    expect(outcomeOf({ status: 403, body: '{"error":{"code":"forbidden"}}' })).toEqual({ status: 'error', error: 'forbidden', retryable: false });
    expect(outcomeOf({ status: 403, body: '{"error":{"code":"csrf"}}' })).toEqual({ status: 'error', error: 'signed-out', retryable: false });
    expect(outcomeOf({ status: 401, body: '' })).toMatchObject({ error: 'signed-out' });
  });
});
