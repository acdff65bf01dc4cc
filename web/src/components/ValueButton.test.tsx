import { fireEvent, render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { FieldDoc } from '../api/types';
import { AppContext, FilterActionContext, makeAppContext } from '../state/app';
import { FIELDS } from '../test/api';
import { ValueButton } from './ValueButton';

function renderValue(field: string, value: string | number) {
  const onFilter = vi.fn();
  render(
    <AppContext.Provider value={makeAppContext(FIELDS as FieldDoc[])}>
      <FilterActionContext.Provider value={onFilter}>
        <ValueButton field={field} value={value} />
      </FilterActionContext.Provider>
    </AppContext.Provider>,
  );
  return { onFilter, button: screen.getByRole('button', { name: String(value) }) };
}

describe('clicking a value', () => {
  it('adds field = value, and field != value with Alt or Shift', () => {
    const { onFilter, button } = renderValue('k8s.ns.name', 'billing');
    fireEvent.click(button);
    expect(onFilter).toHaveBeenLastCalledWith('k8s.ns.name = billing');
    fireEvent.click(button, { altKey: true });
    expect(onFilter).toHaveBeenLastCalledWith('k8s.ns.name != billing');
    fireEvent.click(button, { shiftKey: true });
    expect(onFilter).toHaveBeenLastCalledWith('k8s.ns.name != billing');
  });

  it('quotes values that need it and negates list fields with not', () => {
    const a = renderValue('proc.cmdline', 'curl -sS http://x');
    fireEvent.click(a.button);
    expect(a.onFilter).toHaveBeenLastCalledWith('proc.cmdline = "curl -sS http://x"');
    const b = renderValue('ka.user.groups', 'devs');
    fireEvent.click(b.button, { altKey: true });
    expect(b.onFilter).toHaveBeenLastCalledWith('not ka.user.groups = devs');
  });

  it('offers both from a menu on right click', () => {
    const { onFilter, button } = renderValue('proc.pid', 42);
    fireEvent.contextMenu(button);
    fireEvent.click(screen.getByRole('menuitem', { name: 'Exclude proc.pid != 42' }));
    expect(onFilter).toHaveBeenLastCalledWith('proc.pid != 42');
    expect(screen.queryByRole('menu')).toBeNull();
  });

  it('is plain text where nothing filters', () => {
    render(<ValueButton field="k8s.ns.name" value="billing" />);
    expect(screen.queryByRole('button')).toBeNull();
    expect(screen.getByText('billing')).toBeTruthy();
  });
});
