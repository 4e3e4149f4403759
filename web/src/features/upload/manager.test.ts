import { describe, expect, it, vi } from 'vitest';
import { createUploadManager, isAlbumPicture, outcomeOf, type SendResult, type Transport, type UploadItem } from './manager';

function fakeTransport() {
  const pending: { item: UploadItem; resolve: (r: SendResult) => void; progress: (l: number, t: number) => void }[] = [];
  let maxInFlight = 0;
  let inFlight = 0;
  const transport: Transport = {
    send(item, onProgress) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let resolve!: (r: SendResult) => void;
      const done = new Promise<SendResult>((r) => (resolve = r)).finally(() => inFlight--);
      pending.push({ item, resolve, progress: onProgress });
      return { done, abort: () => resolve({ status: 0, body: '' }) };
    },
  };
  return { transport, pending, max: () => maxInFlight };
}

const file = (name: string, size = 10) => new File([new Uint8Array(size)], name, { type: 'audio/mpeg' });
const flush = () => new Promise((r) => setTimeout(r, 0));

describe('upload state', () => {
  it('sends at most 3 at a time and starts the next as one finishes', async () => {
    const f = fakeTransport();
    const m = createUploadManager({ transport: f.transport });
    m.add(Array.from({ length: 7 }, (_, i) => ({ file: file(`${i}.mp3`), path: `Album/${i}.mp3` })));
    expect(f.pending).toHaveLength(3);
    expect(m.getItems().filter((i) => i.status === 'uploading')).toHaveLength(3);
    expect(m.getItems().filter((i) => i.status === 'queued')).toHaveLength(4);
    f.pending[0].resolve({ status: 201, body: '{}' });
    await flush();
    expect(f.pending).toHaveLength(4);
    for (let k = 1; k < 7; k++) {
      f.pending[k]?.resolve({ status: 201, body: '{}' });
      await flush();
    }
    expect(f.max()).toBe(3);
    expect(m.getItems().every((i) => i.status === 'done')).toBe(true);
    expect(f.pending.map((p) => p.item.path)).toEqual(Array.from({ length: 7 }, (_, i) => `Album/${i}.mp3`));
  });

  it('reports per-file progress', () => {
    const f = fakeTransport();
    const m = createUploadManager({ transport: f.transport });
    m.add([{ file: file('a.mp3', 100), path: 'a.mp3' }]);
    f.pending[0].progress(40, 100);
    expect(m.getItems()[0]).toMatchObject({ loaded: 40, total: 100, status: 'uploading' });
  });

  it('maps statuses to what the person reads', () => {
    const r = (status: number, code?: string) => outcomeOf({ status, body: code ? JSON.stringify({ error: { code, message: 'x' } }) : '' });
    expect(r(201)).toEqual({ status: 'done', retryable: false });
    expect(r(200)).toEqual({ status: 'already', retryable: false });
    expect(r(409, 'already_exists')).toEqual({ status: 'already', retryable: false });
    expect(r(409, 'conflict')).toEqual({ status: 'error', error: 'busy', retryable: true });
    expect(r(413)).toEqual({ status: 'error', error: 'too-large', retryable: false });
    expect(r(415)).toEqual({ status: 'error', error: 'not-audio', retryable: false });
    expect(r(503)).toEqual({ status: 'error', error: 'no-quorum', retryable: true });
    expect(r(507)).toEqual({ status: 'error', error: 'no-space', retryable: true });
    expect(r(0)).toEqual({ status: 'error', error: 'network', retryable: true });
    expect(r(400)).toEqual({ status: 'error', error: 'failed', retryable: false });
  });

  it('retries a 503 on request and tells when a song is stored', async () => {
    const f = fakeTransport();
    const stored = vi.fn();
    const m = createUploadManager({ transport: f.transport, onStored: stored });
    m.add([{ file: file('a.mp3'), path: 'a.mp3' }, { file: file('b.txt'), path: 'b.txt' }]);
    f.pending[0].resolve({ status: 503, body: '{"error":{"code":"unavailable","message":"no quorum"}}' });
    f.pending[1].resolve({ status: 415, body: '' });
    await flush();
    const [a, b] = m.getItems();
    expect(a).toMatchObject({ status: 'error', error: 'no-quorum', retryable: true });
    expect(b).toMatchObject({ status: 'error', error: 'not-audio', retryable: false });
    m.retry(b.id); // not retryable: nothing happens
    expect(f.pending).toHaveLength(2);
    m.retry(a.id);
    expect(f.pending).toHaveLength(3);
    expect(m.getItems()[0].status).toBe('uploading');
    f.pending[2].resolve({ status: 201, body: '{}' });
    await flush();
    expect(m.getItems()[0].status).toBe('done');
    expect(stored).toHaveBeenCalledTimes(1);
    m.clearFinished();
    expect(m.getItems()).toHaveLength(0);
  });

  it('a transport that throws counts as a network error', async () => {
    const m = createUploadManager({
      transport: { send: () => ({ done: Promise.reject(new Error('boom')), abort: () => {} }) },
    });
    m.add([{ file: file('a.mp3'), path: 'a.mp3' }]);
    await flush();
    expect(m.getItems()[0]).toMatchObject({ status: 'error', error: 'network', retryable: true });
  });

  it('sends an album picture after the songs of its folder, and says when it has no album', async () => {
    const f = fakeTransport();
    const m = createUploadManager({ transport: f.transport, concurrency: 3 });
    m.add([
      { file: file('cover.jpg'), path: 'A/cover.jpg' },
      { file: file('1.mp3'), path: 'A/1.mp3' },
      { file: file('2.mp3'), path: 'A/Disc 2/2.mp3' },
      { file: file('3.mp3'), path: 'B/3.mp3' },
      { file: file('back.jpg'), path: 'A/back.jpg' },
    ]);
    // The picture waits; the others (back.jpg is no album picture: the node judges it) go.
    expect(f.pending.map((p) => p.item.path)).toEqual(['A/1.mp3', 'A/Disc 2/2.mp3', 'B/3.mp3']);
    f.pending[0].resolve({ status: 201, body: '{"album_id":"00000000000000aa"}' });
    await flush();
    expect(f.pending.map((p) => p.item.path)).toEqual(['A/1.mp3', 'A/Disc 2/2.mp3', 'B/3.mp3', 'A/back.jpg']);
    f.pending[1].resolve({ status: 201, body: '{}' });
    await flush();
    expect(f.pending).toHaveLength(4); // back.jpg, in A, is still on its way
    f.pending[3].resolve({ status: 400, body: '{}' });
    await flush();
    expect(f.pending[4].item.path).toBe('A/cover.jpg');
    expect(f.pending[4].item.albumId).toBe('00000000000000aa'); // the album its folder's songs named
    f.pending[4].resolve({ status: 409, body: '{"error":{"code":"no_album","message":"no song"}}' });
    await flush();
    const cover = m.getItems().find((i) => i.path === 'A/cover.jpg');
    expect(cover?.error).toBe('no-album');
    expect(cover?.retryable).toBe(true);
    expect(isAlbumPicture('x/Folder.PNG')).toBe(true);
    expect(isAlbumPicture('x/mycover.jpg')).toBe(false);
  });
});
