// Upload state: a queue of files sent at most `concurrency` at a time, each with its progress and
// outcome. The transport is injected (XMLHttpRequest in the browser, for upload progress events; a
// fake in tests), so the rules — the limit, the mapping from HTTP status to what the person reads,
// retry — are tested without a network.
import { handleStatus, mutationHeaders, uploadUrl } from '../../lib/api';

export type UploadStatus = 'queued' | 'uploading' | 'done' | 'already' | 'error';
export type UploadError =
  | 'too-large'
  | 'not-audio'
  | 'no-album'
  | 'no-quorum'
  | 'busy'
  | 'no-space'
  | 'network'
  | 'forbidden'
  | 'signed-out'
  | 'failed';

export interface UploadItem {
  id: number;
  file: File;
  path: string; // relative path within what was dropped: the file id derives from it
  albumId?: string; // an album picture's album, from the answers for the songs of its folder
  status: UploadStatus;
  loaded: number;
  total: number;
  error?: UploadError;
  message?: string;
  retryable: boolean;
}

export interface SendResult {
  status: number; // 0: the request never got an answer
  body: string;
}

export interface Transport {
  send(item: UploadItem, onProgress: (loaded: number, total: number) => void): { done: Promise<SendResult>; abort: () => void };
}

export interface Outcome {
  status: UploadStatus;
  error?: UploadError;
  retryable: boolean;
}

function errorCode(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

// From the node's answer (docs/openapi.yaml, POST /music/upload) to what the person sees.
export function outcomeOf(res: SendResult): Outcome {
  const { status } = res;
  if (status === 201) return { status: 'done', retryable: false };
  if (status === 200) return { status: 'already', retryable: false };
  if (status === 409) {
    // already_exists: other bytes under this id; conflict: the same id being uploaded right now;
    // no_album: an album picture whose folder holds no song (yet).
    const code = errorCode(res.body);
    if (code === 'conflict') return { status: 'error', error: 'busy', retryable: true };
    if (code === 'no_album') return { status: 'error', error: 'no-album', retryable: true };
    return { status: 'already', retryable: false };
  }
  // Security on: the account may not upload (a listener, or an uploader replacing another's song);
  // signed out (the login page follows); a stale CSRF token (sign in again in this tab).
  if (status === 403) return { status: 'error', error: errorCode(res.body) === 'csrf' ? 'signed-out' : 'forbidden', retryable: false };
  if (status === 401) return { status: 'error', error: 'signed-out', retryable: true };
  if (status === 413) return { status: 'error', error: 'too-large', retryable: false };
  if (status === 415) return { status: 'error', error: 'not-audio', retryable: false };
  if (status === 503 || status === 504) return { status: 'error', error: 'no-quorum', retryable: true };
  if (status === 507) return { status: 'error', error: 'no-space', retryable: true };
  if (status === 0) return { status: 'error', error: 'network', retryable: true };
  return { status: 'error', error: 'failed', retryable: status >= 500 || status === 408 };
}

export interface UploadManagerOptions {
  transport: Transport;
  concurrency?: number;
  onStored?: (item: UploadItem) => void; // a new song is in the catalog
}

export interface UploadManager {
  add(files: { file: File; path: string }[]): void;
  retry(id: number): void;
  clearFinished(): void;
  getItems(): UploadItem[];
  subscribe(listener: () => void): () => void;
  active(): number;
}

export const DEFAULT_CONCURRENCY = 3;

// An album picture as the node takes it from beside the songs (common/file_id.h's
// IsAlbumPictureName): cover, folder or front, .jpg .jpeg .png .webp, any case.
export function isAlbumPicture(path: string): boolean {
  return /(^|\/)(cover|folder|front)\.(jpe?g|png|webp)$/i.test(path);
}

function folderOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash + 1);
}

export function createUploadManager(opts: UploadManagerOptions): UploadManager {
  const limit = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
  let items: UploadItem[] = [];
  let nextId = 1;
  let running = 0;
  const listeners = new Set<() => void>();

  const emit = () => listeners.forEach((l) => l());
  const update = (id: number, patch: Partial<UploadItem>) => {
    items = items.map((it) => (it.id === id ? { ...it, ...patch } : it));
    emit();
  };

  // The albums of the songs stored from each folder (by the node's answers): an album picture
  // names its album when its folder's songs have exactly one, rather than leaving the node to
  // guess it from file ids.
  const folderAlbums = new Map<string, Set<string>>();
  function albumOf(picture: UploadItem): string | undefined {
    const folder = folderOf(picture.path);
    const albums = new Set<string>();
    folderAlbums.forEach((ids, f) => {
      if (f.startsWith(folder)) ids.forEach((a) => albums.add(a));
    });
    return albums.size === 1 ? [...albums][0] : undefined;
  }
  function noteAlbum(item: UploadItem, body: string): void {
    if (isAlbumPicture(item.path)) return;
    try {
      const albumId = (JSON.parse(body) as { album_id?: string }).album_id;
      if (!albumId) return;
      const folder = folderOf(item.path);
      if (!folderAlbums.has(folder)) folderAlbums.set(folder, new Set());
      folderAlbums.get(folder)?.add(albumId);
    } catch {
      // Not JSON: nothing to learn.
    }
  }

  function start(queued: UploadItem): void {
    running++;
    const albumId = isAlbumPicture(queued.path) ? albumOf(queued) : undefined;
    const item: UploadItem = { ...queued, albumId };
    update(item.id, { status: 'uploading', loaded: 0, error: undefined, message: undefined, albumId });
    const { done } = opts.transport.send(item, (loaded, total) => update(item.id, { loaded, total }));
    done
      .catch((): SendResult => ({ status: 0, body: '' }))
      .then((res) => {
        running--;
        const o = outcomeOf(res);
        if (o.status === 'done' || o.status === 'already') noteAlbum(item, res.body);
        update(item.id, { status: o.status, error: o.error, retryable: o.retryable, loaded: o.status === 'error' ? 0 : item.total });
        if (o.status === 'done' || o.status === 'already') opts.onStored?.(item);
        pump();
      });
  }

  // The node finds an album picture's album from the songs beside it, so a picture waits until
  // no song of its folder (or below) is queued or on its way.
  function ready(it: UploadItem): boolean {
    if (!isAlbumPicture(it.path)) return true;
    const folder = folderOf(it.path);
    return !items.some(
      (o) =>
        o !== it &&
        !isAlbumPicture(o.path) &&
        (o.status === 'queued' || o.status === 'uploading') &&
        o.path.startsWith(folder),
    );
  }

  function pump(): void {
    while (running < limit) {
      const next = items.find((it) => it.status === 'queued' && ready(it));
      if (!next) return;
      start(next);
    }
  }

  return {
    add(files) {
      const added = files.map(({ file, path }) => ({
        id: nextId++,
        file,
        path,
        status: 'queued' as const,
        loaded: 0,
        total: file.size,
        retryable: false,
      }));
      items = [...items, ...added];
      emit();
      pump();
    },
    retry(id) {
      const it = items.find((x) => x.id === id);
      if (!it || it.status !== 'error' || !it.retryable) return;
      update(id, { status: 'queued', error: undefined, loaded: 0 });
      pump();
    },
    clearFinished() {
      items = items.filter((it) => it.status === 'queued' || it.status === 'uploading' || (it.status === 'error' && it.retryable));
      emit();
    },
    getItems: () => items,
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    active: () => running,
  };
}

// The browser's transport: a raw body with the relative path in the query (the node derives the
// file id from it), XMLHttpRequest for upload progress.
export const xhrTransport: Transport = {
  send(item, onProgress) {
    const xhr = new XMLHttpRequest();
    const done = new Promise<SendResult>((resolve) => {
      xhr.open('POST', uploadUrl(item.path, item.albumId)); // same origin: cookies go as with fetch
      xhr.setRequestHeader('Content-Type', item.file.type || 'application/octet-stream');
      for (const [k, v] of Object.entries(mutationHeaders())) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : item.total);
      xhr.onload = () => {
        handleStatus(xhr.status, errorCode(xhr.responseText));
        resolve({ status: xhr.status, body: xhr.responseText });
      };
      xhr.onerror = () => resolve({ status: 0, body: '' });
      xhr.onabort = () => resolve({ status: 0, body: '' });
      xhr.send(item.file);
    });
    return { done, abort: () => xhr.abort() };
  },
};
