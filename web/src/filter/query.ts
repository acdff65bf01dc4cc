// Building filters: quoting values, conditions for a clicked value, and the
// one filter the API gets, made of the scope, the data sources and the
// user's text, with the way back from a server error's column to the text.
import type { FieldType } from '../api/types';
import { hasOr, scan } from './lex';

/** Whether a value can be written bare; the same rule as the server's printer
 * (filter.bare), so that what the UI writes reads like what the server writes. */
export function isBare(s: string): boolean {
  if (s === '' || s === 'and' || s === 'or' || s === 'not') return false;
  return /^[A-Za-z0-9_./:@\-+*?~%=]+$/.test(s);
}

export function quoteValue(s: string): string {
  if (isBare(s)) return s;
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}

export function eq(field: string, value: string | number): string {
  return `${field} = ${typeof value === 'number' ? value : quoteValue(value)}`;
}

/** The condition a click on a value adds: field = value, or its negation.
 * On a list field "=" means "some element is", so its negation is "not ... =". */
export function valueCondition(field: string, value: string | number, negate: boolean, type?: FieldType): string {
  const cond = eq(field, value);
  if (!negate) return cond;
  if (type === 'list') return `not ${cond}`;
  return cond.replace(' = ', ' != ');
}

/** Where a filter's parentheses do not balance: a ")" with no "(" before it,
 * or a "(" never closed. Such a filter is not sent: and-ed with the scope, its
 * stray parenthesis would close the scope's group and let it escape the scope
 * ("scope and (a = 1) or (b = 2)"). Parentheses inside strings do not count. */
export function parenError(src: string): (FilterError & { index: number }) | undefined {
  const open: number[] = [];
  for (const t of scan(src).tokens) {
    if (t.kind === 'lparen') open.push(t.start);
    else if (t.kind === 'rparen') {
      if (!open.length) return { index: t.start, message: 'unbalanced parenthesis: ")" has no matching "("' };
      open.pop();
    }
  }
  if (open.length) return { index: open[open.length - 1], message: 'unbalanced parenthesis: "(" is never closed' };
  return undefined;
}

/** Wraps a condition in parentheses when and-ing it with others would change
 * what it means. A condition whose parentheses do not balance is left as it
 * is: wrapped, it would look balanced; bare, it stays refused. */
function grouped(cond: string): string {
  return hasOr(cond) && !parenError(cond) ? `(${cond})` : cond;
}

/** And-s conditions, for the user's own text (a clicked value added to it):
 * parentheses only where they are needed, so the text stays as written. */
export function andAll(...conds: string[]): string {
  const parts = conds.map((c) => c.trim()).filter(Boolean);
  return parts.length === 1 ? parts[0] : parts.map(grouped).join(' and ');
}

/** A filter error as the filter bar shows it. */
export interface FilterError {
  message: string;
  /** String index in the applied text; undefined when the error is not in it. */
  index?: number;
}

export interface Combined {
  /** The filter for the API; null when it must not be sent (see error). */
  filter: string | null;
  /** Why the filter is not sent: a part whose parentheses do not balance. */
  error?: FilterError;
  /** Where the user's trimmed text starts and ends in filter (string indexes). */
  userStart: number;
  userEnd: number;
  /** The blanks trimmed off the front of the user's text. */
  lead: number;
}

/** The filter sent to the API: scope, sources, then the user's text last, so
 * that errors at its end (a missing value) point at its end. When there is
 * more than one part, each is in its own parentheses, so none can reach into
 * another; a part whose own parentheses do not balance is refused, not sent. */
export function combine(scope: string, sources: string, user: string): Combined {
  const u = user.trim();
  const lead = user.length - user.trimStart().length;
  const parts = [scope.trim(), sources.trim()].filter(Boolean);
  const scopeError = parts.map(parenError).find(Boolean);
  const userError = parenError(u);
  if (scopeError || userError) {
    const error = userError
      ? { message: userError.message, index: lead + userError.index }
      : { message: `in the scope: ${scopeError!.message}` };
    return { filter: null, error, userStart: 0, userEnd: 0, lead };
  }
  const wrap = parts.length + (u ? 1 : 0) > 1;
  const group = (s: string) => (wrap ? `(${s})` : s);
  const prefix = parts.map(group).join(' and ');
  if (!u) return { filter: prefix, userStart: prefix.length, userEnd: prefix.length, lead };
  const head = wrap ? `${prefix} and (` : '';
  return { filter: `${head}${u}${wrap ? ')' : ''}`, userStart: head.length, userEnd: head.length + u.length, lead };
}

/** Converts a 1-based byte column (as the server counts, UTF-8) to a string index. */
export function byteColumnToIndex(s: string, column: number): number {
  let bytes = 0;
  let i = 0;
  while (i < s.length && bytes < column - 1) {
    const cp = s.codePointAt(i)!;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp > 0xffff ? 2 : 1;
  }
  return i;
}

/** Where in the user's text a server error at column falls: at its end when
 * the error is at the end or at the parenthesis closing it; undefined when the
 * error is in the scope or sources part. */
export function userErrorIndex(c: Combined, column: number): number | undefined {
  if (c.filter === null) return undefined;
  const i = byteColumnToIndex(c.filter, column);
  if (i < c.userStart) return undefined;
  return c.lead + Math.min(i - c.userStart, c.userEnd - c.userStart);
}

/** The data sources the toggles choose between, and the category of each. */
export const SOURCES = [
  { id: 'process', label: 'Commands' },
  { id: 'network', label: 'Network' },
  { id: 'file', label: 'Files' },
  { id: 'k8s', label: 'Kubernetes' },
  { id: 'policy', label: 'Policy events' },
] as const;
export type Source = (typeof SOURCES)[number]['id'];
export const ALL_SOURCES: Source[] = SOURCES.map((s) => s.id);

/** The condition the toggles add; none when every source is on (which keeps
 * gap events, the sensor's own warnings, in view). */
export function sourcesCondition(enabled: readonly Source[]): string {
  if (ALL_SOURCES.every((s) => enabled.includes(s))) return '';
  return `evt.category in (${ALL_SOURCES.filter((s) => enabled.includes(s)).join(', ')})`;
}
