// What to offer at the caret of the filter bar: field names where a field
// belongs, operators after a field, the field's values after an operator (or
// inside "in (...)"), and "and"/"or" after a comparison.
import type { FieldDoc, FieldType, ValueCount } from '../api/types';
import { scan, SYMBOLIC_OPS, WORD_OPS } from './lex';
import { quoteValue } from './query';

export type CompletionContext =
  | { kind: 'field'; prefix: string; start: number; end: number }
  | { kind: 'operator'; field: string; prefix: string; start: number; end: number }
  | { kind: 'value'; field: string; prefix: string; start: number; end: number; inList: boolean }
  | { kind: 'connective'; prefix: string; start: number; end: number }
  | { kind: 'none' };

export function completionContext(text: string, caret: number): CompletionContext {
  const { tokens, state, field } = scan(text.slice(0, caret));
  const last = tokens[tokens.length - 1];
  // The token the caret touches is the one being typed; its end in the whole
  // text is where a completion's replacement stops.
  const touching = last && last.end === caret && (last.kind === 'word' || last.kind === 'string') ? last : undefined;
  if (touching) {
    const end = touching.start + wordLength(text, touching.start, touching.kind === 'string');
    const prefix = touching.kind === 'string' ? unquote(touching.text) : touching.text;
    const at = { prefix, start: touching.start, end };
    switch (touching.before) {
      case 'field':
        return { kind: 'field', ...at };
      case 'op':
        return { kind: 'operator', field: touching.field!, ...at };
      case 'value':
      case 'listValue':
        return { kind: 'value', field: touching.field!, inList: touching.before === 'listValue', ...at };
      case 'conn':
        return { kind: 'connective', ...at };
      default:
        return { kind: 'none' };
    }
  }
  // Right after "=" the user wants a value: offer it with a space before.
  const at = { prefix: '', start: caret, end: caret };
  switch (state) {
    case 'field':
      return { kind: 'field', ...at };
    case 'op':
      return { kind: 'operator', field: field!, ...at };
    case 'value':
      return { kind: 'value', field: field!, inList: false, ...at };
    case 'listValue':
      return { kind: 'value', field: field!, inList: true, ...at };
    case 'conn':
      return { kind: 'connective', ...at };
    default:
      return { kind: 'none' };
  }
}

function wordLength(text: string, start: number, quoted: boolean): number {
  if (quoted) {
    const q = text[start];
    let i = start + 1;
    while (i < text.length && text[i] !== q) i += text[i] === '\\' ? 2 : 1;
    return Math.min(i + 1, text.length) - start;
  }
  let i = start;
  while (i < text.length && !/[\s(),]/.test(text[i])) i++;
  return i - start;
}

function unquote(s: string): string {
  return s.slice(1).replace(/["']$/, '').replace(/\\(.)/g, '$1');
}

const OPS_BY_TYPE: Record<FieldType, string[]> = {
  string: ['=', '!=', 'in', 'contains', 'icontains', 'startswith', 'endswith', 'glob', 'exists', '<', '<=', '>', '>='],
  int: ['=', '!=', '<', '<=', '>', '>=', 'in', 'exists'],
  time: ['>=', '<', '>', '<=', '=', '!=', 'exists'],
  list: ['=', '!=', 'intersects', 'in', 'contains', 'icontains', 'startswith', 'endswith', 'glob', 'exists'],
};

export function operatorsFor(type: FieldType | undefined): string[] {
  return type ? OPS_BY_TYPE[type] : [...SYMBOLIC_OPS, ...WORD_OPS];
}

export interface Suggestion {
  label: string; // what the list shows
  insert: string; // what replaces [start, end)
  detail?: string; // type, count or doc
}

/** Field names matching prefix: those starting with it first, then those
 * holding it (so "ns" finds k8s.ns.name), plus "not" at the start. */
export function fieldSuggestions(fields: FieldDoc[], prefix: string, limit = 12): Suggestion[] {
  const p = prefix.toLowerCase();
  const starts = fields.filter((f) => f.name.startsWith(p));
  const holds = p ? fields.filter((f) => !f.name.startsWith(p) && f.name.includes(p)) : [];
  const out: Suggestion[] = [...starts, ...holds].slice(0, limit).map((f) => ({ label: f.name, insert: `${f.name} `, detail: f.type }));
  if ('not'.startsWith(p) && p) out.push({ label: 'not', insert: 'not ', detail: 'negation' });
  return out;
}

export function operatorSuggestions(type: FieldType | undefined, prefix: string): Suggestion[] {
  return operatorsFor(type)
    .filter((op) => op.startsWith(prefix))
    .map((op) => ({ label: op, insert: op === 'in' || op === 'intersects' ? `${op} (` : `${op} ` }));
}

export function valueSuggestions(values: ValueCount[], inList: boolean): Suggestion[] {
  return values.map((v) => {
    const text = typeof v.value === 'number' ? String(v.value) : quoteValue(v.value);
    return { label: String(v.value), insert: inList ? text : `${text} `, detail: v.count.toLocaleString() };
  });
}

export function connectiveSuggestions(prefix: string): Suggestion[] {
  return ['and', 'or'].filter((w) => w.startsWith(prefix)).map((w) => ({ label: w, insert: `${w} ` }));
}

/** Applies a suggestion: returns the new text and where the caret goes. */
export function applySuggestion(text: string, ctx: Exclude<CompletionContext, { kind: 'none' }>, s: Suggestion):
  { text: string; caret: number } {
  // After "=" typed without a space, keep the value apart from it.
  const pad = ctx.start > 0 && ctx.start === ctx.end && !/[\s(]/.test(text[ctx.start - 1]) ? ' ' : '';
  const insert = pad + s.insert;
  let rest = text.slice(ctx.end);
  if (insert.endsWith(' ') && rest.startsWith(' ')) rest = rest.slice(1);
  return { text: text.slice(0, ctx.start) + insert + rest, caret: ctx.start + insert.length };
}
