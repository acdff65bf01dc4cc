import { describe, expect, it } from 'vitest';
import { parseGoDuration, toSeries } from './histogramSeries';

describe('histogram series', () => {
  it('reads Go durations', () => {
    expect(parseGoDuration('30s')).toBe(30e3);
    expect(parseGoDuration('1h30m0s')).toBe(5400e3);
    expect(parseGoDuration('500ms')).toBe(500);
  });

  it('lays buckets on a regular grid from the window start, empty ones as zero', () => {
    const s = toSeries({
      from: '2026-11-27T10:00:00Z', to: '2026-11-27T10:05:00Z', bucket: '1m0s',
      buckets: [
        { start: '2026-11-27T10:01:00Z', total: 5, counts: { process: 2, network: 3 } },
        { start: '2026-11-27T10:04:00Z', total: 1, counts: { policy: 1 } },
      ],
    });
    expect(s.x).toHaveLength(5);
    expect(s.x[0]).toBe(Date.parse('2026-11-27T10:00:00Z') / 1000);
    expect(s.counts.process).toEqual([0, 2, 0, 0, 0]);
    expect(s.counts.network).toEqual([0, 3, 0, 0, 0]);
    expect(s.counts.policy).toEqual([0, 0, 0, 0, 1]);
    expect(s.total).toBe(6);
  });
});
