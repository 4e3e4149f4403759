import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { t } from '../../i18n';
import { api, ApiError, deleteSong } from '../../lib/api';
import { formatBytes } from '../../lib/format';
import { useCan } from '../auth/useAuth';
import { catalogRoots } from './queries';

type DeleteState = { step: 'idle' | 'confirm' | 'busy' | 'done' } | { step: 'error'; text: string };

// Delete, for the roles that may (uploader: its own songs; admin: any). The node does not tell
// the UI who uploaded a song, so an uploader sees the control on every song and the node's refusal
// of another's (403) is shown as such.
function DeleteSong({ fileId }: { fileId: string }) {
  const qc = useQueryClient();
  const [st, setSt] = useState<DeleteState>({ step: 'idle' });
  if (!useCan('delete')) return null;
  const run = async () => {
    setSt({ step: 'busy' });
    try {
      await deleteSong(fileId);
      setSt({ step: 'done' });
      for (const root of [...catalogRoots, 'song']) void qc.invalidateQueries({ queryKey: [root] });
    } catch (e) {
      const text =
        e instanceof ApiError && e.status === 403 && e.code === 'forbidden'
          ? t.song.deleteForbidden
          : t.song.deleteFailed(e instanceof Error ? e.message : String(e));
      setSt({ step: 'error', text });
    }
  };
  if (st.step === 'done') return <p className="small" role="status" data-testid="delete-done">{t.song.deleted}</p>;
  return (
    <div className="delete-song">
      {st.step === 'confirm' || st.step === 'busy' ? (
        <>
          <button type="button" className="danger" data-testid="delete-confirm" disabled={st.step === 'busy'} onClick={() => void run()}>
            {st.step === 'busy' ? t.song.deleting : t.song.confirmDelete}
          </button>
          <button type="button" onClick={() => setSt({ step: 'idle' })}>{t.song.cancel}</button>
        </>
      ) : (
        <button type="button" data-testid="delete-song" onClick={() => setSt({ step: 'confirm' })}>{t.song.delete}</button>
      )}
      {st.step === 'error' && <p className="error small" role="alert" data-testid="delete-error">{st.text}</p>}
    </div>
  );
}

// Which nodes hold the song's copies (GET /music/songs/{id}, with its replicas), for the player's
// details panel, and its delete control.
export function SongDetails({ fileId }: { fileId: string }) {
  const q = useQuery({ queryKey: ['song', fileId], queryFn: ({ signal }) => api.song(fileId, signal), staleTime: 5_000 });
  if (!q.data) return <p className="muted small">{q.error ? t.common.error : t.common.loading}</p>;
  const s = q.data;
  return (
    <>
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
      <DeleteSong fileId={s.file_id} />
    </>
  );
}
