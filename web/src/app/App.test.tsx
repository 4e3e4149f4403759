import { QueryClient } from '@tanstack/react-query';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setAuth, setCsrfToken } from '../lib/auth';
import { jsonResponse } from '../test/fixtures';
import { App } from './App';

let me: () => Response;
let onLogin: (body: { name: string; password: string }) => Response;

beforeEach(() => {
  sessionStorage.clear();
  setCsrfToken('', false);
  setAuth({ mode: 'loading' });
  vi.spyOn(HTMLMediaElement.prototype, 'pause').mockImplementation(() => {});
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit) => {
      if (url === '/auth/me') return me();
      if (url === '/auth/login') return onLogin(JSON.parse(String(init.body)));
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
    setCsrfToken('t2', false);
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
});
