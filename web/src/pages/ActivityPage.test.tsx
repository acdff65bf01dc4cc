import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { FieldDoc } from '../api/types';
import { AppContext, makeAppContext } from '../state/app';
import { currentState } from '../state/url';
import { FIELDS, fakeApi } from '../test/api';
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

function setup(search = '?from=2026-11-27T10:00:00.000Z&to=2026-11-27T11:00:00.000Z') {
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
  });
  render(
    <AppContext.Provider value={makeAppContext(FIELDS as FieldDoc[], { events: {}, bytes: 0 })}>
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
      'k8s.ns.name = billing and evt.category in (process, file, k8s, policy) and proc.cmdline = "curl -sS x"'));
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
});
