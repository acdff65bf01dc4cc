// Windows, durations and how times are written. Times show in UTC, as the
// audit trail and the cluster's logs do.

export interface TimeWindow {
  from: number; // ms, inclusive
  to: number; // ms, exclusive
}

export const PRESETS = [
  { label: '10m', ms: 10 * 60e3 },
  { label: '1h', ms: 3600e3 },
  { label: '6h', ms: 6 * 3600e3 },
  { label: '24h', ms: 24 * 3600e3 },
  { label: '7d', ms: 7 * 24 * 3600e3 },
  { label: '30d', ms: 30 * 24 * 3600e3 },
] as const;

/** The window a page opens with, when its link has none. */
export const DEFAULT_SPAN = {
  activity: 3600e3,
  // Policy events are few: a day of them.
  policy: 24 * 3600e3,
} as const;

/** What the store said of its newest event, and when it said it. */
export interface Trail {
  newest?: string;
  /** When newest was read (ms); now when absent. */
  seenAt?: number;
}

/** Trails whose newest event is younger than this are live. */
const LIVE = 5 * 60e3;

/** Where "the last hour" ends: now on a live system; on one whose newest event
 * was already old when it was read (a copy of the trail, a stopped demo), just
 * after that event. A trail live when read stays live: the stats are read at
 * sign-in, and an hour later its newest event is an hour old only because
 * nobody asked again. */
export function anchorTime(trail: Trail | undefined, now = Date.now()): number {
  const n = trail?.newest ? Date.parse(trail.newest) : NaN;
  const seenAt = trail?.seenAt ?? now;
  const end = Number.isNaN(n) || seenAt - n < LIVE ? now : n + 1;
  return Math.ceil(end / 60e3) * 60e3; // whole minutes keep buckets and links tidy
}

export function lastWindow(ms: number, trail: Trail | undefined, now = Date.now()): TimeWindow {
  const to = anchorTime(trail, now);
  return { from: to - ms, to };
}

/** The shortest window zooming in goes to. */
const MIN_SPAN = 1000;

/** The window factor times as long (2: zoom out, 0.5: zoom in), around the
 * same middle. */
export function zoomWindow(w: TimeWindow, factor: number): TimeWindow {
  const span = Math.max(MIN_SPAN, Math.round((w.to - w.from) * factor));
  const mid = (w.from + w.to) / 2;
  const from = Math.round(mid - span / 2);
  return { from, to: from + span };
}

const NICE_BUCKETS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** A round bucket giving at most ~200 buckets over the window. */
export function bucketFor(w: TimeWindow, target = 200): { seconds: number; param: string } {
  const want = (w.to - w.from) / 1000 / target;
  const seconds = NICE_BUCKETS_S.find((b) => b >= want) ?? Math.ceil(want / 86400) * 86400;
  return { seconds, param: `${seconds}s` };
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** 2026-11-27 10:55:02.968 */
export function formatTime(t: string | number | Date, withMs = true): string {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return withMs ? `${s}.${pad(d.getUTCMilliseconds(), 3)}` : s;
}

/** 3m 12s, 450ms, 2h 5m */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  return `${Math.round(h / 24)}d`;
}

export function formatWindow(w: TimeWindow): string {
  return `${formatTime(w.from, false)} → ${formatTime(w.to, false)} UTC (${formatDuration(w.to - w.from)})`;
}
