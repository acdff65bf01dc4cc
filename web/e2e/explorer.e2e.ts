// The explorer end to end: a real `kubetrail demo` (global-setup.ts) in
// headless Chromium, walking the demo's incident as an analyst would.
import type { Page } from '@playwright/test';
import { demo, expect, expectConsoleErrors, rendered, snap, test } from './fixtures';

const preset = (page: Page, label: string) =>
  page.getByRole('group', { name: 'Last' }).getByRole('button', { name: label, exact: true });
const namespace = (page: Page, ns: string) =>
  page.getByTestId('scope-tree').getByRole('button', { name: `namespace ${ns}`, exact: true });
const rows = (page: Page) => page.getByTestId('event-row');
const summary = (page: Page, re: RegExp) => rows(page).getByRole('gridcell', { name: re });
const params = (page: Page) => new URL(page.url()).searchParams;

async function applyFilter(page: Page, text: string) {
  const input = page.getByTestId('filter-input');
  await input.fill(text);
  await input.press('Enter');
}

/** The activity page's billing namespace over the last 6 hours (the demo's whole history). */
async function billing(page: Page) {
  await rendered(page, () => page.goto('/'));
  await rendered(page, () => preset(page, '6h').click());
  await rendered(page, () => namespace(page, 'billing').click());
  await expect(page.getByRole('status', { name: 'Scope' })).toContainText('k8s.ns.name = billing');
}

test('signs in with the token, and refuses a wrong one', async ({ page }) => {
  // The wrong token's refusal, as the browser logs it.
  expectConsoleErrors(page, /Failed to load resource: the server responded with a status of 401/);
  await page.goto('/');
  const token = page.getByTestId('login-token');
  await expect(token).toBeVisible();
  await expect(token).toBeFocused();
  await snap(page, 'login', { docs: true });

  await token.fill('kt_this-is-not-the-token');
  await page.getByTestId('login-submit').click();
  await expect(page.getByRole('alert')).toContainText('The server refused this token');
  // Only that: not "no longer accepts your token", which is for a token that was accepted.
  await expect(page.getByRole('status')).toHaveCount(0);
  await expect(token).toBeVisible();
  await expect(page.getByTestId('event-table')).toHaveCount(0);
  await snap(page, 'login-refused');

  await token.fill(demo.token);
  await rendered(page, () => page.getByTestId('login-submit').click());
  await expect(page.getByTestId('login-token')).toHaveCount(0);
  // The default window (the last hour of the trail) is written into the URL.
  expect(params(page).get('from')).toBeTruthy();
  expect(params(page).get('to')).toBeTruthy();
  await expect(rows(page).first()).toBeVisible();
  await expect(page.getByTestId('scope-tree').getByRole('treeitem').first()).toBeVisible();
});

test("scopes to billing, finds john.doe's kubectl exec and opens its session", async ({ signedIn: page }) => {
  await billing(page);
  await expect(namespace(page, 'billing').locator('xpath=ancestor::li[1]')).toHaveAttribute('aria-selected', 'true');
  // Every row is in billing.
  const scopes = await rows(page).locator('.c-scope').allTextContents();
  expect(scopes.length).toBeGreaterThan(0);
  for (const s of scopes) expect(s).toMatch(/^billing( \/|$)/);
  await snap(page, 'activity-billing', { docs: true });

  // john.doe's Kubernetes requests (his sessions' events carry his name too).
  await rendered(page, () => applyFilter(page, 'ka.user.name = john.doe and evt.category = k8s'));
  const exec = rows(page).filter({ hasText: /john\.doe get pods\/invoice-api-[\w-]+\/exec -> 101/ });
  await expect(exec).toHaveCount(1);
  await exec.click();
  const drawer = page.getByTestId('details-drawer');
  await expect(drawer.getByRole('heading', { name: 'k8s · get' })).toBeVisible();
  await expect(drawer).toContainText('66.249.64.55');

  await rendered(page, () => drawer.getByRole('link', { name: 'Open session' }).click(), ['session']);
  await expect(page).toHaveURL(`/sessions/${encodeURIComponent(demo.session)}`);
  const who = page.getByRole('region', { name: 'Who' });
  await expect(who).toContainText('john.doe');
  await expect(who).toContainText('66.249.64.55');
  await expect(page.getByRole('region', { name: 'Where' })).toContainText('invoice-api');

  const tree = page.getByTestId('session-tree');
  for (const cmd of ['bash', 'curl', 'tar', 'gzip', 'shred', 'kworker']) {
    await expect(tree.getByRole('treeitem', { name: new RegExp(`^(\\S*/)?${cmd}\\b`) }).first()).toBeVisible();
  }
  const timeline = page.getByTestId('session-timeline');
  await expect(timeline.getByRole('listitem').first()).toBeVisible();
  await snap(page, 'session', { docs: true });

  // The outbound connections to the attacker's address, through the timeline's filter.
  await page.getByRole('searchbox', { name: 'Filter the timeline' }).fill('185.220.101.47');
  const outbound = timeline.getByRole('listitem').filter({ hasText: /network.*-> 185\.220\.101\.47:(80|443) \[unknown\]/ });
  await expect(outbound.first()).toBeVisible();
  await expect(page).toHaveURL(/tq=185\.220\.101\.47/);
  await page.getByRole('searchbox', { name: 'Filter the timeline' }).fill('');

  await page.getByLabel('Theme').selectOption('dark');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await snap(page, 'session-dark', { docs: true });
});

test('opens the "Terminal shell in container" policy event and lands on the activity around it', async ({ signedIn: page }) => {
  await rendered(page, () => page.goto('/policy-events'), ['policy-feed']);
  const feed = page.getByTestId('policy-feed');
  for (const rule of ['Terminal shell in container', 'Kubectl Exec or Attach into Pod', 'Network Tool Launched in Container',
    'Outbound Connection to Unknown IP', 'Shell History Deleted or Shredded']) {
    await expect(feed.getByText(rule, { exact: true }).first()).toBeVisible();
  }
  await snap(page, 'policy-events', { docs: true });

  const shell = page.getByTestId('policy-event-row').filter({ hasText: 'Terminal shell in container' });
  await expect(shell).toHaveCount(1);
  await expect(shell).toContainText('john.doe');
  await rendered(page, () => shell.getByText(/A shell was spawned in a container/).click());
  await expect(page).not.toHaveURL(/around=/);
  const sel = params(page).get('sel');
  expect(sel).toBeTruthy();
  expect(params(page).get('details')).toBe('1');

  // The trigger (john.doe's bash) is selected and open in the drawer.
  const trigger = page.locator(`[data-testid="event-row"][data-id="${sel}"]`);
  await expect(trigger).toHaveAttribute('aria-selected', 'true');
  await expect(trigger).toBeInViewport();
  const drawer = page.getByTestId('details-drawer');
  await expect(drawer.getByRole('heading', { name: 'process · execve' })).toBeVisible();
  await expect(drawer.locator('.drawer-summary')).toHaveText('bash');
  // The activity around it: the container and john.doe's session.
  await expect(page.getByRole('status', { name: 'Scope' })).toContainText(`session.id = ${demo.session}`);
  await snap(page, 'activity-around', { docs: true });

  // Only the commands: what the session ran is all there.
  for (const source of ['Network', 'Files', 'Policy events']) {
    await rendered(page, () => page.getByRole('checkbox', { name: source, exact: true }).uncheck());
  }
  for (const cmd of [/^curl /, /^tar /, /^shred -u/]) await expect(summary(page, cmd).first()).toBeVisible();
  await expect(trigger).toHaveAttribute('aria-selected', 'true');

  // ...and it is the session reached from the scope tree.
  await rendered(page, () => drawer.getByRole('link', { name: 'Open session' }).click(), ['session']);
  await expect(page).toHaveURL(`/sessions/${encodeURIComponent(demo.session)}`);
});

test('a bad filter shows its error in place', async ({ signedIn: page }) => {
  // The server's refusal of the bad filter, as the browser logs it.
  expectConsoleErrors(page, /Failed to load resource: the server responded with a status of 400/);
  await billing(page);
  const before = await rows(page).count();
  expect(before).toBeGreaterThan(0);

  await applyFilter(page, 'proc.name = (sh)');
  const error = page.getByTestId('filter-error');
  await expect(error).toBeVisible();
  // The server's column (13, in the user's text, though the query also holds the scope).
  await expect(error).toHaveAttribute('data-column', '13');
  await expect(error).toContainText('column 13');
  await expect(error).toContainText('takes a single value');
  await expect(page.getByTestId('filter-input')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByTestId('filter-input')).toHaveValue('proc.name = (sh)');
  expect(params(page).get('q')).toBe('proc.name = (sh)');
  // The table says why it is empty, and nothing else shows the raw error.
  const table = page.getByTestId('event-table');
  await expect(table).toHaveAttribute('data-loading', 'false');
  await expect(table.getByRole('alert')).toHaveText('Correct the filter to see events.');
  await expect(rows(page)).toHaveCount(0);
  await expect(page.getByTestId('histogram').getByRole('alert')).toHaveCount(0);
  await expect(page.getByTestId('scope-tree').getByRole('alert')).toHaveCount(0);
  await expect(page.locator('body')).not.toContainText('{"error"');
  await snap(page, 'bad-filter', { docs: true });

  // Parentheses that do not balance would let the filter out of the scope:
  // refused as it is typed, in the same place, and never sent.
  const sent: string[] = [];
  page.on('request', (r) => { if (r.url().includes('/api/')) sent.push(r.url()); });
  await applyFilter(page, 'proc.name = sh) or (proc.name = curl');
  await expect(error).toHaveAttribute('data-column', '15');
  await expect(error).toContainText('unbalanced parenthesis');
  await expect(table.getByRole('alert')).toHaveText('Correct the filter to see events.');
  await expect(rows(page)).toHaveCount(0);
  expect(sent.filter((u) => new URL(u).searchParams.get('filter')?.includes('curl'))).toEqual([]);

  // Corrected, the events are back.
  await rendered(page, () => applyFilter(page, 'proc.name = curl'));
  await expect(error).toHaveCount(0);
  await expect(summary(page, /^curl /).first()).toBeVisible();
});

test('the keyboard: the table is one Tab stop, the details and the value menu give the focus back', async ({ signedIn: page }) => {
  await billing(page);
  const body = page.getByTestId('event-rows');
  await body.focus();
  await page.keyboard.press('ArrowDown');
  const sel = params(page).get('sel');
  expect(sel).toBeTruthy();
  const selected = page.locator(`[data-testid="event-row"][data-id="${sel}"]`);
  await expect(body).toHaveAttribute('aria-activedescendant', (await selected.getAttribute('id'))!);
  // Tab leaves the table at once, not value by value.
  await page.keyboard.press('Tab');
  await expect(body).not.toBeFocused();
  await expect(page.getByTestId('event-table').locator(':focus')).toHaveCount(0);

  // Enter opens the details; Escape closes them and the focus is back on the rows.
  await body.focus();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('button', { name: 'Close details' })).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('details-drawer')).toHaveCount(0);
  await expect(body).toBeFocused();

  // A value's menu opens over the table (not clipped inside its row), and
  // Escape closes it, giving the focus back to the value.
  await page.keyboard.press('ArrowRight');
  const value = selected.locator('.value').first();
  await expect(value).toBeFocused();
  await value.click({ button: 'right' });
  const menu = page.getByRole('menu');
  await expect(menu).toBeVisible();
  expect(await menu.evaluate((m) => m.parentElement === document.body)).toBe(true);
  await expect(menu.getByRole('menuitem').first()).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(menu).toHaveCount(0);
  await expect(value).toBeFocused();

  // "+" on the histogram zooms in.
  const span = () => Date.parse(params(page).get('to')!) - Date.parse(params(page).get('from')!);
  const wide = span();
  await page.getByTestId('histogram-plot').focus();
  await rendered(page, () => page.keyboard.press('+'));
  expect(span()).toBe(wide / 2);
});

test('a malformed session link shows "no such page"', async ({ signedIn: page }) => {
  await page.goto('/sessions/%E0');
  await expect(page.getByRole('alert')).toContainText('There is no page at /sessions/%E0');
  await page.getByRole('link', { name: 'Go to the activity' }).click();
  await expect(page.getByTestId('event-table')).toBeVisible();
});

test('the URL holds the view: a reload gives it back, back walks the steps', async ({ signedIn: page }) => {
  await rendered(page, () => page.goto('/'));
  const lastHour = page.url();
  const windowLabel = page.getByLabel('Window', { exact: true });
  await expect(windowLabel).toContainText('(1h)');
  await rendered(page, () => preset(page, '6h').click());
  const sixHours = page.url();
  await rendered(page, () => namespace(page, 'billing').click());
  const scoped = page.url();
  await rendered(page, () => applyFilter(page, 'proc.name = curl'));
  const filtered = page.url();
  expect(params(page).get('scope')).toContain('k8s.ns.name = billing');
  expect(params(page).get('q')).toBe('proc.name = curl');

  const view = async () => ({
    window: await windowLabel.textContent(),
    filter: await page.getByTestId('filter-input').inputValue(),
    scope: await page.getByRole('status', { name: 'Scope' }).textContent(),
    selected: await page.getByTestId('scope-tree').locator('[aria-selected="true"] > .tree-row .tree-label').getAttribute('aria-label'),
    rows: await rows(page).evaluateAll((rs) => rs.map((r) => r.getAttribute('data-id'))),
  });
  const before = await view();
  expect(before.rows.length).toBeGreaterThan(0);
  expect(before.selected).toBe('namespace billing');

  await rendered(page, () => page.reload());
  expect(page.url()).toBe(filtered);
  expect(await view()).toEqual(before);

  await rendered(page, () => page.goBack());
  expect(page.url()).toBe(scoped);
  await expect(page.getByTestId('filter-input')).toHaveValue('');
  await expect(page.getByRole('status', { name: 'Scope' })).toContainText('k8s.ns.name = billing');

  await rendered(page, () => page.goBack());
  expect(page.url()).toBe(sixHours);
  await expect(page.getByRole('status', { name: 'Scope' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'All scopes' })).toHaveAttribute('aria-pressed', 'true');
  await expect(windowLabel).toContainText('(6h)');

  await rendered(page, () => page.goBack());
  expect(page.url()).toBe(lastHour);
  await expect(windowLabel).toContainText('(1h)');
});
