import { fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import type { TimeWindow } from '../time';
import { TimeControls } from './TimeControls';

function Controlled({ initial }: { initial: TimeWindow }) {
  const [w, setW] = useState(initial);
  return <TimeControls window={w} onWindow={setW} />;
}

const hour = { from: Date.parse('2026-11-27T10:00:00Z'), to: Date.parse('2026-11-27T11:00:00Z') };
const label = () => screen.getByLabelText('Window').textContent;
const button = (name: string) => screen.getByRole('button', { name }) as HTMLButtonElement;

describe('TimeControls', () => {
  it('zooms in and out around the middle, and walks back and forward through the windows', () => {
    render(<Controlled initial={hour} />);
    expect(button('Previous window').disabled).toBe(true);
    fireEvent.click(button('Zoom in'));
    expect(label()).toContain('2026-11-27 10:15:00 → 2026-11-27 10:45:00');
    fireEvent.click(button('Previous window'));
    expect(label()).toContain('(1h)');
    expect(button('Previous window').disabled).toBe(true);
    fireEvent.click(button('Next window'));
    expect(label()).toContain('(30m)');
  });

  it('keeps its history to itself: another page starts with none', () => {
    const first = render(<Controlled initial={hour} />);
    fireEvent.click(button('Zoom out'));
    expect(button('Previous window').disabled).toBe(false);
    first.unmount();
    render(<Controlled initial={{ from: hour.from - 86400e3, to: hour.to - 86400e3 }} />);
    expect(button('Previous window').disabled).toBe(true);
    expect(button('Next window').disabled).toBe(true);
  });
});
