// When the stream breaks (the node serving it died or restarted), the player reloads the same URL
// and seeks back to where it was: the browser then asks with a Range request, which the front
// address routes to a live node. This module is the decision, pure; the player bar applies it.
//
// Rules: an 'error' event reloads after a short backoff (250 ms doubling up to 4 s); 'waiting' or
// 'stalled' that lasts over STALL_MS without progress reloads too; bytes still arriving ('progress'
// events) restart that wait, since a slow stream is not a broken one: a reload would only throw
// away what came. Seen in Chrome: a 320 kb/s MP3 with an embedded cover, downloaded at 60 KB/s,
// needs ~40 s (about 2.4 MB) before it can play, and never started while each stall reloaded it.
// Progress (timeupdate moving forward past the resume point) resets the attempt count. After MAX_ATTEMPTS reloads in a row
// without progress the player gives up and shows the error.

export const STALL_MS = 4000;
export const MAX_ATTEMPTS = 8;
const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 4000;

export interface ResumeState {
  position: number; // the last position played, seconds
  attempts: number; // reloads since the last progress
  stalledSince: number | null; // ms timestamp of the 'waiting'/'stalled' without progress
  resumeFrom: number | null; // position being resumed from, while a reload is in flight
}

export const initialResume: ResumeState = { position: 0, attempts: 0, stalledSince: null, resumeFrom: null };

export type ResumeAction =
  | { kind: 'none' }
  | { kind: 'reload'; at: number; delayMs: number }
  | { kind: 'give-up' };

const none: ResumeAction = { kind: 'none' };

export function onProgress(s: ResumeState, time: number): ResumeState {
  // A reload's own seek to resumeFrom is no proof the stream works: wait for playback past it.
  const progressed = s.resumeFrom === null || time > s.resumeFrom + 0.5;
  return {
    position: time,
    attempts: progressed ? 0 : s.attempts,
    stalledSince: progressed ? null : s.stalledSince,
    resumeFrom: progressed ? null : s.resumeFrom,
  };
}

export function onPlaying(s: ResumeState): ResumeState {
  return { ...s, stalledSince: null };
}

// Bytes arrived: a stall in progress is measured from now.
export function onData(s: ResumeState, now: number): ResumeState {
  return s.stalledSince === null ? s : { ...s, stalledSince: now };
}

export function onStall(s: ResumeState, now: number): ResumeState {
  return s.stalledSince === null ? { ...s, stalledSince: now } : s;
}

function reload(s: ResumeState): [ResumeState, ResumeAction] {
  if (s.attempts >= MAX_ATTEMPTS) return [{ ...s, stalledSince: null }, { kind: 'give-up' }];
  const delayMs = Math.min(BASE_DELAY_MS * 2 ** s.attempts, MAX_DELAY_MS);
  return [
    { ...s, attempts: s.attempts + 1, stalledSince: null, resumeFrom: s.position },
    { kind: 'reload', at: s.position, delayMs },
  ];
}

export function onError(s: ResumeState): [ResumeState, ResumeAction] {
  return reload(s);
}

// Called periodically while playing is wanted.
export function onTick(s: ResumeState, now: number): [ResumeState, ResumeAction] {
  if (s.stalledSince !== null && now - s.stalledSince >= STALL_MS) return reload(s);
  return [s, none];
}

// A new song: nothing to resume.
export function reset(): ResumeState {
  return initialResume;
}
