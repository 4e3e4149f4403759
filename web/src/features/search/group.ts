// Search results grouped as songs, artists and albums, all derived from the server's ranked song
// hits (a group's rank is that of its best song), flattened into one list for keyboard navigation.
import type { AlbumSummary, ArtistSummary, Song } from '../../lib/api';
import { groupAlbums, groupArtists } from '../library/derive';

export type ResultOption =
  | { kind: 'song'; id: string; song: Song; index: number }
  | { kind: 'artist'; id: string; artist: ArtistSummary }
  | { kind: 'album'; id: string; album: AlbumSummary };

export interface Grouped {
  songs: ResultOption[];
  artists: ResultOption[];
  albums: ResultOption[];
  flat: ResultOption[];
}

export function groupResults(hits: Song[], max = { songs: 8, artists: 4, albums: 4 }): Grouped {
  const songs: ResultOption[] = hits.slice(0, max.songs).map((song, index) => ({ kind: 'song', id: `s-${index}`, song, index }));
  const artists: ResultOption[] = groupArtists(hits)
    .slice(0, max.artists)
    .map((artist, i) => ({ kind: 'artist', id: `r-${i}`, artist }));
  const albums: ResultOption[] = groupAlbums(hits)
    .slice(0, max.albums)
    .map(({ songs: _songs, genres: _genres, ...album }, i) => ({ kind: 'album', id: `a-${i}`, album }));
  return { songs, artists, albums, flat: [...songs, ...artists, ...albums] };
}

// Arrow keys move through the flat list and wrap; -1 is "in the text box".
export function moveActive(active: number, delta: number, count: number): number {
  if (count === 0) return -1;
  if (active < 0) return delta > 0 ? 0 : count - 1;
  return (active + delta + count) % count;
}
