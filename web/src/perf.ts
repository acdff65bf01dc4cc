// Hooks for the end-to-end tests and for measuring: how many API requests are
// in flight (window.__ktState.pending), and performance marks when a region
// has rendered the data of the current state.

declare global {
  interface Window {
    __ktState?: { pending: number };
  }
}

function ktState() {
  return (window.__ktState ??= { pending: 0 });
}

export function requestStarted(): void {
  ktState().pending++;
}

export function requestEnded(): void {
  ktState().pending = Math.max(0, ktState().pending - 1);
}

export type Region = 'table' | 'histogram' | 'scopes' | 'policy-feed' | 'session';

export function markRendered(region: Region): void {
  performance.mark(`kt:${region}-rendered`);
}
