// The player: one small store that outlives page changes, and the engine that drives two <audio>
// elements from it: the active one plays, the spare one loads the next song near the end and takes
// over when the active one ends (gapless.ts). Everything else talks to the player through `player`
// (the actions) and `usePlayer` (a selector over the state); nothing else touches the elements.
import { useSyncExternalStore } from 'react';
import { coverSha, coverUrl, streamUrl, type Song } from '../../lib/api';
import * as G from './gapless';
import * as Q from './queue';
import * as R from './resume';

export interface PlayerState {
  queue: Q.QueueState;
  playing: boolean; // what the listener wants (the element may be buffering)
  position: number; // seconds
  duration: number; // seconds, 0 while unknown
  volume: number; // 0..1
  muted: boolean;
  reconnecting: boolean;
  failed: boolean;
  queueOpen: boolean;
  active: number; // which of the two elements plays (the other preloads)
  resumes: number; // reloads after a broken stream, since the page loaded
}

const VOLUME_KEY = 'dispotify.volume';

function savedVolume(): number {
  try {
    const v = Number(globalThis.localStorage?.getItem(VOLUME_KEY));
    return Number.isFinite(v) && v > 0 && v <= 1 ? v : 1;
  } catch {
    return 1;
  }
}

let state: PlayerState = {
  queue: Q.emptyQueue,
  playing: false,
  position: 0,
  duration: 0,
  volume: savedVolume(),
  muted: false,
  reconnecting: false,
  failed: false,
  queueOpen: false,
  active: 0,
  resumes: 0,
};
const listeners = new Set<() => void>();

function set(patch: Partial<PlayerState>): void {
  state = { ...state, ...patch };
  for (const l of listeners) l();
}

export function getPlayerState(): PlayerState {
  return state;
}

export function subscribePlayer(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function usePlayer<T>(select: (s: PlayerState) => T): T {
  return useSyncExternalStore(subscribePlayer, () => select(state), () => select(state));
}

// ---- the engine -----------------------------------------------------------------------------

let elements: HTMLAudioElement[] = [];
let audio: HTMLAudioElement | null = null; // the active element
let spare: HTMLAudioElement | null = null;
let loaded: { song: Song; url: string } | null = null;
let preloaded: { song: Song; url: string } | null = null; // what the spare element holds
let preloadFailed: Song | null = null; // not tried again in the spare element: loaded when due
let resume: R.ResumeState = R.initialResume;
let reloadTimer: ReturnType<typeof setTimeout> | null = null;
let reloading = false;
let pendingMeta: (() => void) | null = null; // the loadedmetadata listener of a reload in flight

function dropPendingMeta(): void {
  if (pendingMeta && audio) audio.removeEventListener('loadedmetadata', pendingMeta);
  pendingMeta = null;
}

function applyStep(step: Q.Step): void {
  if (step.stop) {
    set({ queue: step.state, playing: false });
    audio?.pause();
    return;
  }
  set({ queue: step.state });
  if (step.restart) seek(0);
  sync();
  if (state.playing) void startPlayback();
  syncPreload();
}

async function startPlayback(): Promise<void> {
  if (!audio) return;
  try {
    await audio.play();
  } catch (e) {
    // AbortError: a newer load replaced this one; NotAllowedError: autoplay refused.
    if ((e as DOMException)?.name === 'NotAllowedError') set({ playing: false });
  }
}

// Loads the current song into the element when it changed.
function sync(): void {
  const song = Q.current(state.queue);
  if (!audio) return;
  if (!song) {
    if (loaded) {
      audio.removeAttribute('src');
      audio.load();
      loaded = null;
    }
    set({ position: 0, duration: 0 });
    return;
  }
  if (loaded && loaded.song === song) return;
  preloadFailed = null;
  if (preloaded && preloaded.song === song) {
    promote();
    return;
  }
  const url = streamUrl(song);
  loaded = { song, url };
  resume = R.reset();
  if (reloadTimer) clearTimeout(reloadTimer);
  reloadTimer = null;
  reloading = false;
  dropPendingMeta();
  audio.src = url;
  set({ position: 0, duration: song.duration_ms / 1000, reconnecting: false, failed: false });
  updateMediaSession(song);
}

// The spare element, which holds the current song, becomes the active one and plays at once.
function promote(): void {
  if (!audio || !spare || !preloaded) return;
  dropPendingMeta();
  const [el, old] = [spare, audio];
  audio = el;
  spare = old;
  loaded = preloaded;
  preloaded = null;
  if (state.playing) void startPlayback();
  old.pause();
  old.removeAttribute('src');
  old.load();
  resume = R.reset();
  if (reloadTimer) clearTimeout(reloadTimer);
  reloadTimer = null;
  reloading = false;
  const duration = Number.isFinite(el.duration) && el.duration > 0 ? el.duration : loaded.song.duration_ms / 1000;
  set({ active: elements.indexOf(el), position: el.currentTime, duration, reconnecting: false, failed: false });
  updateMediaSession(loaded.song);
}

// Points the spare element at the song that should be preloaded now, or empties it: called after
// anything that can change that (time, queue, skip, seek).
function syncPreload(): void {
  if (!spare) return;
  const want = G.preloadTarget(state.queue, state.position, state.duration);
  const target = want && want !== preloadFailed ? want : null;
  if ((preloaded?.song ?? null) === target) return;
  if (preloaded) {
    spare.removeAttribute('src');
    spare.load();
    preloaded = null;
  }
  if (!target) return;
  preloaded = { song: target, url: streamUrl(target) };
  spare.src = preloaded.url;
}

function doReload(at: number): void {
  if (!audio || !loaded) return;
  const el = audio;
  reloading = true;
  set({ reconnecting: true, resumes: state.resumes + 1 });
  dropPendingMeta();
  const onMeta = () => {
    el.removeEventListener('loadedmetadata', onMeta);
    pendingMeta = null;
    // Seeking makes the browser ask for the bytes from here on: a Range request on the same URL.
    try {
      el.currentTime = at;
    } catch {
      // not seekable yet: plays from the start rather than not at all
    }
    reloading = false;
    if (state.playing) void startPlayback();
  };
  el.addEventListener('loadedmetadata', onMeta);
  pendingMeta = onMeta;
  el.src = loaded.url;
  el.load();
}

function act(action: R.ResumeAction): void {
  if (action.kind === 'reload') {
    if (reloadTimer) clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      doReload(action.at);
    }, action.delayMs);
    set({ reconnecting: true });
  } else if (action.kind === 'give-up') {
    set({ reconnecting: false, failed: true, playing: false });
  }
}

// The operating system's media controls pick the artwork size they show; 256 and 512 cover lock
// screens and notifications without fetching the 1024 one.
export function mediaArtwork(song: Pick<Song, 'cover'>): MediaImage[] {
  const sha = coverSha(song.cover);
  if (!sha) return [];
  return ([256, 512] as const).map((n) => ({ src: coverUrl(sha, n), sizes: `${n}x${n}`, type: 'image/jpeg' }));
}

function updateMediaSession(song: Song): void {
  const ms = typeof navigator !== 'undefined' ? navigator.mediaSession : undefined;
  if (!ms || typeof MediaMetadata === 'undefined') return;
  ms.metadata = new MediaMetadata({ title: song.title || song.file_name, artist: song.artist, album: song.album, artwork: mediaArtwork(song) });
}

function setupMediaSession(): void {
  const ms = typeof navigator !== 'undefined' ? navigator.mediaSession : undefined;
  if (!ms) return;
  const handlers: [MediaSessionAction, MediaSessionActionHandler][] = [
    ['play', () => player.play()],
    ['pause', () => player.pause()],
    ['previoustrack', () => player.previous()],
    ['nexttrack', () => player.next()],
    ['seekto', (d) => d.seekTime !== undefined && player.seek(d.seekTime)],
    ['seekbackward', (d) => player.seek(state.position - (d.seekOffset ?? 10))],
    ['seekforward', (d) => player.seek(state.position + (d.seekOffset ?? 10))],
  ];
  for (const [a, h] of handlers) {
    try {
      ms.setActionHandler(a, h);
    } catch {
      // an action this browser does not know
    }
  }
}

function seek(t: number): void {
  const d = state.duration || Infinity;
  const to = Math.max(0, Math.min(t, d));
  if (audio) {
    try {
      audio.currentTime = to;
    } catch {
      // no media yet
    }
  }
  resume = { ...resume, position: to };
  set({ position: to });
  syncPreload();
}

// Binds the elements; returns the unbinding. Called once by the player bar. Without a second
// element the player works the same, with a gap between songs.
export function attachAudio(first: HTMLAudioElement, second?: HTMLAudioElement): () => void {
  elements = second ? [first, second] : [first];
  audio = first;
  spare = second ?? null;
  set({ active: 0 });
  let lastSession = 0;
  const offs: (() => void)[] = [];
  for (const el of elements) {
    el.preload = 'auto';
    el.volume = state.volume;
    el.muted = state.muted;
    // Only the active element's events drive the player; the spare one only reports its failure.
    const on = <K extends keyof HTMLMediaElementEventMap>(type: K, f: () => void) => {
      const g = () => {
        if (el === audio) f();
      };
      el.addEventListener(type, g);
      offs.push(() => el.removeEventListener(type, g));
    };
    on('timeupdate', () => {
      if (reloading) return;
      resume = R.onProgress(resume, el.currentTime);
      const patch: Partial<PlayerState> = { position: el.currentTime };
      if (state.reconnecting && resume.resumeFrom === null) patch.reconnecting = false;
      set(patch);
      syncPreload();
      const now = Date.now();
      if (now - lastSession > 1000 && navigator.mediaSession?.setPositionState && Number.isFinite(el.duration)) {
        lastSession = now;
        try {
          navigator.mediaSession.setPositionState({ duration: el.duration, position: Math.min(el.currentTime, el.duration), playbackRate: el.playbackRate });
        } catch {
          // inconsistent values during a load
        }
      }
    });
    on('durationchange', () => {
      if (Number.isFinite(el.duration) && el.duration > 0) set({ duration: el.duration });
      syncPreload();
    });
    on('playing', () => {
      resume = R.onPlaying(resume);
    });
    on('waiting', () => {
      if (state.playing) resume = R.onStall(resume, Date.now());
    });
    on('stalled', () => {
      if (state.playing) resume = R.onStall(resume, Date.now());
    });
    on('progress', () => {
      resume = R.onData(resume, Date.now());
    });
    on('error', () => {
      if (!loaded) return;
      const [next, action] = R.onError(resume);
      resume = next;
      act(action);
    });
    on('ended', () => applyStep(Q.next(state.queue, true)));
    // The operating system's controls act on the element directly.
    on('pause', () => {
      if (!reloading && !el.error && state.playing && !el.ended) set({ playing: false });
    });
    on('play', () => {
      if (!state.playing) set({ playing: true, failed: false });
    });
    // A preload that breaks is not retried: the song loads the usual way, with its resume, when due.
    const onSpareError = () => {
      if (el !== spare || !preloaded) return;
      preloadFailed = preloaded.song;
      preloaded = null;
      el.removeAttribute('src');
      el.load();
    };
    el.addEventListener('error', onSpareError);
    offs.push(() => el.removeEventListener('error', onSpareError));
  }
  const tick = setInterval(() => {
    if (!state.playing || reloadTimer || reloading) return;
    const [next, action] = R.onTick(resume, Date.now());
    resume = next;
    act(action);
  }, 500);
  setupMediaSession();
  sync();
  syncPreload();
  return () => {
    offs.forEach((f) => f());
    clearInterval(tick);
    audio = null;
    spare = null;
    elements = [];
    loaded = null;
    preloaded = null;
    preloadFailed = null;
  };
}

// ---- the interface ----------------------------------------------------------------------------

export const player = {
  playList(songs: Song[], start = 0): void {
    set({ queue: Q.playList(state.queue, songs, start), playing: true, failed: false });
    loaded = null;
    sync();
    void startPlayback();
    syncPreload();
  },
  enqueue(songs: Song[]): void {
    const wasEmpty = state.queue.index < 0;
    set({ queue: Q.enqueue(state.queue, songs) });
    if (wasEmpty) sync();
    syncPreload();
  },
  play(): void {
    if (!Q.current(state.queue)) return;
    set({ playing: true, failed: false });
    if (state.failed && loaded) {
      resume = R.reset();
      doReload(state.position);
      return;
    }
    void startPlayback();
  },
  pause(): void {
    set({ playing: false });
    audio?.pause();
  },
  toggle(): void {
    if (state.playing) player.pause();
    else player.play();
  },
  next(): void {
    applyStep(Q.next(state.queue, false));
  },
  previous(): void {
    applyStep(Q.previous(state.queue, state.position));
  },
  jumpTo(i: number): void {
    set({ queue: Q.jumpTo(state.queue, i), playing: true });
    sync();
    void startPlayback();
    syncPreload();
  },
  seek,
  seekBy(delta: number): void {
    seek(state.position + delta);
  },
  setVolume(v: number): void {
    const volume = Math.max(0, Math.min(1, v));
    for (const el of elements) el.volume = volume;
    try {
      globalThis.localStorage?.setItem(VOLUME_KEY, String(volume));
    } catch {
      // storage unavailable: the volume is not remembered
    }
    set({ volume, muted: volume === 0 ? state.muted : false });
    for (const el of elements) el.muted = state.muted;
  },
  toggleMute(): void {
    set({ muted: !state.muted });
    for (const el of elements) el.muted = state.muted;
  },
  toggleShuffle(): void {
    set({ queue: Q.toggleShuffle(state.queue) });
    syncPreload();
  },
  cycleRepeat(): void {
    set({ queue: Q.cycleRepeat(state.queue) });
    syncPreload();
  },
  move(from: number, to: number): void {
    set({ queue: Q.move(state.queue, from, to) });
    syncPreload();
  },
  remove(i: number): void {
    set({ queue: Q.remove(state.queue, i) });
    sync();
    if (state.playing) void startPlayback();
    syncPreload();
  },
  clear(): void {
    set({ queue: { ...state.queue, items: [], index: -1, unshuffled: null }, playing: false });
    audio?.pause();
    sync();
    syncPreload();
  },
  toggleQueue(): void {
    set({ queueOpen: !state.queueOpen });
  },
};
