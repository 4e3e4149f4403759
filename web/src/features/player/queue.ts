// The play queue as pure functions over an immutable state, so every rule (next/previous at the
// ends, repeat, shuffle, reordering around the current song) is tested without a browser.
// `items` is the queue in the order it plays and is shown; shuffling reorders the songs after the
// current one and remembers the order it replaced, restored when shuffle is turned off.
import type { Song } from '../../lib/api';

export type Repeat = 'off' | 'all' | 'one';

export interface QueueState {
  items: Song[];
  index: number; // the current song, -1 when none
  shuffle: boolean;
  repeat: Repeat;
  unshuffled: Song[] | null; // the order before shuffling
}

export const emptyQueue: QueueState = { items: [], index: -1, shuffle: false, repeat: 'off', unshuffled: null };

export type Rng = () => number;

function shuffled<T>(xs: T[], rng: Rng): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export function current(s: QueueState): Song | undefined {
  return s.index >= 0 ? s.items[s.index] : undefined;
}

// Replaces the queue with `songs`, starting at `start`. With shuffle on, `start` plays first and
// the rest follow in random order.
export function playList(s: QueueState, songs: Song[], start: number, rng: Rng = Math.random): QueueState {
  if (songs.length === 0) return { ...s, items: [], index: -1, unshuffled: null };
  const i = Math.min(Math.max(start, 0), songs.length - 1);
  if (!s.shuffle) return { ...s, items: [...songs], index: i, unshuffled: null };
  const rest = songs.filter((_, k) => k !== i);
  return { ...s, items: [songs[i], ...shuffled(rest, rng)], index: 0, unshuffled: [...songs] };
}

export function enqueue(s: QueueState, songs: Song[]): QueueState {
  return {
    ...s,
    items: [...s.items, ...songs],
    index: s.index < 0 && songs.length > 0 ? s.items.length : s.index,
    unshuffled: s.unshuffled ? [...s.unshuffled, ...songs] : null,
  };
}

export interface Step {
  state: QueueState;
  restart: boolean; // play the current song again from its start
  stop: boolean; // the end of the queue: stop playing
}

// `auto` is true when the current song ended by itself (repeat-one only applies then; the Next
// button always moves on).
export function next(s: QueueState, auto: boolean): Step {
  if (s.items.length === 0) return { state: s, restart: false, stop: true };
  if (auto && s.repeat === 'one') return { state: s, restart: true, stop: false };
  if (s.index < s.items.length - 1) return { state: { ...s, index: s.index + 1 }, restart: false, stop: false };
  if (s.repeat === 'all' || s.repeat === 'one') {
    return { state: { ...s, index: 0 }, restart: s.items.length === 1, stop: false };
  }
  return { state: s, restart: false, stop: true };
}

// The song that plays when the current one ends by itself: none at the end of the queue, nor
// when the current one plays again (repeat one, or repeat all over a queue of one song).
export function upcoming(s: QueueState): Song | undefined {
  const step = next(s, true);
  return step.stop || step.restart ? undefined : current(step.state);
}

// Previous after the first seconds of a song starts it again, as every player does.
export const RESTART_AFTER_S = 3;

export function previous(s: QueueState, positionS: number): Step {
  if (s.items.length === 0) return { state: s, restart: false, stop: true };
  if (positionS > RESTART_AFTER_S || (s.index === 0 && s.repeat === 'off')) {
    return { state: s, restart: true, stop: false };
  }
  if (s.index > 0) return { state: { ...s, index: s.index - 1 }, restart: false, stop: false };
  return { state: { ...s, index: s.items.length - 1 }, restart: s.items.length === 1, stop: false };
}

export function jumpTo(s: QueueState, i: number): QueueState {
  if (i < 0 || i >= s.items.length) return s;
  return { ...s, index: i };
}

// Moves the song at `from` to position `to`; the current song stays current wherever it goes.
export function move(s: QueueState, from: number, to: number): QueueState {
  const n = s.items.length;
  if (from < 0 || from >= n || to < 0 || to >= n || from === to) return s;
  const items = [...s.items];
  const [song] = items.splice(from, 1);
  items.splice(to, 0, song);
  let index = s.index;
  if (s.index === from) index = to;
  else if (from < s.index && to >= s.index) index = s.index - 1;
  else if (from > s.index && to <= s.index) index = s.index + 1;
  return { ...s, items, index };
}

export function remove(s: QueueState, i: number): QueueState {
  if (i < 0 || i >= s.items.length) return s;
  const removed = s.items[i];
  const items = s.items.filter((_, k) => k !== i);
  let index = s.index;
  if (i < s.index) index--;
  else if (i === s.index && index >= items.length) index = items.length - 1;
  const unshuffled = s.unshuffled ? s.unshuffled.filter((x) => x !== removed) : null;
  return { ...s, items, index, unshuffled };
}

export function toggleShuffle(s: QueueState, rng: Rng = Math.random): QueueState {
  if (s.shuffle) {
    // Back to the order before shuffling, still on the same song.
    const cur = current(s);
    const items = s.unshuffled ?? s.items;
    const index = cur ? Math.max(items.indexOf(cur), 0) : -1;
    return { ...s, shuffle: false, items: [...items], index: items.length ? index : -1, unshuffled: null };
  }
  const head = s.items.slice(0, s.index + 1);
  const rest = shuffled(s.items.slice(s.index + 1), rng);
  return { ...s, shuffle: true, items: [...head, ...rest], unshuffled: [...s.items] };
}

export function cycleRepeat(s: QueueState): QueueState {
  const order: Repeat[] = ['off', 'all', 'one'];
  return { ...s, repeat: order[(order.indexOf(s.repeat) + 1) % order.length] };
}
