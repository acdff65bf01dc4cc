import { fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { AppContext, makeAppContext } from '../state/app';
import { currentState } from '../state/url';
import { deferred, fakeApi } from '../test/api';
import { PolicyPage } from './PolicyPage';

const pe = (n: number, rule: string, priority: string) => ({
  'evt.id': `policy/${n}`, 'evt.time': `2026-11-27T10:${String(50 - n).padStart(2, '0')}:00Z`, 'evt.category': 'policy',
  'k8s.ns.name': 'billing', 'policy.rule': rule, 'policy.priority': priority, 'policy.output': `out ${n}`,
});

describe('PolicyPage', () => {
  it('groups the feed by rule with counts, or shows it flat; severity narrows it', async () => {
    window.history.replaceState(null, '', '/policy-events?from=2026-11-27T00:00:00.000Z&to=2026-11-28T00:00:00.000Z');
    sessionStorage.setItem('kubetrail.token', 't');
    const api = fakeApi({
      '/policy-events': () => ({ events: [pe(1, 'Outbound', 'WARNING'), pe(2, 'Shell', 'CRITICAL'), pe(3, 'Outbound', 'WARNING')] }),
      '/histogram': () => ({ from: '', to: '', bucket: '24h0m0s', buckets: [{ start: '', total: 3, counts: { policy: 3 } }] }),
    });
    render(<AppContext.Provider value={makeAppContext([], null)}><PolicyPage /></AppContext.Provider>);
    const feed = await screen.findByTestId('policy-feed');
    await waitFor(() => expect(screen.getAllByTestId('policy-event-row')).toHaveLength(3));
    const groups = within(feed).getAllByRole('listitem').filter((li) => li.classList.contains('rule-group'));
    expect(groups.map((g) => [g.querySelector('.rule-name')?.textContent, within(g).getByTestId('rule-count').textContent]))
      .toEqual([['Shell', '1'], ['Outbound', '2']]);
    expect(feed.textContent).toContain('3 loaded of 3 policy events');

    fireEvent.click(screen.getByRole('radio', { name: 'Flat' }));
    expect(currentState().group).toBe('flat');
    expect(screen.queryAllByTestId('rule-count')).toHaveLength(0);
    expect(screen.getAllByTestId('policy-event-row').map((r) => r.getAttribute('data-id')))
      .toEqual(['policy/1', 'policy/2', 'policy/3']);

    fireEvent.change(screen.getByRole('combobox', { name: 'Severity at least' }), { target: { value: 'ERROR' } });
    await waitFor(() => expect(api.lastFilter('/policy-events')).toBe('policy.priority in (EMERGENCY, ALERT, CRITICAL, ERROR)'));
  });

  it('opens the activity around an event', async () => {
    window.history.replaceState(null, '', '/policy-events?from=2026-11-27T00:00:00.000Z&to=2026-11-28T00:00:00.000Z&group=flat');
    sessionStorage.setItem('kubetrail.token', 't');
    fakeApi({ '/policy-events': () => ({ events: [pe(1, 'Outbound', 'WARNING')] }), '/histogram': () => ({ buckets: [] }) });
    render(<AppContext.Provider value={makeAppContext([], null)}><PolicyPage /></AppContext.Provider>);
    const link = await screen.findByRole('link', { name: 'Activity around' });
    await waitFor(() => expect(window.__ktState?.pending).toBe(0));
    expect(link.getAttribute('href')).toBe('/?around=policy%2F1');
    fireEvent.click(link);
    expect(currentState()).toMatchObject({ page: 'activity', around: 'policy/1' });
  });

  it('shows a filter error in the severity part as in the scope, and refuses unbalanced parentheses unsent', async () => {
    window.history.replaceState(null, '', '/policy-events?from=2026-11-27T00:00:00.000Z&to=2026-11-28T00:00:00.000Z&sev=ERROR&q=proc.name+%3D+sh');
    sessionStorage.setItem('kubetrail.token', 't');
    const api = fakeApi({
      // The server, say, does not know the severity field: its column is in the severity part.
      '/policy-events': () => [400, { error: { code: 'invalid', where: 'filter column 2', message: 'unknown field "policy.priority"' } }],
      '/histogram': () => ({ buckets: [] }),
    });
    render(<AppContext.Provider value={makeAppContext([], null)}><PolicyPage /></AppContext.Provider>);
    const err = await screen.findByTestId('filter-error');
    expect(err.textContent).toBe('in the scope: unknown field "policy.priority"');
    expect(err.getAttribute('data-column')).toBeNull();

    const input = screen.getByTestId('filter-input') as HTMLInputElement;
    fireEvent.change(input, { target: { value: 'proc.name = sh) or (proc.name = curl' } });
    fireEvent.keyDown(input, { key: 'Escape' });
    fireEvent.keyDown(input, { key: 'Enter' });
    await waitFor(() => expect(screen.getByTestId('filter-error').getAttribute('data-column')).toBe('15'));
    expect(api.requests.filter((u) => u.searchParams.get('filter')?.includes('curl'))).toEqual([]);
  });

  it('counts the total for the current filter only', async () => {
    window.history.replaceState(null, '', '/policy-events?from=2026-11-27T00:00:00.000Z&to=2026-11-28T00:00:00.000Z');
    sessionStorage.setItem('kubetrail.token', 't');
    const slow = deferred();
    fakeApi({
      '/policy-events': () => ({ events: [pe(1, 'Outbound', 'WARNING')] }),
      // The first total comes; the next (a new severity) is still on its way.
      '/histogram': (url) => (url.searchParams.get('filter')?.includes('priority') ? slow.promise
        : { buckets: [{ start: '', total: 7, counts: { policy: 7 } }] }),
    });
    render(<AppContext.Provider value={makeAppContext([], null)}><PolicyPage /></AppContext.Provider>);
    const feed = await screen.findByTestId('policy-feed');
    await waitFor(() => expect(feed.textContent).toContain('1 loaded of 7 policy events'));
    fireEvent.change(screen.getByRole('combobox', { name: 'Severity at least' }), { target: { value: 'ERROR' } });
    await waitFor(() => expect(feed.textContent).toContain('1 loaded policy events'));
  });
});
