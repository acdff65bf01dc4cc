import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { FieldDoc } from '../api/types';
import { AppContext, makeAppContext } from '../state/app';
import { FIELDS, fakeApi } from '../test/api';
import { FilterBar, type FilterError } from './FilterBar';

const context = { filter: 'k8s.cluster.name = demo', window: { from: 0, to: 3600e3 } };

function renderBar(value = '', error?: FilterError, onApply = vi.fn()) {
  render(
    <AppContext.Provider value={makeAppContext(FIELDS as FieldDoc[])}>
      <FilterBar value={value} onApply={onApply} error={error} context={context} />
    </AppContext.Provider>,
  );
  return { input: screen.getByTestId('filter-input') as HTMLInputElement, onApply };
}

function type(input: HTMLInputElement, text: string) {
  fireEvent.change(input, { target: { value: text, selectionStart: text.length } });
}

describe('FilterBar', () => {
  it('marks the server error at its column, with the message beside it', () => {
    const { input } = renderBar('k8s.ns.name = billing and proc.nme = curl', { message: 'unknown field "proc.nme"', index: 26 });
    const err = screen.getByTestId('filter-error');
    expect(err.getAttribute('data-column')).toBe('27');
    expect(err.querySelector('mark')?.textContent).toBe('p');
    expect(err.textContent).toContain('column 27: unknown field "proc.nme"');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    // The error belongs to the applied text: editing hides it.
    type(input, 'k8s.ns.name = billing and proc.name = curl');
    expect(screen.queryByTestId('filter-error')).toBeNull();
  });

  it('marks an error at the end (a missing value) past the last character', () => {
    renderBar('proc.name =', { message: 'expected a value', index: 11 });
    expect(screen.getByTestId('filter-error').querySelector('mark')?.textContent).toBe(' ');
  });

  it('offers field names, and Tab takes one', () => {
    const { input } = renderBar();
    type(input, 'k8s.n');
    const options = screen.getAllByRole('option').map((o) => o.textContent);
    expect(options).toEqual(['k8s.node.namestring', 'k8s.ns.namestring']);
    fireEvent.keyDown(input, { key: 'ArrowDown' });
    fireEvent.keyDown(input, { key: 'ArrowDown' });
    fireEvent.keyDown(input, { key: 'Tab' });
    expect(input.value).toBe('k8s.ns.name ');
  });

  it('offers the values of the field after "=", from the server', async () => {
    const api = fakeApi({
      '/values': (url) => [
        { value: 'billing', count: 1234 },
        { value: 'billing-jobs', count: 5 },
      ].filter((v) => v.value.startsWith(url.searchParams.get('prefix') ?? '')),
    });
    sessionStorage.setItem('kubetrail.token', 't');
    const { input } = renderBar();
    type(input, 'k8s.ns.name = bi');
    await waitFor(() => expect(screen.getAllByRole('option')).toHaveLength(2));
    const req = api.requests.find((u) => u.pathname === '/api/v1/values')!;
    expect(req.searchParams.get('field')).toBe('k8s.ns.name');
    expect(req.searchParams.get('prefix')).toBe('bi');
    expect(req.searchParams.get('filter')).toBe('k8s.cluster.name = demo');
    expect(screen.getAllByRole('option')[0].textContent).toBe('billing1,234');
    fireEvent.mouseDown(screen.getAllByRole('option')[0]);
    expect(input.value).toBe('k8s.ns.name = billing ');
  });

  it('applies on Enter', () => {
    const { input, onApply } = renderBar();
    type(input, '  proc.name = curl ');
    act(() => { fireEvent.keyDown(input, { key: 'Escape' }); });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onApply).toHaveBeenCalledWith('proc.name = curl');
  });
});
