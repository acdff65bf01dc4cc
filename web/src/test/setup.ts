// jsdom lacks what the virtualiser and charts observe sizes with; the tests
// give them a fixed-size world.
import { afterEach } from 'vitest';
import { cleanup } from '@testing-library/react';

class ResizeObserverStub {
  observe() {}
  unobserve() {}
  disconnect() {}
}
globalThis.ResizeObserver ??= ResizeObserverStub as unknown as typeof ResizeObserver;

// Every element measures 1000×800, so that virtualised lists render rows.
for (const [prop, size] of [['clientWidth', 1000], ['clientHeight', 800], ['offsetWidth', 1000], ['offsetHeight', 800]] as const) {
  Object.defineProperty(HTMLElement.prototype, prop, { configurable: true, get: () => size });
}

afterEach(() => {
  cleanup();
  sessionStorage.clear();
  window.history.replaceState(null, '', '/');
});
