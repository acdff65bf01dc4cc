// The window: presets (the last 10m … 30d), zoom out, and back/forward through
// the windows looked at.
import { windowHistory } from '../state/windowHistory';
import { formatWindow, lastWindow, PRESETS, type TimeWindow } from '../time';

interface Props {
  window: TimeWindow;
  newest?: string;
  onWindow: (w: TimeWindow) => void;
}

export function TimeControls({ window: win, newest, onWindow }: Props) {
  // Recording is idempotent, so it is safe while rendering, and the buttons
  // then know at once whether there is a window to go back to.
  windowHistory.record(win);
  const prev = windowHistory.previous();
  const next = windowHistory.next();
  const span = win.to - win.from;
  const zoomOut = () => {
    const mid = (win.from + win.to) / 2;
    onWindow({ from: Math.round(mid - span), to: Math.round(mid + span) });
  };
  return (
    <div className="time-controls" role="group" aria-label="Time window">
      <button type="button" className="icon-btn" aria-label="Previous window" title="Previous window"
        disabled={!prev} onClick={() => prev && onWindow(prev)}>◀</button>
      <button type="button" className="icon-btn" aria-label="Next window" title="Next window"
        disabled={!next} onClick={() => next && onWindow(next)}>▶</button>
      <div className="segmented" role="group" aria-label="Last">
        {PRESETS.map((p) => (
          <button key={p.label} type="button" aria-pressed={span === p.ms}
            title={`The last ${p.label}`} onClick={() => onWindow(lastWindow(p.ms, newest))}>
            {p.label}
          </button>
        ))}
      </div>
      <button type="button" className="btn" onClick={zoomOut} title="Twice as long, around the same middle">Zoom out</button>
      <span className="window-label mono" aria-label="Window">{formatWindow(win)}</span>
    </div>
  );
}
