import { describe, expect, it } from 'vitest';
import { song } from '../../test/fixtures';
import * as Q from './queue';

const songs = [song(0), song(1), song(2), song(3), song(4)];
const ids = (s: Q.QueueState) => s.items.map((x) => x.title);
// A deterministic generator for the shuffle.
function seeded(seed: number): Q.Rng {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('queue', () => {
  it('plays a list from the chosen song', () => {
    const s = Q.playList(Q.emptyQueue, songs, 2);
    expect(Q.current(s)?.title).toBe('Song 2');
  });

  it('next moves on and stops at the end without repeat', () => {
    let s = Q.playList(Q.emptyQueue, songs, 3);
    let step = Q.next(s, true);
    expect(Q.current(step.state)?.title).toBe('Song 4');
    s = step.state;
    step = Q.next(s, true);
    expect(step.stop).toBe(true);
    expect(Q.current(step.state)?.title).toBe('Song 4');
  });

  it('repeat all wraps to the start; repeat one replays only when the song ended by itself', () => {
    let s = Q.cycleRepeat(Q.playList(Q.emptyQueue, songs, 4));
    expect(s.repeat).toBe('all');
    expect(Q.current(Q.next(s, true).state)?.title).toBe('Song 0');
    s = Q.cycleRepeat(s);
    expect(s.repeat).toBe('one');
    const auto = Q.next(s, true);
    expect(auto.restart).toBe(true);
    expect(Q.current(auto.state)?.title).toBe('Song 4');
    expect(Q.current(Q.next(s, false).state)?.title).toBe('Song 0');
    expect(Q.cycleRepeat(s).repeat).toBe('off');
  });

  it('previous restarts the song after 3 s, else goes back', () => {
    const s = Q.playList(Q.emptyQueue, songs, 2);
    const late = Q.previous(s, 10);
    expect(late.restart).toBe(true);
    expect(late.state.index).toBe(2);
    expect(Q.previous(s, 1).state.index).toBe(1);
    const first = Q.playList(Q.emptyQueue, songs, 0);
    expect(Q.previous(first, 1)).toMatchObject({ restart: true, state: { index: 0 } });
    expect(Q.previous(Q.cycleRepeat(first), 1).state.index).toBe(4);
  });

  it('reordering keeps the current song current', () => {
    const s = Q.playList(Q.emptyQueue, songs, 2);
    const a = Q.move(s, 2, 0);
    expect(ids(a)).toEqual(['Song 2', 'Song 0', 'Song 1', 'Song 3', 'Song 4']);
    expect(Q.current(a)?.title).toBe('Song 2');
    const b = Q.move(s, 0, 4);
    expect(ids(b)).toEqual(['Song 1', 'Song 2', 'Song 3', 'Song 4', 'Song 0']);
    expect(Q.current(b)?.title).toBe('Song 2');
    const c = Q.move(s, 4, 1);
    expect(ids(c)).toEqual(['Song 0', 'Song 4', 'Song 1', 'Song 2', 'Song 3']);
    expect(Q.current(c)?.title).toBe('Song 2');
    expect(Q.move(s, 0, 9)).toBe(s);
  });

  it('removing before or at the current song', () => {
    const s = Q.playList(Q.emptyQueue, songs, 2);
    expect(Q.current(Q.remove(s, 0))?.title).toBe('Song 2');
    expect(Q.current(Q.remove(s, 2))?.title).toBe('Song 3');
    const last = Q.playList(Q.emptyQueue, songs, 4);
    expect(Q.current(Q.remove(last, 4))?.title).toBe('Song 3');
  });

  it('shuffle keeps the played part, permutes the rest, and off restores the order', () => {
    const s = Q.playList(Q.emptyQueue, songs, 1);
    const sh = Q.toggleShuffle(s, seeded(7));
    expect(sh.shuffle).toBe(true);
    expect(ids(sh).slice(0, 2)).toEqual(['Song 0', 'Song 1']);
    expect([...ids(sh)].sort()).toEqual(ids(s));
    expect(Q.current(sh)?.title).toBe('Song 1');
    const moved = Q.next(sh, false).state;
    const off = Q.toggleShuffle(moved);
    expect(ids(off)).toEqual(ids(s));
    expect(Q.current(off)?.title).toBe(Q.current(moved)?.title);
  });

  it('a list played with shuffle on starts with the chosen song', () => {
    const on = Q.toggleShuffle(Q.emptyQueue);
    const s = Q.playList(on, songs, 3, seeded(1));
    expect(Q.current(s)?.title).toBe('Song 3');
    expect(s.items).toHaveLength(5);
  });

  it('enqueue into an empty queue makes the first added song current', () => {
    const s = Q.enqueue(Q.emptyQueue, [songs[0], songs[1]]);
    expect(Q.current(s)?.title).toBe('Song 0');
    expect(Q.enqueue(s, [songs[2]]).index).toBe(0);
  });
});
