import { useWindowVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { Link } from 'react-router-dom';
import { t } from '../../i18n';
import { ErrorNote, Loading } from './Status';
import { artistPath } from './paths';
import { useArtists } from './queries';

const ROW = 48;

export function ArtistsPage() {
  const a = useArtists();
  const ref = useRef<HTMLDivElement>(null);
  const [margin, setMargin] = useState(0);
  useLayoutEffect(() => setMargin(ref.current ? ref.current.getBoundingClientRect().top + window.scrollY : 0), [a.isLoading]);
  const v = useWindowVirtualizer({ count: a.items.length, estimateSize: () => ROW, overscan: 10, scrollMargin: margin });
  const items = v.getVirtualItems();
  const last = items.length ? items[items.length - 1].index : -1;
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = a;
  useEffect(() => {
    if (hasNextPage && !isFetchingNextPage && last >= a.items.length - 20) fetchNextPage();
  }, [last, a.items.length, hasNextPage, isFetchingNextPage, fetchNextPage]);
  return (
    <>
      <h1>{t.artists.title}</h1>
      {a.derived && <p className="muted small">{t.common.derived}</p>}
      {a.isLoading ? <Loading /> : a.error ? <ErrorNote error={a.error} /> : a.items.length === 0 ? <p className="muted">{t.common.empty}</p> : (
        <div ref={ref} role="list" aria-label={t.artists.title} className="artist-list" data-testid="artist-list" style={{ height: v.getTotalSize(), position: 'relative' }}>
          {items.map((row) => {
            const ar = a.items[row.index];
            return (
              <div key={ar.name} role="listitem" className="artist-row" style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW, transform: `translateY(${row.start - v.options.scrollMargin}px)` }}>
                <Link to={artistPath(ar.name)}>{ar.name || t.common.unknownArtist}</Link>
                <span className="muted small">{t.common.albums(ar.album_count)} · {t.common.songs(ar.song_count)}</span>
              </div>
            );
          })}
        </div>
      )}
    </>
  );
}
