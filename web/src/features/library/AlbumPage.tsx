import { Link, useParams } from 'react-router-dom';
import { t } from '../../i18n';
import type { Song } from '../../lib/api';
import { formatDuration } from '../../lib/format';
import { player } from '../player/store';
import { Cover } from './Cover';
import { SongList } from './SongList';
import { ErrorNote, Loading } from './Status';
import { artistPath } from './paths';
import { useAlbum } from './queries';

function discs(songs: Song[]): [number, Song[]][] {
  const by = new Map<number, Song[]>();
  for (const s of songs) {
    const d = s.disc ?? 0;
    by.set(d, [...(by.get(d) ?? []), s]);
  }
  return [...by.entries()];
}

export function AlbumPage() {
  const { albumId = '' } = useParams();
  const { data: album, isLoading, error } = useAlbum(albumId);
  if (isLoading) return <Loading />;
  if (error || !album) return <ErrorNote error={error} />;
  const parts = discs(album.songs);
  return (
    <>
      <div className="album-head">
        <Cover albumKey={album.album_id} title={album.title} cover={album.cover} size="lg" />
        <div>
          <h1 data-testid="album-title">{album.title || t.common.unknownAlbum}</h1>
          <p>
            <Link to={artistPath(album.album_artist)}>{album.album_artist || t.common.unknownArtist}</Link>
            {album.year ? ` · ${album.year}` : ''} · {t.common.songs(album.song_count)} · {formatDuration(album.duration_ms)}
          </p>
          {album.genres.length > 0 && <p className="muted small">{t.albums.genres}: {album.genres.join(', ')}</p>}
          <button type="button" className="primary" onClick={() => player.playList(album.songs, 0)} disabled={album.songs.length === 0}>
            {t.common.playAll}
          </button>
        </div>
      </div>
      {parts.length > 1
        ? parts.map(([disc, songs]) => (
            <section key={disc} aria-label={t.albums.disc(disc)}>
              <h2>{t.albums.disc(disc)}</h2>
              <SongList songs={songs} showTrack label={t.albums.disc(disc)} />
            </section>
          ))
        : <SongList songs={album.songs} showTrack label={album.title} />}
    </>
  );
}
