import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { FieldDoc, Stats } from '../api/types';
import { AppContext, makeAppContext } from '../state/app';
import { currentState } from '../state/url';
import { FIELDS, deferred, fakeApi, type Handler } from '../test/api';
import { ActivityPage } from './ActivityPage';

// jsdom has no canvas: the chart is replaced, the page around it is real.
vi.mock('uplot', () => {
  class UPlot {
    static paths = { bars: () => () => null };
    static tzDate = (d: Date) => d;
    setData() {}
    setSize() {}
    setSelect() {}
    destroy() {}
  }
  return { default: UPlot };
});

const events = [
  { 'evt.id': 'n/3', 'evt.time': '2026-11-27T10:30:00Z', 'evt.category': 'process', 'k8s.cluster.name': 'demo',
    'k8s.ns.name': 'billing', 'k8s.pod.name': 'p1', 'proc.name': 'curl', 'proc.cmdline': 'curl -sS x', 'session.id': 's1' },
  { 'evt.id': 'n/2', 'evt.time': '2026-11-27T10:20:00Z', 'evt.category': 'process', 'k8s.ns.name': 'billing', 'proc.cmdline': 'id' },
  { 'evt.id': 'n/1', 'evt.time': '2026-11-27T10:10:00Z', 'evt.category': 'file', 'k8s.ns.name': 'data', 'evt.type': 'open', 'fs.path.name': '/etc/passwd' },
];

const scopes = [{ level: 'cluster', name: 'demo', count: 3, children: [
  { level: 'namespace', name: 'billing', count: 2 }, { level: 'namespace', name: 'data', count: 1 },
] }];

const WINDOW = '?from=2026-11-27T10:00:00.000Z&to=2026-11-27T11:00:00.000Z';

function setup(search = WINDOW, routes: Record<string, Handler> = {}, stats: Stats = { events: {}, bytes: 0 }, statsAt?: number) {
  window.history.replaceState(null, '', `/${search}`);
  sessionStorage.setItem('kubetrail.token', 't');
  const api = fakeApi({
    '/events': (url) => {
      const f = url.searchParams.get('filter') ?? '';
      if (f.includes('proc.nme')) {
        return [400, { error: { code: 'invalid', where: `filter column ${f.indexOf('proc.nme') + 1}`, message: 'unknown field "proc.nme"' } }];
      }
      return { events };
    },
    '/events/*': () => events[0],
    '/histogram': () => ({ from: '2026-11-27T10:00:00Z', to: '2026-11-27T11:00:00Z', bucket: '30s', buckets: [] }),
    '/scopes': () => ({ scopes }),
    ...routes,
  });
  render(
    <AppContext.Provider value={makeAppContext(FIELDS as FieldDoc[], stats, statsAt)}>
      <ActivityPage />
    </AppContext.Provider>,
  );
  return api;
}

describe('ActivityPage', () => {
  beforeEach(() => vi.unstubAllGlobals());

  it('loads table, histogram and scopes for the window, and scoping narrows the table but not the tree', async () => {
    const api = setup();
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(3));
    const events = api.requests.find((u) => u.pathname === '/api/v1/events')!;
    expect(events.searchParams.get('from')).toBe('2026-11-27T10:00:00.000Z');
    expect(api.requests.some((u) => u.pathname === '/api/v1/histogram')).toBe(true);

    fireEvent.click(await screen.findByRole('button', { name: 'namespace billing' }));
    expect(currentState().scope).toBe('k8s.cluster.name = demo and k8s.ns.name = billing');
    await waitFor(() => expect(api.lastFilter('/events')).toBe('k8s.cluster.name = demo and k8s.ns.name = billing'));
    expect(api.lastFilter('/scopes') ?? '').toBe(''); // the tree keeps showing the other namespaces
    expect(api.lastFilter('/histogram')).toBe('k8s.cluster.name = demo and k8s.ns.name = billing');
  });

  it('adds a clicked value to the filter, and combines sources, scope and filter for the API', async () => {
    const api = setup('?from=2026-11-27T10:00:00.000Z&to=2026-11-27T11:00:00.000Z&scope=k8s.ns.name+%3D+billing');
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(3));
    fireEvent.click(screen.getAllByRole('button', { name: 'curl -sS x' })[0]);
    expect(currentState().q).toBe('proc.cmdline = "curl -sS x"');
    fireEvent.click(screen.getByRole('checkbox', { name: 'Network' }));
    await waitFor(() => expect(api.lastFilter('/events')).toBe(
      '(k8s.ns.name = billing) and (evt.category in (process, file, k8s, policy)) and (proc.cmdline = "curl -sS x")'));
  });

  it('shows the server error in the filter bar at the column of the user text', async () => {
    setup('?from=2026-11-27T10:00:00.000Z&to=2026-11-27T11:00:00.000Z&scope=k8s.ns.name+%3D+billing');
    const input = screen.getByTestId('filter-input') as HTMLInputElement;
    fireEvent.change(input, { target: { value: 'proc.name = sh or proc.nme = curl' } });
    fireEvent.keyDown(input, { key: 'Escape' });
    fireEvent.keyDown(input, { key: 'Enter' });
    const err = await screen.findByTestId('filter-error');
    expect(err.getAttribute('data-column')).toBe(String('proc.name = sh or '.length + 1));
    expect(err.textContent).toContain('unknown field "proc.nme"');
  });

  it('moves the selection with j/k, opens details with Enter and closes them with Esc', async () => {
    setup();
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(3));
    act(() => { fireEvent.keyDown(document.body, { key: 'j' }); });
    expect(currentState().sel).toBe('n/3');
    act(() => { fireEvent.keyDown(document.body, { key: 'j' }); });
    act(() => { fireEvent.keyDown(document.body, { key: 'ArrowDown' }); });
    act(() => { fireEvent.keyDown(document.body, { key: 'k' }); });
    expect(currentState().sel).toBe('n/2');
    act(() => { fireEvent.keyDown(document.body, { key: 'Enter' }); });
    const drawer = await screen.findByTestId('details-drawer');
    expect(drawer.textContent).toContain('proc.cmdline');
    act(() => { fireEvent.keyDown(document.body, { key: 'Escape' }); });
    expect(screen.queryByTestId('details-drawer')).toBeNull();
    act(() => { fireEvent.keyDown(document.body, { key: '/' }); });
    expect(document.activeElement).toBe(screen.getByTestId('filter-input'));
  });

  it('opens the activity around a policy event: its window, its scope, its trigger selected', async () => {
    window.history.replaceState(null, '', '/?around=policy%2Fabc');
    sessionStorage.setItem('kubetrail.token', 't');
    fakeApi({
      '/policy-events/*': () => ({
        event: { 'evt.id': 'policy/abc' }, trigger: { 'evt.id': 'n/2' }, session: null, scope: 'container',
        window: { from: '2026-11-27T10:15:00.123456789Z', to: '2026-11-27T10:25:00.123456790Z' },
        filter: 'container.id = c0ffee or session.id = s1', events: [],
      }),
      '/events': () => ({ events }),
      '/histogram': () => ({ from: '2026-11-27T10:15:00Z', to: '2026-11-27T10:25:00Z', bucket: '5s', buckets: [] }),
      '/scopes': () => ({ scopes }),
    });
    render(<AppContext.Provider value={makeAppContext([], null)}><ActivityPage /></AppContext.Provider>);
    await waitFor(() => expect(currentState().around).toBeUndefined());
    const s = currentState();
    expect(s).toMatchObject({ scope: 'container.id = c0ffee or session.id = s1', sel: 'n/2', details: true });
    expect(new Date(s.from!).toISOString()).toBe('2026-11-27T10:15:00.123Z');
    expect(s.to! > Date.parse('2026-11-27T10:25:00.123Z')).toBe(true);
    await waitFor(() => expect(screen.getAllByTestId('event-row')[1].getAttribute('aria-selected')).toBe('true'));
  });

  it('refuses, in place, a filter whose parentheses do not balance, and never sends it', async () => {
    const api = setup(`${WINDOW}&scope=k8s.ns.name+%3D+billing`);
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(3));
    const input = screen.getByTestId('filter-input') as HTMLInputElement;
    // Sent as "scope and (...)", this would read "(scope) and (proc.name = sh) or (proc.name = curl)".
    fireEvent.change(input, { target: { value: 'proc.name = sh) or (proc.name = curl' } });
    fireEvent.keyDown(input, { key: 'Escape' });
    fireEvent.keyDown(input, { key: 'Enter' });
    const err = await screen.findByTestId('filter-error');
    expect(err.getAttribute('data-column')).toBe(String('proc.name = sh'.length + 1));
    expect(err.querySelector('mark')?.textContent).toBe(')');
    expect(err.textContent).toContain('unbalanced parenthesis: ")" has no matching "("');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    await waitFor(() => expect(screen.queryAllByTestId('event-row')).toHaveLength(0));
    expect(within(screen.getByTestId('event-table')).getByRole('alert').textContent).toBe('Correct the filter to see events.');
    expect(api.requests.filter((u) => u.searchParams.get('filter')?.includes('curl'))).toEqual([]);
  });

  it('asks again for a next page that failed only when the user says so', async () => {
    let down = true;
    const older = { 'evt.id': 'n/0', 'evt.time': '2026-11-27T10:05:00Z', 'evt.category': 'process', 'proc.cmdline': 'date' };
    const api = setup(WINDOW, {
      '/events': (url) => (!url.searchParams.get('cursor') ? { events, next: 'c1' }
        : down ? [503, { error: { code: 'unavailable', message: 'the store is not answering' } }]
        : { events: [older] }),
    });
    const failed = await screen.findByTestId('load-more-failed');
    expect(failed.textContent).toContain('Could not load more events: the store is not answering');
    const cursors = () => api.to('/events').filter((u) => u.searchParams.has('cursor'));
    await new Promise((r) => setTimeout(r, 100));
    expect(cursors()).toHaveLength(1);
    expect(screen.getAllByTestId('event-row')).toHaveLength(3);

    down = false;
    fireEvent.click(within(failed).getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(4));
    expect(cursors()).toHaveLength(2);
    expect(screen.queryByTestId('load-more-failed')).toBeNull();
  });

  it('drops a next page whose request a new scope aborted: neither rows nor an error', async () => {
    const late = deferred();
    const api = setup(WINDOW, {
      '/events': (url) => (url.searchParams.get('cursor') ? late.promise : { events, next: url.searchParams.get('filter') ? undefined : 'c1' }),
    });
    await waitFor(() => expect(api.to('/events').some((u) => u.searchParams.has('cursor'))).toBe(true));
    fireEvent.click(await screen.findByRole('button', { name: 'namespace billing' }));
    await waitFor(() => expect(api.lastFilter('/events')).toContain('billing'));
    late.resolve({ events: [{ 'evt.id': 'stale/1', 'evt.time': '2026-11-27T10:01:00Z', 'evt.category': 'file' }] });
    await waitFor(() => expect(window.__ktState?.pending).toBe(0));
    expect(screen.getAllByTestId('event-row').map((r) => r.getAttribute('data-id'))).toEqual(['n/3', 'n/2', 'n/1']);
    expect(screen.queryByTestId('load-more-failed')).toBeNull();
  });

  it('stops paging for a linked selection once the rows are older than it: the filter leaves it out', async () => {
    const start = Date.parse('2026-11-27T10:59:00Z');
    // 200 rows, 10:59:00 back to 10:25:50, and more after them.
    const many = Array.from({ length: 200 }, (_, i) => ({
      'evt.id': `n/${1000 - i}`, 'evt.time': new Date(start - i * 10e3).toISOString(), 'evt.category': 'process', 'proc.cmdline': `cmd ${i}`,
    }));
    const linked = { 'evt.id': 'x/1', 'evt.time': '2026-11-27T10:30:00Z', 'evt.category': 'k8s', 'ka.user.name': 'john.doe' };
    const api = setup(`${WINDOW}&sel=x%2F1&details=1`, {
      '/events': (url) => (url.searchParams.get('cursor') ? { events: [] } : { events: many, next: 'c1' }),
      '/events/*': () => linked,
    });
    await waitFor(() => expect(screen.getByTestId('details-drawer').textContent).toContain('john.doe'));
    await waitFor(() => expect(window.__ktState?.pending).toBe(0));
    expect(api.to('/events').filter((u) => u.searchParams.has('cursor'))).toEqual([]);
  });

  it('moves the selection with the arrows only when the focus is on the table (or nowhere)', async () => {
    setup();
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(3));
    const tree = await screen.findByRole('button', { name: 'namespace billing' });
    tree.focus();
    act(() => { fireEvent.keyDown(tree, { key: 'ArrowDown' }); });
    act(() => { fireEvent.keyDown(tree, { key: 'j' }); });
    expect(currentState().sel).toBeUndefined();
    const body = screen.getByTestId('event-rows');
    body.focus();
    act(() => { fireEvent.keyDown(body, { key: 'ArrowDown' }); });
    expect(currentState().sel).toBe('n/3');
    // The selected row is the rows' active descendant.
    await waitFor(() => expect(document.getElementById(body.getAttribute('aria-activedescendant') ?? '')?.getAttribute('data-id')).toBe('n/3'));
  });

  it('gives the focus back to the table when the details close', async () => {
    setup(`${WINDOW}&sel=n%2F2`);
    await waitFor(() => expect(screen.getAllByTestId('event-row')).toHaveLength(3));
    const body = screen.getByTestId('event-rows');
    body.focus();
    act(() => { fireEvent.keyDown(body, { key: 'Enter' }); });
    const drawer = await screen.findByTestId('details-drawer');
    const close = within(drawer).getByRole('button', { name: 'Close details' });
    expect(document.activeElement).toBe(close);
    // Arrows in the drawer do not move the selection behind it.
    act(() => { fireEvent.keyDown(close, { key: 'ArrowDown' }); });
    expect(currentState().sel).toBe('n/2');
    act(() => { fireEvent.keyDown(close, { key: 'Escape' }); });
    await waitFor(() => expect(screen.queryByTestId('details-drawer')).toBeNull());
    await waitFor(() => expect(document.activeElement).toBe(body));
  });

  it('zooms in and out with + and - on the histogram', async () => {
    setup();
    const plot = await screen.findByTestId('histogram-plot');
    plot.focus();
    act(() => { fireEvent.keyDown(plot, { key: '+' }); });
    expect(new Date(currentState().from!).toISOString()).toBe('2026-11-27T10:15:00.000Z');
    expect(new Date(currentState().to!).toISOString()).toBe('2026-11-27T10:45:00.000Z');
    act(() => { fireEvent.keyDown(screen.getByTestId('histogram-plot'), { key: '-' }); });
    expect(new Date(currentState().from!).toISOString()).toBe('2026-11-27T10:00:00.000Z');
    expect(new Date(currentState().to!).toISOString()).toBe('2026-11-27T11:00:00.000Z');
  });

  it('ends "1h" now on a trail that was live at sign-in, hours later', async () => {
    const signIn = Date.now() - 3 * 3600e3;
    // The newest event a second before sign-in; the stats have not been read since.
    setup(WINDOW, {}, { events: {}, bytes: 0, newest: new Date(signIn - 1000).toISOString() }, signIn);
    const before = Math.ceil(Date.now() / 60e3) * 60e3;
    fireEvent.click(within(screen.getByRole('group', { name: 'Last' })).getByRole('button', { name: '1h' }));
    const after = Math.ceil(Date.now() / 60e3) * 60e3;
    const { from, to } = currentState();
    expect(to).toBeGreaterThanOrEqual(before);
    expect(to).toBeLessThanOrEqual(after);
    expect(to! - from!).toBe(3600e3);
  });
});
