import { describe, expect, it } from 'vitest';
import { anchorTime, bucketFor, formatDuration, lastWindow, zoomWindow } from './time';

describe('windows', () => {
  const now = Date.parse('2026-11-27T11:07:30Z');

  it('ends "the last hour" now on a live trail, after the newest event on a stale one', () => {
    expect(new Date(anchorTime({ newest: '2026-11-27T11:07:29Z' }, now)).toISOString()).toBe('2026-11-27T11:08:00.000Z');
    expect(new Date(anchorTime({ newest: '2026-11-20T08:00:10Z' }, now)).toISOString()).toBe('2026-11-20T08:01:00.000Z');
    expect(new Date(anchorTime(undefined, now)).toISOString()).toBe('2026-11-27T11:08:00.000Z');
    const w = lastWindow(3600e3, undefined, now);
    expect(w.to - w.from).toBe(3600e3);
  });

  it('takes a trail that was live when its stats were read as live: "1h" does not end at sign-in', () => {
    const signIn = now - 2 * 3600e3;
    // Newest event a second before sign-in, two hours ago now: live then, so now.
    const live = { newest: new Date(signIn - 1000).toISOString(), seenAt: signIn };
    expect(new Date(anchorTime(live, now)).toISOString()).toBe('2026-11-27T11:08:00.000Z');
    expect(lastWindow(3600e3, live, now).to).toBe(Date.parse('2026-11-27T11:08:00Z'));
    // Already a day old when read: a stopped trail, after its newest event.
    const stale = { newest: '2026-11-26T09:00:10Z', seenAt: signIn };
    expect(new Date(anchorTime(stale, now)).toISOString()).toBe('2026-11-26T09:01:00.000Z');
  });

  it('zooms around the middle, not below a second', () => {
    expect(zoomWindow({ from: 0, to: 3600e3 }, 0.5)).toEqual({ from: 900e3, to: 2700e3 });
    expect(zoomWindow({ from: 900e3, to: 2700e3 }, 2)).toEqual({ from: 0, to: 3600e3 });
    expect(zoomWindow({ from: 0, to: 1500 }, 0.5)).toEqual({ from: 250, to: 1250 });
  });

  it('picks round buckets, at most ~200 over the window', () => {
    expect(bucketFor({ from: 0, to: 600e3 }).param).toBe('5s');
    expect(bucketFor({ from: 0, to: 3600e3 }).param).toBe('30s');
    expect(bucketFor({ from: 0, to: 24 * 3600e3 }).param).toBe('600s');
    expect(bucketFor({ from: 0, to: 30 * 24 * 3600e3 }).param).toBe('21600s');
  });

  it('writes durations briefly', () => {
    expect(formatDuration(450)).toBe('450ms');
    expect(formatDuration(243e3)).toBe('4m 3s');
    expect(formatDuration(2 * 3600e3 + 60e3)).toBe('2h 1m');
  });
});
