import { describe, expect, it } from 'vitest';
import { groupByRule, severityCondition } from './policy';

const pe = (rule: string, priority: string, time: string) => ({
  'evt.id': `policy/${rule}/${time}`, 'evt.category': 'policy', 'evt.time': time, 'policy.rule': rule, 'policy.priority': priority,
});

describe('policy events', () => {
  it('groups a feed by rule with counts, most severe first, then most frequent', () => {
    const groups = groupByRule([
      pe('Outbound Connection', 'WARNING', '2026-11-27T10:48:00Z'),
      pe('Shell in container', 'NOTICE', '2026-11-27T10:40:00Z'),
      pe('Outbound Connection', 'WARNING', '2026-11-27T10:38:00Z'),
      pe('Read sensitive file', 'ERROR', '2026-11-27T10:30:00Z'),
      pe('Shell in container', 'NOTICE', '2026-11-27T10:20:00Z'),
      pe('Shell in container', 'CRITICAL', '2026-11-27T10:10:00Z'),
    ]);
    expect(groups.map((g) => [g.rule, g.count, g.priority])).toEqual([
      ['Shell in container', 3, 'CRITICAL'],
      ['Read sensitive file', 1, 'ERROR'],
      ['Outbound Connection', 2, 'WARNING'],
    ]);
    expect(groups[2].last).toBe('2026-11-27T10:48:00Z');
  });

  it('filters by lowest severity', () => {
    expect(severityCondition(undefined)).toBe('');
    expect(severityCondition('ERROR')).toBe('policy.priority in (EMERGENCY, ALERT, CRITICAL, ERROR)');
    expect(severityCondition('DEBUG')).toBe('');
  });
});
