import { useQuery } from '@tanstack/react-query';
import { t } from '../../i18n';
import { api } from '../../lib/api';
import { formatBytes } from '../../lib/format';
import { ErrorNote, Loading } from '../library/Status';

export const CLUSTER_POLL_MS = 2000;

// This node's view of the cluster, refreshed every 2 s (GET /cluster/status).
export function ClusterPage() {
  const q = useQuery({ queryKey: ['cluster'], queryFn: ({ signal }) => api.clusterStatus(signal), refetchInterval: CLUSTER_POLL_MS, retry: false });
  const s = q.data;
  return (
    <>
      <h1>{t.cluster.title}</h1>
      {q.isLoading ? <Loading /> : !s ? <ErrorNote error={q.error} /> : (
        <>
          {q.error ? <ErrorNote error={q.error} /> : null}
          <dl className="stats" data-testid="cluster-summary">
            <div><dt>{t.cluster.leader}</dt><dd data-testid="cluster-leader">{s.leader_id ? `${t.cluster.node} ${s.leader_id}` : t.cluster.none}</dd></div>
            <div><dt>{t.cluster.term}</dt><dd>{s.term}</dd></div>
            <div><dt>{t.cluster.replication}</dt><dd>{s.replication_factor}</dd></div>
            <div><dt>{t.cluster.underReplicated}</dt><dd data-testid="under-replicated">{s.repair?.under_replicated ?? '–'}</dd></div>
            <div><dt>{t.cluster.unavailable}</dt><dd>{s.repair?.unavailable ?? '–'}</dd></div>
            <div><dt>{t.cluster.repair}</dt><dd data-testid="repair-progress">{s.repair ? `${s.repair.queued ?? 0} / ${s.repair.copies_made ?? 0}` : '–'}</dd></div>
            <div><dt>{t.cluster.songs}</dt><dd>{s.songs ?? '–'}</dd></div>
            <div><dt>{t.cluster.thisNode}</dt><dd>{t.cluster.node} {s.node_id} ({s.role})</dd></div>
            <div><dt>{t.cluster.version}</dt><dd>{s.version}</dd></div>
          </dl>
          <h2>{t.cluster.members}</h2>
          {/* Scrolls sideways on a phone: focusable so that keyboards can scroll it too. */}
          <div className="table-wrap" role="region" aria-label={t.cluster.members} tabIndex={0}>
            <table data-testid="cluster-members">
              <thead>
                <tr>
                  <th scope="col">{t.cluster.node}</th>
                  <th scope="col">{t.cluster.address}</th>
                  <th scope="col">{t.cluster.role}</th>
                  <th scope="col">{t.cluster.health}</th>
                  <th scope="col">{t.cluster.files}</th>
                  <th scope="col">{t.cluster.free}</th>
                </tr>
              </thead>
              <tbody>
                {s.members.map((member) => {
                  // The node answering reports its own copies and disk under `local`.
                  const own = member.node_id === s.node_id ? s.local : undefined;
                  const m = { ...member, files: member.files ?? own?.files, free_bytes: member.free_bytes ?? own?.free_bytes };
                  return (
                  <tr key={m.node_id} data-testid="cluster-member" data-healthy={m.healthy} data-role={m.role}>
                    <th scope="row">{m.node_id}{m.node_id === s.node_id ? ' *' : ''}</th>
                    <td>{m.address}</td>
                    <td>{m.role}{m.draining ? ' (draining)' : ''}</td>
                    <td><span className={`dot ${m.healthy ? 'ok' : 'bad'}`} aria-hidden="true" /> {m.healthy ? t.cluster.healthy : t.cluster.unhealthy}</td>
                    <td>{m.files ?? '–'}</td>
                    <td>{formatBytes(m.free_bytes)}</td>
                  </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </>
  );
}

