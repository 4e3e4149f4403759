import { useParams } from 'react-router-dom';
import { t } from '../../i18n';
import { AlbumGrid } from './AlbumGrid';
import { ErrorNote, Loading } from './Status';
import { useAlbums } from './queries';

export function ArtistPage() {
  const { name = '' } = useParams();
  const albums = useAlbums('year', name);
  return (
    <>
      <h1 data-testid="artist-name">{name || t.common.unknownArtist}</h1>
      <h2>{t.artists.albumsBy(name)}</h2>
      {albums.derived && <p className="muted small">{t.common.derived}</p>}
      {albums.isLoading ? <Loading /> : albums.error ? <ErrorNote error={albums.error} /> : albums.items.length === 0 ? <p className="muted">{t.common.empty}</p> : <AlbumGrid albums={albums.items} onNearEnd={albums.hasNextPage ? albums.fetchNextPage : undefined} />}
    </>
  );
}
