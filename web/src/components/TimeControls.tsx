// The window: presets (the last 10m … 30d), zoom in and out, and back/forward
// through the windows looked at on this page.
import { useState } from 'react';
import { useAppContext } from '../state/app';
import { emptyHistory, nextWindow, previousWindow, recordWindow } from '../state/windowHistory';
import { formatWindow, lastWindow, PRESETS, zoomWindow, type TimeWindow } from '../time';

interface Props {
  window: TimeWindow;
  onWindow: (w: TimeWindow) => void;
}

export function TimeControls({ window: win, onWindow }: Props) {
  const { trail } = useAppContext();
  // The history is this page's state, brought up to date with the window as
  // it renders (React's way of adjusting state to a prop: nothing outside the
  // component changes), so the buttons know at once whether there is a window
  // to go back to.
  const [history, setHistory] = useState(() => recordWindow(emptyHistory, win));
  const recorded = recordWindow(history, win);
  if (recorded !== history) setHistory(recorded);
  const prev = previousWindow(recorded);
  const next = nextWindow(recorded);
  const span = win.to - win.from;
  return (
    <div className="time-controls" role="group" aria-label="Time window">
      <button type="button" className="icon-btn" aria-label="Previous window" title="Previous window"
        disabled={!prev} onClick={() => prev && onWindow(prev)}>◀</button>
      <button type="button" className="icon-btn" aria-label="Next window" title="Next window"
        disabled={!next} onClick={() => next && onWindow(next)}>▶</button>
      <div className="segmented" role="group" aria-label="Last">
        {PRESETS.map((p) => (
          <button key={p.label} type="button" aria-pressed={span === p.ms}
            title={`The last ${p.label}`} onClick={() => onWindow(lastWindow(p.ms, trail))}>
            {p.label}
          </button>
        ))}
      </div>
      <button type="button" className="btn" onClick={() => onWindow(zoomWindow(win, 0.5))}
        title="Half as long, around the same middle (+ on the histogram)">Zoom in</button>
      <button type="button" className="btn" onClick={() => onWindow(zoomWindow(win, 2))}
        title="Twice as long, around the same middle (- on the histogram)">Zoom out</button>
      <span className="window-label mono" aria-label="Window">{formatWindow(win)}</span>
    </div>
  );
}
