// Gapless playback, as far as a browser allows without decoding whole songs into memory: a second
// <audio> element loads the next song of the queue during the last PRELOAD_AHEAD_S seconds of the
// current one, and starts the moment the current one ends ('ended': the element has played out
// every sample; timeupdate only comes every ~250 ms, too coarse to start earlier). The only gap
// left is the JavaScript between that event and play() on an element whose first seconds are
// already decoded: a few milliseconds, against a new request, buffering and a decoder start
// (tens to hundreds) with one element.
//
// Why not Web Audio (AudioBufferSourceNode.start(at) is sample-exact): it needs each song decoded
// whole into memory (a 10-minute song is ~200 MB of float samples), cannot start before the whole
// file is downloaded, and bypasses the media element, its Range requests and so the resume after a
// node dies. MediaSource could append the next song's bytes to the same buffer (sample-exact with
// timestampOffset), but only for the containers a browser accepts there (not every format we
// serve), and the page would then do the fetching, Range requests and retries itself.
//
// This module is the decision, pure: which song the spare element should hold now.
import type { Song } from '../../lib/api';
import * as Q from './queue';

// Long enough for a slow connection to fetch the next song's start; short enough that a skip or a
// queue edit rarely wastes the download, and that the second stream is not held open for long.
export const PRELOAD_AHEAD_S = 30;

export function preloadTarget(queue: Q.QueueState, position: number, duration: number): Song | null {
  if (!(duration > 0) || duration - position > PRELOAD_AHEAD_S) return null;
  return Q.upcoming(queue) ?? null;
}
