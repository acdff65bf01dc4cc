import { describe, expect, it } from 'vitest';
import {
  andAll, byteColumnToIndex, combine, parenError, quoteValue, sourcesCondition, userErrorIndex, valueCondition,
} from './query';

describe('values and conditions', () => {
  it('quotes what the server would quote', () => {
    expect(quoteValue('billing')).toBe('billing');
    expect(quoteValue('10.0.0.1:443')).toBe('10.0.0.1:443');
    expect(quoteValue('curl -sS http://x')).toBe('"curl -sS http://x"');
    expect(quoteValue('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoteValue('and')).toBe('"and"');
    expect(quoteValue('')).toBe('""');
  });

  it('makes = and != conditions, and negates list fields with not', () => {
    expect(valueCondition('k8s.ns.name', 'billing', false)).toBe('k8s.ns.name = billing');
    expect(valueCondition('k8s.ns.name', 'billing', true)).toBe('k8s.ns.name != billing');
    expect(valueCondition('proc.pid', 42, true, 'int')).toBe('proc.pid != 42');
    expect(valueCondition('ka.user.groups', 'devs', true, 'list')).toBe('not ka.user.groups = devs');
  });

  it('adds a condition, grouping a filter that has "or"', () => {
    expect(andAll('', 'a.b = 1')).toBe('a.b = 1');
    expect(andAll('x = 1', 'a.b = 1')).toBe('x = 1 and a.b = 1');
    expect(andAll('x = 1 or y = 2', 'a.b = 1')).toBe('(x = 1 or y = 2) and a.b = 1');
    expect(andAll('proc.name = "or"', 'a.b = 1')).toBe('proc.name = "or" and a.b = 1');
  });

  it('does not balance, by adding a condition, a filter whose parentheses do not balance', () => {
    // Wrapped in parentheses because of its "or", it would read as balanced.
    const q = andAll('a = 1) or (b = 2', 'c = 3');
    expect(parenError(q)).toBeDefined();
    expect(combine('k8s.ns.name = billing', '', q).filter).toBeNull();
  });

  it('turns the source toggles into a category condition', () => {
    expect(sourcesCondition(['process', 'network', 'file', 'k8s', 'policy'])).toBe('');
    expect(sourcesCondition(['k8s', 'process'])).toBe('evt.category in (process, k8s)');
  });
});

describe('combining scope, sources and the user filter', () => {
  it('puts the user text last and maps error columns back into it', () => {
    const c = combine('k8s.ns.name = billing', 'evt.category in (process)', 'proc.name =');
    expect(c.filter).toBe('(k8s.ns.name = billing) and (evt.category in (process)) and (proc.name =)');
    // The server reports a missing value one past the end, or at the closing parenthesis.
    expect(userErrorIndex(c, c.filter!.length + 1)).toBe('proc.name ='.length);
    expect(userErrorIndex(c, c.filter!.length)).toBe('proc.name ='.length);
    // An error on "proc.name" (column of its first byte).
    expect(userErrorIndex(c, c.filter!.indexOf('proc.name') + 1)).toBe(0);
    // An error in the scope part is not the user's.
    expect(userErrorIndex(c, 1)).toBeUndefined();
  });

  it('wraps a user filter with "or" and maps its closing parenthesis to its end', () => {
    const c = combine('k8s.ns.name = billing', '', 'a = 1 or b =');
    expect(c.filter).toBe('(k8s.ns.name = billing) and (a = 1 or b =)');
    expect(userErrorIndex(c, c.filter!.length)).toBe('a = 1 or b ='.length);
  });

  it('wraps every part in its own parentheses, and a part alone in none', () => {
    expect(combine('k8s.ns.name = billing', '', 'proc.name = sh').filter).toBe('(k8s.ns.name = billing) and (proc.name = sh)');
    expect(combine('a = 1 or b = 2', 'evt.category in (k8s)', '').filter).toBe('(a = 1 or b = 2) and (evt.category in (k8s))');
    expect(combine('k8s.ns.name = billing', '', '').filter).toBe('k8s.ns.name = billing');
    expect(combine('', '', ' proc.name = sh ').filter).toBe('proc.name = sh');
  });

  it('refuses a user filter whose parentheses do not balance: it would escape the scope', () => {
    // scope and (a = 1) or (b = 2): everything b = 2, whatever the scope.
    const stray = combine('k8s.ns.name = billing', '', 'a = 1) or (b = 2');
    expect(stray.filter).toBeNull();
    expect(stray.error).toEqual({ index: 5, message: 'unbalanced parenthesis: ")" has no matching "("' });
    const open = combine('k8s.ns.name = billing', '', '  (a = 1 or proc.name in (sh, bash)');
    expect(open.filter).toBeNull();
    expect(open.error).toEqual({ index: 2, message: 'unbalanced parenthesis: "(" is never closed' });
    // The user's text alone is refused too, and so is a scope that does not balance.
    expect(combine('', '', 'a = 1)').error?.index).toBe(5);
    expect(combine('a = 1) or (b = 2', '', 'c = 3').error).toEqual({ message: 'in the scope: unbalanced parenthesis: ")" has no matching "("' });
    // Parentheses in strings, and lists, balance or do not count.
    expect(combine('k8s.ns.name = billing', '', 'proc.cmdline = "echo )" and proc.name in (sh, bash)').error).toBeUndefined();
    expect(parenError("proc.cmdline = ')' or (a = 1)")).toBeUndefined();
  });

  it('counts columns in UTF-8 bytes, as the server does', () => {
    expect(byteColumnToIndex('é = x', 3)).toBe(1); // é is two bytes
    const c = combine('', '', '  fs.path.name = "/tmp/é" and oops');
    const col = new TextEncoder().encode('fs.path.name = "/tmp/é" and ').length + 1;
    expect(userErrorIndex(c, col)).toBe('  fs.path.name = "/tmp/é" and '.length);
    // Behind a scope, the same place.
    const s = combine('k8s.ns.name = "é"', '', 'oops');
    expect(userErrorIndex(s, new TextEncoder().encode('(k8s.ns.name = "é") and (').length + 1)).toBe(0);
    expect(userErrorIndex(s, new TextEncoder().encode(s.filter!).length)).toBe('oops'.length);
  });
});
