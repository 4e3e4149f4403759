// Server state for the library pages (TanStack Query: cached, deduplicated, cancelled when unused).
// While a node has no /music/albums or /music/artists (404), the pages fall back to grouping the
// song list on the client: bounded to FALLBACK_MAX_SONGS, a stopgap, not a scaling path.
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { api, isNotFound, type AlbumDetail, type AlbumSort, type AlbumSummary, type ArtistSummary, type Song } from '../../lib/api';
import { groupAlbums, groupArtists, isDerivedAlbumId, sortAlbums } from './derive';

export const SONGS_PAGE = 200;
export const GRID_PAGE = 100;
const FALLBACK_MAX_SONGS = 5000;

export const keys = {
  songs: ['songs'] as const,
  albums: (sort: AlbumSort, artist?: string) => ['albums', sort, artist ?? ''] as const,
  album: (id: string) => ['album', id] as const,
  artists: ['artists'] as const,
  allSongs: ['all-songs'] as const,
  search: (q: string) => ['search', q] as const,
};

// Every query key holding catalog data: invalidated when an upload lands.
export const catalogRoots = ['songs', 'albums', 'album', 'artists', 'all-songs', 'search'];

export function useSongPages() {
  return useInfiniteQuery({
    queryKey: keys.songs,
    queryFn: ({ pageParam, signal }) => api.songs(pageParam, SONGS_PAGE, signal),
    initialPageParam: '',
    getNextPageParam: (last) => (last.next_after ? last.next_after : undefined),
  });
}

async function fetchAllSongs(signal: AbortSignal): Promise<Song[]> {
  const out: Song[] = [];
  let after = '';
  do {
    const page = await api.songs(after, 1000, signal);
    out.push(...page.items);
    after = page.next_after;
  } while (after && out.length < FALLBACK_MAX_SONGS);
  return out;
}

export function useAllSongsFallback(enabled: boolean) {
  return useQuery({ queryKey: keys.allSongs, queryFn: ({ signal }) => fetchAllSongs(signal), enabled, staleTime: 30_000 });
}

const retryUnless404 = (count: number, e: unknown) => !isNotFound(e) && count < 2;

export interface Listing<T> {
  items: T[];
  isLoading: boolean;
  error: unknown;
  derived: boolean;
  hasNextPage: boolean;
  fetchNextPage: () => void;
  isFetchingNextPage: boolean;
}

export function useAlbums(sort: AlbumSort, artist?: string): Listing<AlbumSummary> {
  const q = useInfiniteQuery({
    queryKey: keys.albums(sort, artist),
    queryFn: ({ pageParam, signal }) => api.albums({ after: pageParam, limit: GRID_PAGE, sort, artist }, signal),
    initialPageParam: '',
    getNextPageParam: (last) => (last.next_after ? last.next_after : undefined),
    retry: retryUnless404,
  });
  const derived = isNotFound(q.error);
  const all = useAllSongsFallback(derived);
  if (derived) {
    let albums: AlbumSummary[] = groupAlbums(all.data ?? []);
    if (artist) albums = albums.filter((a) => a.album_artist === artist || (a as AlbumDetail).songs.some((s) => s.artist === artist));
    return { items: sortAlbums(albums, sort), isLoading: all.isLoading, error: all.error, derived, hasNextPage: false, fetchNextPage: () => {}, isFetchingNextPage: false };
  }
  return {
    items: q.data?.pages.flatMap((p) => p.items) ?? [],
    isLoading: q.isLoading,
    error: q.error,
    derived,
    hasNextPage: q.hasNextPage,
    fetchNextPage: () => void q.fetchNextPage(),
    isFetchingNextPage: q.isFetchingNextPage,
  };
}

export function useArtists(): Listing<ArtistSummary> {
  const q = useInfiniteQuery({
    queryKey: keys.artists,
    queryFn: ({ pageParam, signal }) => api.artists(pageParam, GRID_PAGE, signal),
    initialPageParam: '',
    getNextPageParam: (last) => (last.next_after ? last.next_after : undefined),
    retry: retryUnless404,
  });
  const derived = isNotFound(q.error);
  const all = useAllSongsFallback(derived);
  if (derived) {
    const items = groupArtists(all.data ?? []).sort((a, b) => a.name.localeCompare(b.name));
    return { items, isLoading: all.isLoading, error: all.error, derived, hasNextPage: false, fetchNextPage: () => {}, isFetchingNextPage: false };
  }
  return {
    items: q.data?.pages.flatMap((p) => p.items) ?? [],
    isLoading: q.isLoading,
    error: q.error,
    derived,
    hasNextPage: q.hasNextPage,
    fetchNextPage: () => void q.fetchNextPage(),
    isFetchingNextPage: q.isFetchingNextPage,
  };
}

export function useAlbum(id: string): { data?: AlbumDetail; isLoading: boolean; error: unknown } {
  const derivedId = isDerivedAlbumId(id);
  const q = useQuery({
    queryKey: keys.album(id),
    queryFn: ({ signal }) => api.album(id, signal),
    enabled: !derivedId,
    retry: retryUnless404,
  });
  const all = useAllSongsFallback(derivedId);
  if (derivedId) {
    const album = groupAlbums(all.data ?? []).find((a) => a.album_id === id);
    return { data: album, isLoading: all.isLoading, error: all.error ?? (!all.isLoading && !album ? new Error('not found') : null) };
  }
  return { data: q.data, isLoading: q.isLoading, error: q.error };
}
