import { createContext, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { t } from '../../i18n';
import { Icon } from '../../lib/Icon';
import { useCan } from '../auth/useAuth';
import { catalogRoots } from '../library/queries';
import { filesFromDataTransfer, filesFromInput } from './collect';
import { createUploadManager, xhrTransport, type UploadError, type UploadItem, type UploadManager } from './manager';

const Ctx = createContext<UploadManager | null>(null);

export function useUploads(): UploadManager {
  const m = useContext(Ctx);
  if (!m) throw new Error('useUploads outside UploadProvider');
  return m;
}

// New songs show up without a reload: the catalog's queries are invalidated, at most once a second
// while a batch is uploading.
export function UploadProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const manager = useMemo(
    () =>
      createUploadManager({
        transport: xhrTransport,
        onStored: () => {
          if (timer.current) return;
          timer.current = setTimeout(() => {
            timer.current = null;
            for (const root of catalogRoots) void qc.invalidateQueries({ queryKey: [root] });
          }, 1000);
        },
      }),
    [qc],
  );
  return <Ctx.Provider value={manager}>{children}</Ctx.Provider>;
}

function hasFiles(e: DragEvent): boolean {
  return Array.from(e.dataTransfer?.types ?? []).includes('Files');
}

// Files or folders dropped anywhere on the page are uploaded (when the account may upload).
export function DropZone() {
  const manager = useUploads();
  const allowed = useCan('upload');
  const [over, setOver] = useState(false);
  useEffect(() => {
    if (!allowed) return;
    let depth = 0;
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth++;
      setOver(true);
    };
    const leave = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) setOver(false);
    };
    const overFn = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const drop = (e: DragEvent) => {
      if (!hasFiles(e) || !e.dataTransfer) return;
      e.preventDefault();
      depth = 0;
      setOver(false);
      void filesFromDataTransfer(e.dataTransfer).then((files) => files.length && manager.add(files));
    };
    window.addEventListener('dragenter', enter);
    window.addEventListener('dragleave', leave);
    window.addEventListener('dragover', overFn);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragenter', enter);
      window.removeEventListener('dragleave', leave);
      window.removeEventListener('dragover', overFn);
      window.removeEventListener('drop', drop);
    };
  }, [manager, allowed]);
  if (!over || !allowed) return null;
  return (
    <div className="drop-overlay" data-testid="drop-overlay" aria-hidden="true">
      <div>{t.upload.drop}</div>
    </div>
  );
}

// Shown only to roles that may upload (uploader, admin; everyone with security off).
export function UploadButton() {
  const manager = useUploads();
  const input = useRef<HTMLInputElement>(null);
  if (!useCan('upload')) return null;
  return (
    <>
      <button type="button" className="upload-button" onClick={() => input.current?.click()}>
        <Icon name="upload" size={18} /> {t.nav.upload}
      </button>
      <input
        ref={input}
        type="file"
        multiple
        accept="audio/*"
        hidden
        aria-label={t.upload.choose}
        data-testid="upload-input"
        onChange={(e) => {
          manager.add(filesFromInput(e.target.files));
          e.target.value = '';
        }}
      />
    </>
  );
}

const errorText: Record<UploadError, string> = {
  'too-large': t.upload.tooLarge,
  'not-audio': t.upload.notAudio,
  'no-album': t.upload.noAlbum,
  'no-quorum': t.upload.noQuorum,
  busy: t.upload.busy,
  'no-space': t.upload.noSpace,
  network: t.upload.network,
  forbidden: t.upload.forbidden,
  'signed-out': t.upload.signedOut,
  failed: t.upload.failed,
};

function statusText(it: UploadItem): string {
  switch (it.status) {
    case 'queued': return t.upload.queued;
    case 'uploading': return t.upload.uploading;
    case 'done': return t.upload.done;
    case 'already': return t.upload.already;
    case 'error': return errorText[it.error ?? 'failed'];
  }
}

export function UploadPanel() {
  const manager = useUploads();
  const items = useSyncExternalStore(manager.subscribe, manager.getItems);
  const [closed, setClosed] = useState(false);
  useEffect(() => setClosed(false), [items.length]);
  if (items.length === 0 || closed) return null;
  const finished = items.filter((i) => i.status === 'done' || i.status === 'already' || i.status === 'error').length;
  const totalBytes = items.reduce((a, i) => a + i.total, 0);
  const doneBytes = items.reduce((a, i) => a + (i.status === 'done' || i.status === 'already' ? i.total : i.loaded), 0);
  return (
    <section className="upload-panel" aria-label={t.upload.title} data-testid="upload-panel">
      <div className="upload-head">
        <h2>{t.upload.title}</h2>
        <span className="muted small">{t.upload.overall(finished, items.length)}</span>
        <button type="button" onClick={manager.clearFinished}>{t.upload.dismiss}</button>
        <button type="button" className="icon" aria-label={t.upload.close} onClick={() => setClosed(true)}><Icon name="close" size={16} /></button>
      </div>
      <progress className="overall" max={Math.max(totalBytes, 1)} value={doneBytes} aria-label={t.upload.overall(finished, items.length)} />
      <ul className="upload-list">
        {items.map((it) => (
          <li key={it.id} className={`upload-item ${it.status}`} data-testid="upload-item" data-status={it.status}>
            <span className="upload-name" title={it.path}>{it.path}</span>
            <progress max={Math.max(it.total, 1)} value={it.status === 'done' || it.status === 'already' ? it.total : it.loaded} aria-label={it.path} />
            <span className={`small ${it.status === 'error' ? 'error' : 'muted'}`} role={it.status === 'error' ? 'alert' : undefined}>{statusText(it)}</span>
            {it.status === 'error' && it.retryable && (
              <button type="button" onClick={() => manager.retry(it.id)} aria-label={`${t.upload.retry}: ${it.path}`}>{t.upload.retry}</button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
