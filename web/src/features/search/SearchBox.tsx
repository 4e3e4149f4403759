import { forwardRef, useId, useMemo, useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { t } from '../../i18n';
import { player } from '../player/store';
import { groupResults, moveActive, type ResultOption } from './group';
import { useSearch } from './useSearch';
import { albumPath, artistPath } from '../library/paths';

// A combobox (WAI-ARIA 1.2): focus stays in the text box, the arrows move the active option,
// Enter opens it, Escape closes the list.
export const SearchBox = forwardRef<HTMLInputElement>(function SearchBox(_props, ref) {
  const [text, setText] = useState('');
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const listId = useId();
  const navigate = useNavigate();
  const { q, data, isFetching, error } = useSearch(text);
  const hits = useMemo(() => (q && data ? data.items : []), [q, data]);
  const groups = useMemo(() => groupResults(hits), [hits]);
  const shown = open && text.trim().length > 0;

  function choose(o: ResultOption) {
    if (o.kind === 'song') player.playList(hits, o.index);
    else if (o.kind === 'artist') navigate(artistPath(o.artist.name));
    else navigate(albumPath(o.album.album_id));
    setOpen(false);
  }

  const option = (o: ResultOption) => {
    const i = groups.flat.indexOf(o);
    const label =
      o.kind === 'song' ? (
        <>
          <span>{o.song.title || o.song.file_name}</span>
          <span className="muted small"> — {o.song.artist || t.common.unknownArtist}</span>
        </>
      ) : o.kind === 'artist' ? (
        <span>{o.artist.name}</span>
      ) : (
        <>
          <span>{o.album.title}</span>
          <span className="muted small"> — {o.album.album_artist}</span>
        </>
      );
    return (
      <li
        key={o.id}
        id={`${listId}-${o.id}`}
        role="option"
        aria-selected={i === active}
        className={i === active ? 'active' : ''}
        data-testid={`search-${o.kind}`}
        onMouseDown={(e) => e.preventDefault()}
        onClick={() => choose(o)}
      >
        {label}
      </li>
    );
  };

  const group = (label: string, items: ResultOption[]) =>
    items.length > 0 && (
      <li role="presentation">
        <div className="search-group-label" aria-hidden="true">{label}</div>
        <ul role="group" aria-label={label}>{items.map(option)}</ul>
      </li>
    );

  return (
    <div className="search" role="search">
      <input
        ref={ref}
        type="search"
        role="combobox"
        aria-label={t.search.label}
        aria-expanded={shown}
        aria-controls={listId}
        aria-autocomplete="list"
        aria-activedescendant={shown && active >= 0 && groups.flat[active] ? `${listId}-${groups.flat[active].id}` : undefined}
        placeholder={t.search.placeholder}
        value={text}
        data-testid="search-input"
        onChange={(e) => {
          setText(e.target.value);
          setOpen(true);
          setActive(-1);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setOpen(false)}
        onKeyDown={(e) => {
          if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
            e.preventDefault();
            setOpen(true);
            setActive((a) => moveActive(a, e.key === 'ArrowDown' ? 1 : -1, groups.flat.length));
          } else if (e.key === 'Enter') {
            const o = groups.flat[active >= 0 ? active : 0];
            if (o) {
              e.preventDefault();
              choose(o);
            }
          } else if (e.key === 'Escape') {
            if (shown) setOpen(false);
            else setText('');
          }
        }}
      />
      {shown && (
        <ul id={listId} role="listbox" aria-label={t.search.results} className="search-results" aria-busy={isFetching} data-testid="search-results">
          {error ? (
            <li role="presentation" className="error">{t.common.error}</li>
          ) : q && data && hits.length === 0 && !isFetching ? (
            <li role="presentation" className="muted">{t.search.none(q)}</li>
          ) : null}
          {group(t.search.songs, groups.songs)}
          {group(t.search.artists, groups.artists)}
          {group(t.search.albums, groups.albums)}
        </ul>
      )}
    </div>
  );
});
