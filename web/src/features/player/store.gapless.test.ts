import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { song } from '../../test/fixtures';
import { FakeAudio } from '../../test/fakeAudio';
import { withMediaSession } from '../../test/mediaSession';
import { PRELOAD_AHEAD_S } from './gapless';
import { attachAudio, getPlayerState, player } from './store';

// The engine with its two elements: `a` starts as the active one, `b` as the spare.
let a: FakeAudio;
let b: FakeAudio;
let detach: () => void;
const songs = [song(1), song(2), song(3)];
const end = 180; // the fixtures' duration
const late = end - PRELOAD_AHEAD_S + 5;

function at(el: FakeAudio, t: number): void {
  el.currentTime = t;
  el.fire('timeupdate');
}

beforeEach(() => {
  vi.useFakeTimers();
  a = new FakeAudio();
  b = new FakeAudio();
  detach = attachAudio(a as unknown as HTMLAudioElement, b as unknown as HTMLAudioElement);
});

afterEach(() => {
  // The store outlives a test: back to the queue modes every test starts from.
  if (getPlayerState().queue.shuffle) player.toggleShuffle();
  while (getPlayerState().queue.repeat !== 'off') player.cycleRepeat();
  player.clear();
  detach();
  vi.useRealTimers();
});

describe('gapless: the spare element', () => {
  it('preloads the next song only near the end, then takes over on ended with consistent state', () => {
    player.playList(songs, 0);
    expect(a.src).toBe(songs[0].stream_url);
    at(a, 10);
    expect(b.src).toBe('');
    at(a, late);
    expect(b.src).toBe(songs[1].stream_url);
    expect(b.plays).toBe(0); // loads, silent, until its turn
    // The spare's own events do not move the player.
    b.duration = 200;
    b.fire('durationchange');
    b.fire('timeupdate');
    expect(getPlayerState().duration).toBe(end);
    expect(getPlayerState().position).toBe(late);

    a.currentTime = end;
    a.ended = true;
    a.fire('ended');
    expect(b.paused).toBe(false);
    expect(b.src).toBe(songs[1].stream_url); // no reload: the preloaded bytes play
    expect(a.src).toBe('');
    expect(a.paused).toBe(true);
    const s = getPlayerState();
    expect(s.active).toBe(1);
    expect(s.queue.index).toBe(1);
    expect(s.position).toBe(0);
    expect(s.duration).toBe(200); // the element's own, already known
    expect(s.playing).toBe(true);
    // Now the old element is the spare: its events are ignored, and it preloads the third song.
    a.currentTime = 99;
    a.fire('timeupdate');
    a.fire('pause');
    expect(getPlayerState().position).toBe(0);
    expect(getPlayerState().playing).toBe(true);
    at(b, 200 - PRELOAD_AHEAD_S + 1);
    expect(a.src).toBe(songs[2].stream_url);
    expect(getPlayerState().position).toBe(200 - PRELOAD_AHEAD_S + 1);
  });

  it('a Next near the end uses the preloaded element; an early Next loads the usual way', () => {
    player.playList(songs, 0);
    at(a, late);
    player.next();
    expect(getPlayerState().active).toBe(1);
    expect(b.paused).toBe(false);
    expect(a.src).toBe('');
    // Early in song 2: nothing preloaded, Next loads song 3 into the active element.
    at(b, 5);
    expect(a.src).toBe('');
    player.next();
    expect(getPlayerState().active).toBe(1);
    expect(b.src).toBe(songs[2].stream_url);
    expect(getPlayerState().queue.index).toBe(2);
  });

  it('a seek out of the window cancels the preload; back into it preloads again', () => {
    player.playList(songs, 0);
    at(a, late);
    expect(b.src).toBe(songs[1].stream_url);
    const loads = b.loads;
    player.seek(20);
    expect(b.src).toBe('');
    expect(b.loads).toBe(loads + 1);
    player.seek(late);
    expect(b.src).toBe(songs[1].stream_url);
  });

  it('queue edits re-target it: remove, reorder, repeat, shuffle, the end of the queue', () => {
    const five = [song(1), song(2), song(3), song(4), song(5)];
    player.playList(five, 0);
    at(a, late);
    expect(b.src).toBe(five[1].stream_url);
    player.remove(1);
    expect(b.src).toBe(five[2].stream_url);
    player.move(3, 1); // song 5 next
    expect(b.src).toBe(five[4].stream_url);
    player.cycleRepeat(); // all: the next song is the same
    expect(b.src).toBe(five[4].stream_url);
    player.cycleRepeat(); // one: the current song again, on the same element
    expect(b.src).toBe('');
    player.cycleRepeat(); // off
    player.toggleShuffle();
    expect(b.src).toBe(getPlayerState().queue.items[1].stream_url);
    player.jumpTo(getPlayerState().queue.items.length - 1);
    at(getPlayerState().active === 0 ? a : b, late);
    expect((getPlayerState().active === 0 ? b : a).src).toBe(''); // the last song: nothing after it
  });

  it('a preload that fails is not retried; the song then loads the usual way when due', () => {
    player.playList(songs, 0);
    at(a, late);
    b.fire('error');
    expect(b.src).toBe('');
    at(a, late + 1);
    expect(b.src).toBe('');
    expect(getPlayerState().failed).toBe(false);
    a.fire('ended');
    expect(getPlayerState().active).toBe(0);
    expect(a.src).toBe(songs[1].stream_url);
    expect(getPlayerState().queue.index).toBe(1);
  });

  it('after a swap a broken stream still reloads the same URL and seeks back, and is counted', () => {
    player.playList(songs, 0);
    at(a, late);
    a.fire('ended');
    at(b, 42);
    const resumes = getPlayerState().resumes;
    b.fire('error');
    vi.advanceTimersByTime(250);
    expect(b.src).toBe(songs[1].stream_url);
    b.fire('loadedmetadata');
    expect(b.currentTime).toBe(42);
    expect(getPlayerState().resumes).toBe(resumes + 1);
    expect(a.loads).toBeGreaterThan(0);
    expect(getPlayerState().active).toBe(1);
  });

  it('the Media Session follows the swap', () => {
    withMediaSession((session) => {
      player.playList(songs, 0);
      expect((session.metadata as MediaMetadataInit).title).toBe('Song 1');
      at(a, late);
      expect((session.metadata as MediaMetadataInit).title).toBe('Song 1'); // preloading is silent
      a.fire('ended');
      expect((session.metadata as MediaMetadataInit).title).toBe('Song 2');
    });
  });

  it('volume and mute reach both elements', () => {
    player.setVolume(0.3);
    expect([a.volume, b.volume]).toEqual([0.3, 0.3]);
    player.toggleMute();
    expect([a.muted, b.muted]).toEqual([true, true]);
    player.toggleMute();
  });
});
