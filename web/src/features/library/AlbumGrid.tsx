import { useWindowVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { Link } from 'react-router-dom';
import { t } from '../../i18n';
import type { AlbumSummary } from '../../lib/api';
import { Cover } from './Cover';
import { albumPath } from './paths';

const MIN_CELL = 160;

// A virtualised grid: rows of as many cells as fit the width.
export function AlbumGrid({ albums, onNearEnd }: { albums: AlbumSummary[]; onNearEnd?: () => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  const [margin, setMargin] = useState(0);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    setMargin(el.getBoundingClientRect().top + window.scrollY);
    setWidth(el.clientWidth || 800);
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth || 800));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const cols = Math.max(2, Math.floor(width / MIN_CELL));
  const cell = width / cols;
  const rowHeight = cell + 56;
  const rows = Math.ceil(albums.length / cols);
  const v = useWindowVirtualizer({ count: rows, estimateSize: () => rowHeight, overscan: 3, scrollMargin: margin });
  useEffect(() => v.measure(), [rowHeight, v]);
  const items = v.getVirtualItems();
  const last = items.length ? items[items.length - 1].index : -1;
  useEffect(() => {
    if (onNearEnd && rows > 0 && last >= rows - 3) onNearEnd();
  }, [last, rows, onNearEnd]);

  return (
    <div ref={ref} className="album-grid" role="list" aria-label={t.albums.title} data-testid="album-grid" style={{ height: v.getTotalSize(), position: 'relative' }}>
      {items.map((row) =>
        albums.slice(row.index * cols, row.index * cols + cols).map((a, c) => (
          <div
            key={a.album_id}
            role="listitem"
            className="album-cell"
            style={{ position: 'absolute', top: 0, left: c * cell, width: cell, height: rowHeight, transform: `translateY(${row.start - v.options.scrollMargin}px)` }}
          >
            <Link to={albumPath(a.album_id)} className="album-link" data-testid="album-card">
              <Cover albumKey={a.album_id} title={a.title} cover={a.cover} />
              <div className="album-title">{a.title || t.common.unknownAlbum}</div>
              <div className="muted small">{a.album_artist || t.common.unknownArtist}{a.year ? ` · ${a.year}` : ''}</div>
            </Link>
          </div>
        )),
      )}
    </div>
  );
}
