import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { useEffect, useRef } from 'react';
import { BrowserRouter, NavLink, Navigate, Route, Routes } from 'react-router-dom';
import { t } from '../i18n';
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

function Login() {
  return (
    <>
      <h1>{t.login.title}</h1>
      <p>{t.login.text}</p>
    </>
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
          <Route path="/login" element={<Login />} />
          <Route path="*" element={<h1>{t.notFound}</h1>} />
        </Routes>
      </main>
      <UploadPanel />
      <PlayerBar />
      <DropZone />
    </div>
  );
}

export function App({ client = makeQueryClient() }: { client?: QueryClient }) {
  return (
    <QueryClientProvider client={client}>
      <UploadProvider>
        <BrowserRouter>
          <Shell />
        </BrowserRouter>
      </UploadProvider>
    </QueryClientProvider>
  );
}
