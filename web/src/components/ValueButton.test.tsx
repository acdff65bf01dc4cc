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
        {/* As in a virtualised row: transformed, clipping what overflows. */}
        <div data-testid="row" style={{ transform: 'translateY(90px)', overflow: 'hidden' }}>
          <ValueButton field={field} value={value} />
        </div>
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

  it('opens its menu in the document body, out of the transformed row', () => {
    const { button } = renderValue('k8s.ns.name', 'billing');
    fireEvent.contextMenu(button, { clientX: 40, clientY: 50 });
    const menu = screen.getByRole('menu');
    expect(menu.parentElement).toBe(document.body);
    expect(screen.getByTestId('row').contains(menu)).toBe(false);
    expect(menu.style.left).toBe('40px');
    expect(menu.style.top).toBe('50px');
  });

  it('closes its menu on Escape or Tab, giving the focus back to the value', () => {
    const { onFilter, button } = renderValue('k8s.ns.name', 'billing');
    button.focus();
    fireEvent.contextMenu(button);
    expect(document.activeElement).toBe(screen.getByRole('menuitem', { name: 'Filter k8s.ns.name = billing' }));
    fireEvent.keyDown(document.activeElement!, { key: 'ArrowDown' });
    expect(document.activeElement).toBe(screen.getByRole('menuitem', { name: 'Exclude k8s.ns.name != billing' }));
    fireEvent.keyDown(document.activeElement!, { key: 'Escape' });
    expect(screen.queryByRole('menu')).toBeNull();
    expect(document.activeElement).toBe(button);

    fireEvent.contextMenu(button);
    fireEvent.keyDown(document.activeElement!, { key: 'Tab' });
    expect(screen.queryByRole('menu')).toBeNull();
    expect(document.activeElement).toBe(button);

    fireEvent.contextMenu(button);
    fireEvent.click(screen.getByRole('menuitem', { name: 'Filter k8s.ns.name = billing' }));
    expect(onFilter).toHaveBeenLastCalledWith('k8s.ns.name = billing');
    expect(document.activeElement).toBe(button);
    expect(onFilter).toHaveBeenCalledTimes(1);
  });

  it('is plain text where nothing filters', () => {
    render(<ValueButton field="k8s.ns.name" value="billing" />);
    expect(screen.queryByRole('button')).toBeNull();
    expect(screen.getByText('billing')).toBeTruthy();
  });
});
