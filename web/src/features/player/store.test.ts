import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { song } from '../../test/fixtures';
import { FakeAudio } from '../../test/fakeAudio';
import { withMediaSession } from '../../test/mediaSession';
import { attachAudio, getPlayerState, player } from './store';

let el: FakeAudio;
let detach: () => void;
const songs = [song(1), song(2), song(3)];

beforeEach(() => {
  vi.useFakeTimers();
  el = new FakeAudio();
  detach = attachAudio(el as unknown as HTMLAudioElement);
});

afterEach(() => {
  player.clear();
  detach();
  vi.useRealTimers();
});

describe('player engine', () => {
  it('plays the content-addressed stream URL and moves on when a song ends', () => {
    player.playList(songs, 0);
    expect(el.src).toBe(songs[0].stream_url);
    expect(getPlayerState().playing).toBe(true);
    el.fire('ended');
    expect(el.src).toBe(songs[1].stream_url);
  });

  it('after a stream error it reloads the same URL and seeks back to where it was, silently', () => {
    player.playList(songs, 1);
    el.currentTime = 42;
    el.fire('timeupdate');
    el.fire('error');
    expect(getPlayerState().reconnecting).toBe(true);
    expect(getPlayerState().failed).toBe(false);
    const loadsBefore = el.loads;
    vi.advanceTimersByTime(250);
    expect(el.loads).toBe(loadsBefore + 1);
    expect(el.src).toBe(songs[1].stream_url);
    expect(el.currentTime).toBe(0);
    const plays = el.plays;
    el.fire('loadedmetadata');
    expect(el.currentTime).toBe(42); // the seek makes the browser send a Range request
    expect(el.plays).toBe(plays + 1);
    el.currentTime = 43;
    el.fire('timeupdate');
    expect(getPlayerState().reconnecting).toBe(false);
    expect(getPlayerState().position).toBe(43);
  });

  it('a stall that lasts reloads too', () => {
    player.playList(songs, 0);
    el.currentTime = 10;
    el.fire('timeupdate');
    el.fire('waiting');
    const loads = el.loads;
    vi.advanceTimersByTime(5000);
    expect(el.loads).toBe(loads + 1);
    el.fire('loadedmetadata');
    expect(el.currentTime).toBe(10);
  });

  it('a slow stream that keeps delivering bytes is not reloaded', () => {
    player.playList(songs, 0);
    el.fire('waiting');
    const loads = el.loads;
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(500);
      el.fire('progress');
    }
    expect(el.loads).toBe(loads);
    vi.advanceTimersByTime(5000);
    expect(el.loads).toBe(loads + 1);
  });

  it('next, previous, seek and volume act on the element', () => {
    player.playList(songs, 0);
    player.next();
    expect(el.src).toBe(songs[1].stream_url);
    player.previous();
    expect(el.src).toBe(songs[0].stream_url);
    el.duration = 100;
    el.fire('durationchange');
    player.seek(30);
    expect(el.currentTime).toBe(30);
    player.seek(1000);
    expect(el.currentTime).toBe(100);
    player.setVolume(0.25);
    expect(el.volume).toBe(0.25);
    player.pause();
    expect(el.paused).toBe(true);
    expect(getPlayerState().playing).toBe(false);
  });
});

describe('media session', () => {
  it("gives the operating system the song's cover at 256 and 512, and no artwork without one", () => {
    withMediaSession((session) => {
      const sha = 'ef'.repeat(32);
      player.playList([song(1, { cover: sha }), song(2)], 0);
      expect((session.metadata as MediaMetadataInit).artwork).toEqual([
        { src: `/music/covers/${sha}?size=256`, sizes: '256x256', type: 'image/jpeg' },
        { src: `/music/covers/${sha}?size=512`, sizes: '512x512', type: 'image/jpeg' },
      ]);
      player.next();
      expect((session.metadata as MediaMetadataInit).title).toBe('Song 2');
      expect((session.metadata as MediaMetadataInit).artwork).toEqual([]);
    });
  });
});
