import { useWindowVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { Link } from 'react-router-dom';
import { t } from '../../i18n';
import type { Song } from '../../lib/api';
import { formatDuration } from '../../lib/format';
import { Icon } from '../../lib/Icon';
import { current } from '../player/queue';
import { player, usePlayer } from '../player/store';
import { albumKey } from './derive';
import { albumPath, artistPath } from './paths';

export const ROW_HEIGHT = 52;

// A virtualised song list over the window's scroll: only the rows in view (plus a few) exist in the
// page, whatever the length. `onNearEnd` asks for the next page when the last rows come into view.
export function SongList({ songs, onNearEnd, showTrack = false, label = t.songs.list }: { songs: Song[]; onNearEnd?: () => void; showTrack?: boolean; label?: string }) {
  const listRef = useRef<HTMLDivElement>(null);
  const [margin, setMargin] = useState(0);
  useLayoutEffect(() => {
    setMargin(listRef.current ? listRef.current.getBoundingClientRect().top + window.scrollY : 0);
  }, []);
  const v = useWindowVirtualizer({ count: songs.length, estimateSize: () => ROW_HEIGHT, overscan: 10, scrollMargin: margin });
  const items = v.getVirtualItems();
  const last = items.length ? items[items.length - 1].index : -1;
  useEffect(() => {
    if (onNearEnd && last >= songs.length - 20 && songs.length > 0) onNearEnd();
  }, [last, songs.length, onNearEnd]);
  const playing = usePlayer((s) => current(s.queue));

  return (
    <div ref={listRef} className="song-list" role="list" aria-label={label} data-testid="song-list" style={{ height: v.getTotalSize(), position: 'relative' }}>
      {items.map((row) => {
        const s = songs[row.index];
        const isCurrent = playing?.file_id === s.file_id;
        return (
          <div
            key={s.file_id + '-' + row.index}
            role="listitem"
            // Only some rows are in the DOM (virtualised): each says its place in the whole list
            // (aria-rowcount is for grids and tables, not lists).
            aria-setsize={songs.length}
            aria-posinset={row.index + 1}
            className={`song-row ${isCurrent ? 'current' : ''}`}
            data-testid="song-row"
            style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${row.start - v.options.scrollMargin}px)` }}
          >
            <button type="button" className="icon play-row" aria-label={`${t.common.play}: ${s.title || s.file_name}`} onClick={() => player.playList(songs, row.index)}>
              {isCurrent ? <Icon name="music" size={18} /> : showTrack && s.track ? s.track : <Icon name="play" size={18} />}
            </button>
            <div className="song-main">
              <div className="song-title">{s.title || s.file_name}</div>
              <div className="song-sub muted small">
                {s.artist ? <Link to={artistPath(s.artist)}>{s.artist}</Link> : t.common.unknownArtist}
                {s.album && (
                  <>
                    {' · '}
                    <Link to={albumPath(albumKey(s))}>{s.album}</Link>
                  </>
                )}
              </div>
            </div>
            <span className="song-duration muted small">{formatDuration(s.duration_ms)}</span>
            <button type="button" className="icon small" aria-label={`${t.common.addToQueue}: ${s.title || s.file_name}`} onClick={() => player.enqueue([s])}><Icon name="add" size={18} /></button>
          </div>
        );
      })}
    </div>
  );
}
