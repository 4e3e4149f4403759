// Albums and artists derived from songs, for search results (the server ranks songs; the groups
// follow the rank of their best song) and for nodes without the album/artist routes yet.
import type { AlbumDetail, AlbumSummary, ArtistSummary, Song } from '../../lib/api';

// A derived album's id: not a server album_id (16 hex digits), so the album page knows to build it
// from songs.
export const DERIVED_PREFIX = '~';

export function albumArtistOf(song: Song): string {
  return song.album_artist || song.artist;
}

export function albumKey(song: Song): string {
  if (song.album_id) return song.album_id;
  return DERIVED_PREFIX + albumArtistOf(song) + '\u0001' + song.album;
}

export function isDerivedAlbumId(id: string): boolean {
  return id.startsWith(DERIVED_PREFIX);
}

export function compareTracks(a: Song, b: Song): number {
  return (a.disc ?? 0) - (b.disc ?? 0) || a.track - b.track || a.title.localeCompare(b.title) || a.file_id.localeCompare(b.file_id);
}

// Albums in the order of their first song in `songs`.
export function groupAlbums(songs: Song[]): AlbumDetail[] {
  const byKey = new Map<string, AlbumDetail>();
  for (const s of songs) {
    if (!s.album) continue;
    const key = albumKey(s);
    let a = byKey.get(key);
    if (!a) {
      a = {
        album_id: key,
        title: s.album,
        album_artist: albumArtistOf(s),
        year: s.year,
        song_count: 0,
        duration_ms: 0,
        created_at_ms: s.created_at_ms,
        cover: '',
        genres: [],
        songs: [],
      };
      byKey.set(key, a);
    }
    a.song_count++;
    a.duration_ms += s.duration_ms;
    a.year = a.year || s.year;
    if (!a.cover && s.cover) a.cover = s.cover;
    a.created_at_ms = Math.max(a.created_at_ms, s.created_at_ms);
    if (s.genre && !a.genres.includes(s.genre)) a.genres.push(s.genre);
    a.songs.push(s);
  }
  for (const a of byKey.values()) a.songs.sort(compareTracks);
  return [...byKey.values()];
}

// Artists in the order of their first song in `songs` (by album artist and by track artist).
export function groupArtists(songs: Song[]): ArtistSummary[] {
  const byName = new Map<string, { name: string; albums: Set<string>; songs: number }>();
  for (const s of songs) {
    for (const name of new Set([albumArtistOf(s), s.artist])) {
      if (!name) continue;
      let a = byName.get(name);
      if (!a) {
        a = { name, albums: new Set(), songs: 0 };
        byName.set(name, a);
      }
      a.songs++;
      if (s.album) a.albums.add(albumKey(s));
    }
  }
  return [...byName.values()].map((a) => ({ name: a.name, album_count: a.albums.size, song_count: a.songs }));
}

export function sortAlbums(albums: AlbumSummary[], sort: 'name' | 'year' | 'recent'): AlbumSummary[] {
  const out = [...albums];
  if (sort === 'name') out.sort((a, b) => a.title.localeCompare(b.title));
  else if (sort === 'year') out.sort((a, b) => b.year - a.year || a.title.localeCompare(b.title));
  else out.sort((a, b) => b.created_at_ms - a.created_at_ms);
  return out;
}
