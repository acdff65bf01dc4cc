// The windows the analyst has looked at, for the zoom back/forward buttons.
// Browser back/forward move through the same windows (every window change is
// a history entry); record() follows either way.
import type { TimeWindow } from '../time';

export class WindowHistory {
  private stack: TimeWindow[] = [];
  private index = -1;

  /** Notes the window now shown. */
  record(w: TimeWindow): void {
    const same = (i: number) => this.stack[i]?.from === w.from && this.stack[i]?.to === w.to;
    if (same(this.index)) return;
    if (same(this.index - 1)) this.index--;
    else if (same(this.index + 1)) this.index++;
    else {
      this.stack = [...this.stack.slice(0, this.index + 1), w];
      this.index = this.stack.length - 1;
    }
  }

  previous(): TimeWindow | undefined {
    return this.stack[this.index - 1];
  }

  next(): TimeWindow | undefined {
    return this.stack[this.index + 1];
  }
}

export const windowHistory = new WindowHistory();
