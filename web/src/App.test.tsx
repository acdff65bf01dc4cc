import { fireEvent, render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { Page } from './App';
import { currentState } from './state/url';

// jsdom has no canvas: the chart the activity page holds is replaced.
vi.mock('uplot', () => ({ default: class {} }));

describe('the page the URL names', () => {
  it('is a "no such page" for a malformed session path, with a way to the activity', () => {
    window.history.replaceState(null, '', '/sessions/%E0');
    render(<Page />);
    expect(screen.getByRole('alert').textContent).toContain('There is no page at /sessions/%E0');
    fireEvent.click(screen.getByRole('link', { name: 'Go to the activity' }));
    expect(currentState().page).toBe('activity');
  });
});
