// The histogram's data: buckets as series on a regular grid, per category.
import type { Histogram as HistogramData } from '../api/types';

/** Bottom of the stack first: the loud categories below, the rare on top. */
export const STACK = ['network', 'file', 'process', 'k8s', 'gap', 'policy'] as const;

export interface Series {
  x: number[]; // bucket starts, seconds
  counts: Record<(typeof STACK)[number], number[]>;
  total: number;
}

/** Buckets on a regular grid from the window's start, empty ones as zero. */
export function toSeries(h: HistogramData): Series {
  const from = Date.parse(h.from);
  const to = Date.parse(h.to);
  const step = parseGoDuration(h.bucket);
  const n = Math.max(1, Math.ceil((to - from) / step));
  const x = Array.from({ length: n }, (_, i) => (from + i * step) / 1000);
  const counts = Object.fromEntries(STACK.map((c) => [c, new Array<number>(n).fill(0)])) as Series['counts'];
  let total = 0;
  for (const b of h.buckets ?? []) {
    const i = Math.round((Date.parse(b.start) - from) / step);
    if (i < 0 || i >= n) continue;
    for (const c of STACK) counts[c][i] += b.counts[c] ?? 0;
    total += b.total;
  }
  return { x, counts, total };
}

/** Parses what Go's Duration.String writes: 1h30m0s, 10m0s, 500ms. */
export function parseGoDuration(s: string): number {
  const units: Record<string, number> = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };
  let ms = 0;
  for (const [, n, u] of s.matchAll(/([\d.]+)(h|ms|m|s|us|µs|ns)/g)) ms += Number(n) * units[u];
  return ms || 60e3;
}
