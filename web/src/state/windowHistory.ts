// The windows the analyst has looked at on a page, for the zoom back/forward
// buttons. Browser back/forward move through the same windows (every window
// change is a history entry); recording follows either way. A value, not a
// shared object: each page keeps its own in its state.
import type { TimeWindow } from '../time';

export interface WindowHistory {
  readonly stack: readonly TimeWindow[];
  readonly index: number;
}

export const emptyHistory: WindowHistory = { stack: [], index: -1 };

const same = (a: TimeWindow | undefined, b: TimeWindow) => a?.from === b.from && a?.to === b.to;

/** The history with w as the window now shown (h itself when it already is). */
export function recordWindow(h: WindowHistory, w: TimeWindow): WindowHistory {
  if (same(h.stack[h.index], w)) return h;
  if (same(h.stack[h.index - 1], w)) return { ...h, index: h.index - 1 };
  if (same(h.stack[h.index + 1], w)) return { ...h, index: h.index + 1 };
  const stack = [...h.stack.slice(0, h.index + 1), w];
  return { stack, index: stack.length - 1 };
}

export const previousWindow = (h: WindowHistory): TimeWindow | undefined => h.stack[h.index - 1];
export const nextWindow = (h: WindowHistory): TimeWindow | undefined => h.stack[h.index + 1];
