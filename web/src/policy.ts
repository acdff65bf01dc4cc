// Policy events: Falco's priorities, the condition for "at least this
// severe", and grouping a feed by rule.
import type { KtEvent } from './api/types';
import { str } from './events';

export const PRIORITIES = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFORMATIONAL', 'DEBUG'];

export function priorityRank(p: string | undefined): number {
  const i = PRIORITIES.indexOf((p ?? '').toUpperCase());
  return i < 0 ? PRIORITIES.length : i;
}

/** policy.priority in (EMERGENCY, ..., sev); none for no minimum. */
export function severityCondition(sev: string | undefined): string {
  const i = PRIORITIES.indexOf(sev ?? '');
  if (i < 0 || i === PRIORITIES.length - 1) return '';
  return `policy.priority in (${PRIORITIES.slice(0, i + 1).join(', ')})`;
}

export interface RuleGroup {
  rule: string;
  /** The most severe priority among its events. */
  priority: string;
  count: number;
  /** The newest event's time. */
  last: string;
  events: KtEvent[];
}

/** Groups a feed (newest first) by rule: the most severe rules first, then
 * the most frequent. */
export function groupByRule(events: KtEvent[]): RuleGroup[] {
  const groups = new Map<string, RuleGroup>();
  for (const e of events) {
    const rule = str(e, 'policy.rule') ?? '(no rule)';
    const p = str(e, 'policy.priority') ?? '';
    let g = groups.get(rule);
    if (!g) {
      g = { rule, priority: p, count: 0, last: str(e, 'evt.time') ?? '', events: [] };
      groups.set(rule, g);
    }
    g.count++;
    g.events.push(e);
    if (priorityRank(p) < priorityRank(g.priority)) g.priority = p;
  }
  return [...groups.values()].sort((a, b) => priorityRank(a.priority) - priorityRank(b.priority) || b.count - a.count);
}
