import { describe, expect, it } from 'vitest';
import * as R from './resume';

describe('resume after a broken stream', () => {
  it('an error reloads at the last position with a growing delay', () => {
    let s = R.onProgress(R.initialResume, 42.5);
    const [s1, a1] = R.onError(s);
    expect(a1).toEqual({ kind: 'reload', at: 42.5, delayMs: 250 });
    const [s2, a2] = R.onError(s1);
    expect(a2).toEqual({ kind: 'reload', at: 42.5, delayMs: 500 });
    s = s2;
    // The seek back to 42.5 is not progress; playing on past it is.
    s = R.onProgress(s, 42.5);
    expect(s.attempts).toBe(2);
    s = R.onProgress(s, 43.5);
    expect(s.attempts).toBe(0);
    expect(R.onError(s)[1]).toEqual({ kind: 'reload', at: 43.5, delayMs: 250 });
  });

  it('gives up after MAX_ATTEMPTS reloads without progress; the delay is capped', () => {
    let s = R.onProgress(R.initialResume, 10);
    let last: R.ResumeAction = { kind: 'none' };
    const delays: number[] = [];
    for (let i = 0; i < R.MAX_ATTEMPTS; i++) {
      [s, last] = R.onError(s);
      expect(last.kind).toBe('reload');
      if (last.kind === 'reload') delays.push(last.delayMs);
    }
    expect(Math.max(...delays)).toBe(4000);
    [s, last] = R.onError(s);
    expect(last).toEqual({ kind: 'give-up' });
  });

  it('a stall longer than STALL_MS reloads; a short one does not', () => {
    let s = R.onProgress(R.initialResume, 5);
    s = R.onStall(s, 1000);
    expect(R.onTick(s, 1000 + R.STALL_MS - 1)[1]).toEqual({ kind: 'none' });
    const [after, action] = R.onTick(s, 1000 + R.STALL_MS);
    expect(action).toEqual({ kind: 'reload', at: 5, delayMs: 250 });
    expect(after.stalledSince).toBeNull();
    // Playing again clears the stall.
    const resumed = R.onPlaying(R.onStall(s, 2000));
    expect(R.onTick(resumed, 100_000)[1]).toEqual({ kind: 'none' });
  });

  it('bytes still arriving are not a broken stream: the stall is measured from the last of them', () => {
    let s = R.onStall(R.onProgress(R.initialResume, 5), 1000);
    s = R.onData(s, 1000 + R.STALL_MS - 100);
    expect(R.onTick(s, 1000 + R.STALL_MS)[1]).toEqual({ kind: 'none' });
    expect(R.onTick(s, 1000 + 2 * R.STALL_MS - 100)[1]).toEqual({ kind: 'reload', at: 5, delayMs: 250 });
    // Without a stall, data changes nothing.
    expect(R.onData(R.initialResume, 42)).toBe(R.initialResume);
  });

  it('a repeated stall event keeps the first timestamp', () => {
    const s = R.onStall(R.onStall(R.initialResume, 100), 3000);
    expect(s.stalledSince).toBe(100);
  });
});
