// What the explorer tests share: the demo (from global-setup), a signed-in
// page, waiting for the regions to render the current state, and screenshots.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { expect, test as base, type Page } from '@playwright/test';
import { ARTIFACTS, ROOT } from './kubetrail';

export { expect };

export const demo = {
  get url() { return env('KT_E2E_URL'); },
  get token() { return env('KT_E2E_TOKEN'); },
  /** john.doe's kubectl exec session, as the server names it. */
  get session() { return env('KT_E2E_SESSION'); },
};

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through playwright.config.ts (its global setup starts the demo)`);
  return v;
}

/** Console errors a test expects (a refused token's 401): per page. */
const expected = new WeakMap<Page, RegExp[]>();

/** Lets page log errors matching re (a response the test asks for, such as
 * a 401 or a 400, is logged by the browser as "Failed to load resource").
 * Content Security Policy messages are never allowed. */
export function expectConsoleErrors(page: Page, ...re: RegExp[]): void {
  expected.set(page, [...(expected.get(page) ?? []), ...re]);
}

const CSP = /content security policy/i;

export const test = base.extend<{ signedIn: Page }>({
  baseURL: async ({}, use) => { await use(demo.url); },
  /** Every page fails its test on a browser console error or an uncaught
   * exception, and on any message about the Content Security Policy. */
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || CSP.test(m.text())) problems.push(`console.${m.type()}: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await use(page);
    const allowed = expected.get(page) ?? [];
    const unexpected = problems.filter((p) => CSP.test(p) || !allowed.some((re) => re.test(p)));
    expect(unexpected, 'browser console errors').toEqual([]);
  },
  /** A page whose tab holds the token, as after signing in. */
  signedIn: async ({ page }, use) => {
    await page.addInitScript((token) => sessionStorage.setItem('kubetrail.token', token), demo.token);
    await use(page);
  },
});

export type Mark = 'table' | 'histogram' | 'scopes' | 'policy-feed' | 'session';
export const ACTIVITY: Mark[] = ['table', 'histogram', 'scopes'];

/**
 * Runs action, then waits until the page has rendered the state it led to:
 * each mark kt:<region>-rendered set again (or set at all, when the action
 * loaded a new document), no API request in flight and no region loading.
 */
export async function rendered(page: Page, action: () => Promise<unknown>, marks: Mark[] = ACTIVITY): Promise<void> {
  const names = marks.map((m) => `kt:${m}-rendered`);
  const before = page.url() === 'about:blank' ? undefined
    : await page.evaluate((n) => ({
      origin: performance.timeOrigin,
      counts: n.map((x) => performance.getEntriesByName(x, 'mark').length),
    }), names).catch(() => undefined);
  await action();
  await page.waitForFunction(({ names: n, before: b }) => {
    const sameDoc = b !== undefined && b.origin === performance.timeOrigin;
    const fresh = n.every((x, i) => performance.getEntriesByName(x, 'mark').length > (sameDoc ? b.counts[i] : 0));
    return fresh && (window.__ktState?.pending ?? 0) === 0 && !document.querySelector('[data-loading="true"]');
  }, { names, before });
}

/** Saves a screenshot under e2e/artifacts/screenshots; with KT_E2E_DOCS=1,
 * those named for the docs also go to docs/screenshots (the README's). */
export async function snap(page: Page, name: string, opts: { docs?: boolean } = {}): Promise<void> {
  // No hover or focus ring in the picture.
  await page.mouse.move(0, 899);
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  const dirs = [path.join(ARTIFACTS, 'screenshots')];
  if (opts.docs && process.env.KT_E2E_DOCS === '1') dirs.push(path.join(ROOT, 'docs', 'screenshots'));
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, `${name}.png`), animations: 'disabled', caret: 'hide' });
  }
}

declare global {
  interface Window {
    __ktState?: { pending: number };
  }
}
