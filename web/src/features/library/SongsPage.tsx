import { useCallback, useMemo } from 'react';
import { t } from '../../i18n';
import { SongList } from './SongList';
import { ErrorNote, Loading } from './Status';
import { useSongPages } from './queries';

export function SongsPage() {
  const q = useSongPages();
  const songs = useMemo(() => q.data?.pages.flatMap((p) => p.items) ?? [], [q.data]);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = q;
  const more = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);
  return (
    <>
      <h1>{t.songs.title}</h1>
      {q.isLoading ? <Loading /> : q.error ? <ErrorNote error={q.error} retry={() => void q.refetch()} /> : songs.length === 0 ? <p className="muted">{t.common.empty}</p> : <SongList songs={songs} onNearEnd={more} />}
      {isFetchingNextPage && <Loading />}
    </>
  );
}
