import { useCallback, useState } from 'react';
import { t } from '../../i18n';
import type { AlbumSort } from '../../lib/api';
import { AlbumGrid } from './AlbumGrid';
import { ErrorNote, Loading } from './Status';
import { useAlbums } from './queries';

export function AlbumsPage() {
  const [sort, setSort] = useState<AlbumSort>('name');
  const albums = useAlbums(sort);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = albums;
  const more = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);
  return (
    <>
      <div className="page-head">
        <h1>{t.albums.title}</h1>
        <label>
          {t.albums.sort}{' '}
          <select value={sort} onChange={(e) => setSort(e.target.value as AlbumSort)} data-testid="album-sort">
            <option value="name">{t.albums.byName}</option>
            <option value="year">{t.albums.byYear}</option>
            <option value="recent">{t.albums.byRecent}</option>
          </select>
        </label>
      </div>
      {albums.derived && <p className="muted small">{t.common.derived}</p>}
      {albums.isLoading ? <Loading /> : albums.error ? <ErrorNote error={albums.error} /> : albums.items.length === 0 ? <p className="muted">{t.common.empty}</p> : <AlbumGrid albums={albums.items} onNearEnd={more} />}
    </>
  );
}
