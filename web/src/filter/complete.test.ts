import { describe, expect, it } from 'vitest';
import type { FieldDoc } from '../api/types';
import { FIELDS } from '../test/api';
import { applySuggestion, completionContext, fieldSuggestions, operatorSuggestions, valueSuggestions } from './complete';

describe('what belongs at the caret', () => {
  const at = (text: string) => completionContext(text, text.length);

  it('offers fields at the start, after and/or/not and "("', () => {
    expect(at('k8s.n')).toMatchObject({ kind: 'field', prefix: 'k8s.n', start: 0 });
    expect(at('a = 1 and not pro')).toMatchObject({ kind: 'field', prefix: 'pro' });
    expect(at('(')).toMatchObject({ kind: 'field', prefix: '' });
  });

  it('offers operators after a field and values after an operator', () => {
    expect(at('k8s.ns.name ')).toMatchObject({ kind: 'operator', field: 'k8s.ns.name' });
    expect(at('k8s.ns.name =')).toMatchObject({ kind: 'value', field: 'k8s.ns.name', prefix: '', inList: false });
    expect(at('k8s.ns.name = bi')).toMatchObject({ kind: 'value', field: 'k8s.ns.name', prefix: 'bi', start: 14 });
    expect(at('proc.name in (sh, ba')).toMatchObject({ kind: 'value', field: 'proc.name', prefix: 'ba', inList: true });
    expect(at('proc.args = "--x=1 y')).toMatchObject({ kind: 'value', prefix: '--x=1 y' });
  });

  it('offers and/or after a comparison', () => {
    expect(at('k8s.ns.name = billing ')).toMatchObject({ kind: 'connective' });
    expect(at('proc.name exists o')).toMatchObject({ kind: 'connective', prefix: 'o' });
  });

  it('finds fields by prefix first, then by substring', () => {
    const names = fieldSuggestions(FIELDS as FieldDoc[], 'ns').map((s) => s.label);
    expect(names).toEqual(['k8s.ns.name']);
    expect(fieldSuggestions(FIELDS as FieldDoc[], 'k8s.n').map((s) => s.label)).toEqual(['k8s.node.name', 'k8s.ns.name']);
    expect(operatorSuggestions('list', 'i').map((s) => s.label)).toEqual(['intersects', 'in', 'icontains']);
  });

  it('writes values as the filter needs them: quoted when not bare, numbers as they are', () => {
    expect(valueSuggestions([{ value: 'kube-system', count: 3 }, { value: 'a b', count: 1 }, { value: 443, count: 9 }], false)
      .map((s) => s.insert)).toEqual(['kube-system ', '"a b" ', '443 ']);
    expect(valueSuggestions([{ value: 'sh', count: 1 }], true)[0].insert).toBe('sh');
  });

  it('replaces the word being typed and keeps a value apart from "="', () => {
    const ctx = at('k8s.ns.name =');
    if (ctx.kind === 'none') throw new Error('no context');
    expect(applySuggestion('k8s.ns.name =', ctx, { label: 'billing', insert: 'billing ' }))
      .toEqual({ text: 'k8s.ns.name = billing ', caret: 22 });
    const text = 'k8s.ns and x = 1';
    const c2 = completionContext(text, 3);
    if (c2.kind === 'none') throw new Error('no context');
    expect(applySuggestion(text, c2, { label: 'k8s.ns.name', insert: 'k8s.ns.name ' }).text).toBe('k8s.ns.name and x = 1');
  });
});
