// A forgiving scanner for the filter language (Falco's condition syntax) that
// follows the grammar's states, so the UI can tell what belongs at the caret
// (a field, an operator, a value) and whether a filter needs parentheses when
// it is and-ed with others. The server's parser stays the judge of validity:
// this never reports errors, it only reads as far as the text makes sense.

export type TokenKind = 'word' | 'string' | 'op' | 'lparen' | 'rparen' | 'comma' | 'other';

/** What the grammar expects next. */
export type State =
  | 'field' // a field name, "not" or "("
  | 'op' // an operator after a field
  | 'value' // a value after an operator
  | 'listOpen' // "(" after in / intersects
  | 'listValue' // a value inside ( ... )
  | 'listSep' // "," or ")" after a list value
  | 'conn'; // "and", "or" or ")" after a comparison

export interface Token {
  kind: TokenKind;
  text: string; // as written, quotes included
  start: number; // string index
  end: number;
  /** The grammar state before this token. */
  before: State;
  /** The field a comparison is about, for operator and value tokens. */
  field?: string;
}

export const SYMBOLIC_OPS = ['==', '!=', '<=', '>=', '=', '<', '>'];
export const WORD_OPS = ['in', 'intersects', 'contains', 'icontains', 'startswith', 'endswith', 'glob', 'exists'];

const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r';

export interface Scan {
  tokens: Token[];
  state: State;
  field?: string; // the field of the comparison in progress
  depth: number; // open groups
}

export function scan(src: string): Scan {
  const tokens: Token[] = [];
  let state: State = 'field';
  let field: string | undefined;
  let depth = 0;
  let pos = 0;

  while (pos < src.length) {
    while (pos < src.length && isSpace(src[pos])) pos++;
    if (pos >= src.length) break;
    const start = pos;
    const c = src[pos];
    let kind: TokenKind;
    if (c === '"' || c === "'") {
      pos++;
      while (pos < src.length && src[pos] !== c) pos += src[pos] === '\\' ? 2 : 1;
      pos = Math.min(pos + 1, src.length);
      kind = 'string';
    } else if (c === '(' || c === ')' || c === ',') {
      pos++;
      kind = c === '(' ? 'lparen' : c === ')' ? 'rparen' : 'comma';
    } else if (state === 'value' || state === 'listValue') {
      // A bare value runs until whitespace, "(", ")" or "," (it may hold "=").
      while (pos < src.length && !isSpace(src[pos]) && !'(),'.includes(src[pos])) pos++;
      kind = 'word';
    } else if ('=!<>'.includes(c)) {
      const op = SYMBOLIC_OPS.find((o) => src.startsWith(o, pos));
      pos += op ? op.length : 1;
      kind = op ? 'op' : 'other';
    } else {
      while (pos < src.length && !isSpace(src[pos]) && !`(),'"=!<>`.includes(src[pos])) pos++;
      kind = 'word';
    }
    const text = src.slice(start, pos);
    tokens.push({ kind, text, start, end: pos, before: state, field: state === 'field' ? undefined : field });
    [state, field, depth] = step(state, field, depth, kind, text);
  }
  return { tokens, state, field, depth };
}

function step(state: State, field: string | undefined, depth: number, kind: TokenKind, text: string):
  [State, string | undefined, number] {
  switch (state) {
    case 'field':
      if (kind === 'lparen') return ['field', undefined, depth + 1];
      if (kind === 'word' && text === 'not') return ['field', undefined, depth];
      if (kind === 'word') return ['op', text, depth];
      return ['field', undefined, depth];
    case 'op':
      if (kind === 'op') return ['value', field, depth];
      if (kind === 'word' && text === 'exists') return ['conn', undefined, depth];
      if (kind === 'word' && (text === 'in' || text === 'intersects')) return ['listOpen', field, depth];
      if (kind === 'word' && WORD_OPS.includes(text)) return ['value', field, depth];
      return ['conn', undefined, depth];
    case 'value':
      return ['conn', undefined, depth];
    case 'listOpen':
      return kind === 'lparen' ? ['listValue', field, depth] : ['conn', undefined, depth];
    case 'listValue':
      if (kind === 'rparen') return ['conn', undefined, depth];
      return ['listSep', field, depth];
    case 'listSep':
      if (kind === 'comma') return ['listValue', field, depth];
      return ['conn', undefined, depth];
    case 'conn':
      if (kind === 'word' && (text === 'and' || text === 'or')) return ['field', undefined, depth];
      if (kind === 'rparen') return ['conn', undefined, Math.max(0, depth - 1)];
      return ['conn', undefined, depth];
  }
}

/** Whether "or" joins terms anywhere in src, so that and-ing it with another
 * condition needs parentheses around it. */
export function hasOr(src: string): boolean {
  return scan(src).tokens.some((t) => t.before === 'conn' && t.kind === 'word' && t.text === 'or');
}
