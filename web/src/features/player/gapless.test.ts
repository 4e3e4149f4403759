import { describe, expect, it } from 'vitest';
import { song } from '../../test/fixtures';
import * as G from './gapless';
import * as Q from './queue';

const songs = [song(0), song(1), song(2)];
const near = 180 - G.PRELOAD_AHEAD_S + 1; // inside the window of a 180 s song

describe('which song the spare element preloads', () => {
  it('the next one, only in the last PRELOAD_AHEAD_S seconds', () => {
    const q = Q.playList(Q.emptyQueue, songs, 0);
    expect(G.preloadTarget(q, 10, 180)).toBeNull();
    expect(G.preloadTarget(q, near, 180)).toBe(songs[1]);
    // A song shorter than the window preloads its successor from the start.
    expect(G.preloadTarget(q, 0, 12)).toBe(songs[1]);
    // Unknown duration: no way to tell the end is near.
    expect(G.preloadTarget(q, near, 0)).toBeNull();
  });

  it('nothing at the end of the queue without repeat; the first song with repeat all', () => {
    const last = Q.playList(Q.emptyQueue, songs, 2);
    expect(G.preloadTarget(last, near, 180)).toBeNull();
    expect(G.preloadTarget(Q.cycleRepeat(last), near, 180)).toBe(songs[0]);
  });

  it('nothing with repeat one, nor with repeat all over a single song: the same element restarts', () => {
    let q = Q.playList(Q.emptyQueue, songs, 0);
    q = Q.cycleRepeat(Q.cycleRepeat(q));
    expect(q.repeat).toBe('one');
    expect(G.preloadTarget(q, near, 180)).toBeNull();
    const single = Q.cycleRepeat(Q.playList(Q.emptyQueue, [songs[0]], 0));
    expect(single.repeat).toBe('all');
    expect(G.preloadTarget(single, near, 180)).toBeNull();
  });

  it('follows the shuffled order, and a queue edit re-targets it', () => {
    const many = [song(0), song(1), song(2), song(3), song(4)];
    let q = Q.playList(Q.emptyQueue, many, 0);
    q = Q.toggleShuffle(q, () => 0); // deterministic: a fixed permutation of the rest
    expect(G.preloadTarget(q, near, 180)).toBe(q.items[1]);
    expect(q.items[1]).not.toBe(many[1]);
    q = Q.move(q, 3, 1);
    expect(G.preloadTarget(q, near, 180)).toBe(q.items[1]);
    q = Q.remove(q, 1);
    expect(G.preloadTarget(q, near, 180)).toBe(q.items[1]);
  });
});
