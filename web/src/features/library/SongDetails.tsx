import { useQuery } from '@tanstack/react-query';
import { t } from '../../i18n';
import { api } from '../../lib/api';
import { formatBytes } from '../../lib/format';

// Which nodes hold the song's copies (GET /music/songs/{id}, with its replicas), for the player's
// details panel.
export function SongDetails({ fileId }: { fileId: string }) {
  const q = useQuery({ queryKey: ['song', fileId], queryFn: ({ signal }) => api.song(fileId, signal), staleTime: 5_000 });
  if (!q.data) return <p className="muted small">{q.error ? t.common.error : t.common.loading}</p>;
  const s = q.data;
  return (
    <dl className="song-details" data-testid="song-details">
      <dt>{t.song.file}</dt>
      <dd>{s.file_id} · {formatBytes(s.size_bytes)} · {s.content_type}</dd>
      <dt>{t.song.replicas}</dt>
      <dd>
        <ul className="replicas">
          {(s.replicas ?? []).map((r) => (
            <li key={r.node_id} data-testid="replica" data-state={r.state}>
              <span className={`dot ${r.state === 'healthy' ? 'ok' : 'bad'}`} aria-hidden="true" /> {t.cluster.node} {r.node_id}: {r.state}
            </li>
          ))}
        </ul>
      </dd>
    </dl>
  );
}
