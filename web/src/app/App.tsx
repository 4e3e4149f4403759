import { QueryClient, QueryClientProvider, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { BrowserRouter, NavLink, Navigate, Route, Routes, useLocation } from 'react-router-dom';
import { t } from '../i18n';
import { fetchMe, signOut } from '../lib/api';
import { loginPath, onSignOutElsewhere, safeNext, setAuth, takeNext } from '../lib/auth';
import { LoginPage } from '../features/auth/LoginPage';
import { useAuth } from '../features/auth/useAuth';
import { player } from '../features/player/store';
import { ClusterPage } from '../features/cluster/ClusterPage';
import { AlbumPage } from '../features/library/AlbumPage';
import { AlbumsPage } from '../features/library/AlbumsPage';
import { ArtistPage } from '../features/library/ArtistPage';
import { ArtistsPage } from '../features/library/ArtistsPage';
import { SongsPage } from '../features/library/SongsPage';
import { PlayerBar } from '../features/player/PlayerBar';
import { handleShortcut } from '../features/player/shortcuts';
import { SearchBox } from '../features/search/SearchBox';
import { DropZone, UploadButton, UploadPanel, UploadProvider } from '../features/upload/Uploads';

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { staleTime: 15_000, refetchOnWindowFocus: false, retry: 1 },
    },
  });
}

// Who is signed in, once at start: GET /auth/me (404 auth_off: security is off, the UI works
// without signing in; 401: the login page). When the node cannot say (down, 5xx), the UI goes on as
// with security off: the first API call answering 401 then leads to the login page anyway. Back
// from the OIDC login (the node's callback lands on "/"), signed in: on to where the person was
// going when they left for the issuer.
export async function bootAuth(): Promise<void> {
  try {
    const me = await fetchMe();
    if (me === 'off') setAuth({ mode: 'off' });
    else if (me) {
      const next = takeNext();
      if (next !== '/' && window.location.pathname === '/') {
        window.history.replaceState(null, '', next);
        window.dispatchEvent(new PopStateEvent('popstate'));
      }
      setAuth({ mode: 'user', name: me.name, roles: me.roles });
    } else setAuth({ mode: 'anon' });
  } catch {
    setAuth({ mode: 'off' });
  }
}

// The signed-in user's name and the sign-out control (nothing with security off).
function Account() {
  const auth = useAuth();
  const qc = useQueryClient();
  if (auth.mode !== 'user') return null;
  return (
    <div className="account" role="group" aria-label={t.nav.account}>
      <span className="account-name" data-testid="account-name" title={t.login.signedIn(auth.name)}>{auth.name}</span>
      <button
        type="button"
        data-testid="sign-out"
        onClick={() => {
          player.pause();
          void signOut().then(() => qc.clear());
        }}
      >
        {t.nav.signOut}
      </button>
    </div>
  );
}

function Shell() {
  const search = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (handleShortcut(e, () => search.current?.focus())) e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    <div className="app">
      <a className="skip" href="#main">{t.nav.skip}</a>
      <header className="top">
        <span className="brand" aria-hidden="true">{t.appName}</span>
        <SearchBox ref={search} />
        <UploadButton />
        <Account />
      </header>
      <nav className="nav" aria-label={t.nav.main}>
        <NavLink to="/songs">{t.nav.songs}</NavLink>
        <NavLink to="/albums">{t.nav.albums}</NavLink>
        <NavLink to="/artists">{t.nav.artists}</NavLink>
        <NavLink to="/cluster">{t.nav.cluster}</NavLink>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<Navigate to="/songs" replace />} />
          <Route path="/songs" element={<SongsPage />} />
          <Route path="/albums" element={<AlbumsPage />} />
          <Route path="/albums/:albumId" element={<AlbumPage />} />
          <Route path="/artists" element={<ArtistsPage />} />
          <Route path="/artists/:name" element={<ArtistPage />} />
          <Route path="/cluster" element={<ClusterPage />} />
          <Route path="*" element={<h1>{t.notFound}</h1>} />
        </Routes>
      </main>
      <UploadPanel />
      <PlayerBar />
      <DropZone />
    </div>
  );
}

// Security on and nobody signed in: only the login page, every other address leads there (and back
// after signing in). Signed in, or security off: the app; /login then goes on to where it leads.
function AuthGate() {
  const auth = useAuth();
  const location = useLocation();
  const qc = useQueryClient();
  useEffect(() => {
    void bootAuth();
    onSignOutElsewhere(() => {
      player.pause();
      qc.clear();
      setAuth({ mode: 'anon', reason: 'signed-out' });
    });
  }, [qc]);
  const atLogin = location.pathname === '/login';
  if (auth.mode === 'loading') return <p className="muted boot" role="status">{t.common.loading}</p>;
  if (auth.mode === 'anon') {
    if (!atLogin) return <Navigate to={loginPath(location.pathname + location.search + location.hash, auth.reason)} replace />;
    return <LoginPage />;
  }
  if (atLogin) return <Navigate to={safeNext(new URLSearchParams(location.search).get('next'))} replace />;
  return <Shell />;
}

export function App({ client = makeQueryClient() }: { client?: QueryClient }) {
  return (
    <QueryClientProvider client={client}>
      <UploadProvider>
        <BrowserRouter>
          <AuthGate />
        </BrowserRouter>
      </UploadProvider>
    </QueryClientProvider>
  );
}
