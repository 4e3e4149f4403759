import { QueryClient } from '@tanstack/react-query';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forgetCsrfToken, rememberNext, setAuth } from '../lib/auth';
import { jsonResponse } from '../test/fixtures';
import { App } from './App';

let me: () => Response;
let onLogin: (body: { name: string; password: string }) => Response;
let config: () => Response;

beforeEach(() => {
  sessionStorage.clear();
  forgetCsrfToken();
  setAuth({ mode: 'loading' });
  config = () => jsonResponse({ password: true, oidc: { enabled: false } });
  vi.spyOn(HTMLMediaElement.prototype, 'pause').mockImplementation(() => {});
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit) => {
      if (url === '/auth/me') return me();
      if (url === '/auth/login') return onLogin(JSON.parse(String(init.body)));
      if (url === '/auth/config') return config();
      if (url === '/auth/logout') return new Response(null, { status: 204 });
      return jsonResponse({ items: [], next_after: '' });
    }),
  );
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const client = () => new QueryClient({ defaultOptions: { queries: { retry: false } } });

describe('the app and security', () => {
  it('security off (404 auth_off): no login, the upload control shown, no account', async () => {
    window.history.replaceState(null, '', '/songs');
    me = () => jsonResponse({ error: { code: 'auth_off', message: 'off' } }, 404);
    render(<App client={client()} />);
    await screen.findByRole('button', { name: /upload/i });
    expect(screen.queryByTestId('sign-out')).toBeNull();
    expect(window.location.pathname).toBe('/songs');
  });

  it('nobody signed in: the login page; a wrong password shows an error; then back to the page asked for', async () => {
    window.history.replaceState(null, '', '/albums?sort=year');
    me = () => jsonResponse({ error: { code: 'unauthenticated' } }, 401);
    onLogin = (b) =>
      b.password === 'right-password'
        ? jsonResponse({ name: b.name, roles: ['listener'], csrf_token: 't1', expires_ms: 1 })
        : jsonResponse({ error: { code: 'bad_credentials', message: 'no' } }, 401);
    render(<App client={client()} />);
    await screen.findByTestId('login-page');
    expect(window.location.pathname).toBe('/login');
    expect(new URLSearchParams(window.location.search).get('next')).toBe('/albums?sort=year');

    fireEvent.change(screen.getByTestId('login-name'), { target: { value: 'lee' } });
    fireEvent.change(screen.getByTestId('login-password'), { target: { value: 'wrong' } });
    fireEvent.click(screen.getByTestId('login-submit'));
    expect((await screen.findByRole('alert')).textContent).toMatch(/wrong name or password/i);

    fireEvent.change(screen.getByTestId('login-password'), { target: { value: 'right-password' } });
    fireEvent.click(screen.getByTestId('login-submit'));
    await screen.findByTestId('account-name');
    expect(window.location.pathname + window.location.search).toBe('/albums?sort=year');
    // A listener: no upload control.
    expect(screen.queryByRole('button', { name: /upload/i })).toBeNull();
    expect(screen.getByTestId('account-name').textContent).toBe('lee');
  });

  it('signed in as an uploader: the upload control; sign out returns to the login page', async () => {
    window.history.replaceState(null, '', '/songs');
    document.cookie = 'dispotify_csrf=t2; Path=/';
    me = () => jsonResponse({ name: 'ula', roles: ['uploader'], via: 'session' });
    render(<App client={client()} />);
    await screen.findByRole('button', { name: /upload/i });
    await act(async () => fireEvent.click(screen.getByTestId('sign-out')));
    await screen.findByTestId('login-page');
    await waitFor(() => expect(window.location.pathname).toBe('/login'));
    expect(screen.getByTestId('login-note').textContent).toMatch(/signed out/i);
    const logout = vi.mocked(fetch).mock.calls.find(([u]) => u === '/auth/logout');
    expect((logout?.[1]?.headers as Record<string, string>)['X-CSRF-Token']).toBe('t2');
  });

  it('no OIDC configured: no "Sign in with" button', async () => {
    window.history.replaceState(null, '', '/login');
    me = () => jsonResponse({ error: { code: 'unauthenticated' } }, 401);
    render(<App client={client()} />);
    await screen.findByTestId('login-page');
    await waitFor(() => expect(vi.mocked(fetch).mock.calls.some(([u]) => u === '/auth/config')).toBe(true));
    expect(screen.queryByTestId('login-oidc')).toBeNull();
  });

  it('OIDC configured: "Sign in with <issuer>" links to the node\'s login and keeps where the person was going', async () => {
    window.history.replaceState(null, '', '/artists');
    me = () => jsonResponse({ error: { code: 'unauthenticated' } }, 401);
    config = () => jsonResponse({ password: true, oidc: { enabled: true, login_url: '/auth/oidc/login', name: 'id.example.com' } });
    render(<App client={client()} />);
    const button = await screen.findByTestId('login-oidc');
    expect(button.textContent).toBe('Sign in with id.example.com');
    expect(button.getAttribute('href')).toBe('/auth/oidc/login');
    // jsdom does not navigate; the click only records where to come back to.
    button.addEventListener('click', (e) => e.preventDefault());
    fireEvent.click(button);
    expect(sessionStorage.getItem('dispotify.next')).toBe('/artists');
  });

  it('back from the OIDC login on "/", signed in: on to the page the person was going to', async () => {
    window.history.replaceState(null, '', '/');
    rememberNext('/albums?sort=year');
    me = () => jsonResponse({ name: 'oidc-alice', roles: ['uploader'], via: 'session' });
    render(<App client={client()} />);
    await screen.findByTestId('account-name');
    await waitFor(() => expect(window.location.pathname + window.location.search).toBe('/albums?sort=year'));
    expect(sessionStorage.getItem('dispotify.next')).toBeNull();
  });
});
