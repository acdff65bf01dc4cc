import { fireEvent, render, screen, within } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { KtEvent } from '../api/types';
import { FilterActionContext } from '../state/app';
import { EventTable } from './EventTable';

const rows: KtEvent[] = [
  { 'evt.id': 'policy/1', 'evt.time': '2026-11-27T10:48:25.066Z', 'evt.category': 'policy', 'k8s.ns.name': 'billing',
    'k8s.workload.name': 'invoice-api', 'k8s.pod.name': 'invoice-api-1', 'ka.user.name': 'john.doe',
    'policy.priority': 'WARNING', 'policy.rule': 'Outbound Connection', 'policy.output': 'to 185.220.101.47:443' },
  { 'evt.id': 'n/2', 'evt.time': '2026-11-27T10:48:24Z', 'evt.category': 'network', 'k8s.ns.name': 'billing',
    'fd.cip': '10.0.0.1', 'fd.cport': 5, 'fd.sip': '185.220.101.47', 'fd.sport': 443, 'net.peer.kind': 'unknown', 'evt.res': 'SUCCESS' },
  { 'evt.id': 'n/1', 'evt.time': '2026-11-27T10:48:23Z', 'evt.category': 'process', 'k8s.node.name': 'node-1',
    'proc.cmdline': 'curl -sS http://x' },
];

describe('EventTable', () => {
  it('shows time, scope, category, summary and user per row', () => {
    render(<EventTable rows={rows} hasMore={false} loading={false} loadingMore={false} onSelect={() => {}} onLoadMore={() => {}} />);
    const [policy, network, proc] = screen.getAllByTestId('event-row');
    const cells = (r: HTMLElement) => within(r).getAllByRole('gridcell').map((c) => c.textContent);
    expect(cells(policy)).toEqual([
      '2026-11-27 10:48:25.066', 'billing / invoice-api / invoice-api-1', 'policy',
      'WARNING Outbound Connection: to 185.220.101.47:443', 'john.doe',
    ]);
    expect(cells(network)[3]).toBe('10.0.0.1:5 -> 185.220.101.47:443 [unknown]');
    expect(cells(proc).slice(1, 4)).toEqual(['node-1', 'process', 'curl -sS http://x']);
  });

  it('selects a row on click and asks for the next page near the end', () => {
    const onSelect = vi.fn();
    const onLoadMore = vi.fn();
    render(<EventTable rows={rows} hasMore loading={false} loadingMore={false} selected="n/2"
      onSelect={onSelect} onLoadMore={onLoadMore} />);
    expect(screen.getAllByTestId('event-row')[1].getAttribute('aria-selected')).toBe('true');
    fireEvent.click(screen.getAllByTestId('event-row')[2]);
    expect(onSelect).toHaveBeenCalledWith('n/1', true);
    expect(onLoadMore).toHaveBeenCalled();
  });

  it('is one Tab stop: the selected row is the active descendant, Left/Right walk its values', () => {
    const { container } = render(
      <FilterActionContext.Provider value={vi.fn()}>
        <button type="button">before</button>
        <EventTable rows={rows} hasMore={false} loading={false} loadingMore={false} selected="n/2"
          onSelect={() => {}} onLoadMore={() => {}} />
      </FilterActionContext.Provider>,
    );
    const body = screen.getByTestId('event-rows');
    const active = document.getElementById(body.getAttribute('aria-activedescendant') ?? '');
    expect(active?.getAttribute('data-id')).toBe('n/2');
    expect(active?.getAttribute('aria-selected')).toBe('true');
    const grid = container.querySelector('[role="grid"]')!;
    const stops = [...grid.querySelectorAll<HTMLElement>('[tabindex]')].filter((el) => el.tabIndex >= 0);
    expect(stops).toEqual([body]);

    body.focus();
    const values = [...active!.querySelectorAll<HTMLElement>('.value')];
    expect(values.length).toBeGreaterThan(1);
    fireEvent.keyDown(body, { key: 'ArrowRight' });
    expect(document.activeElement).toBe(values[0]);
    fireEvent.keyDown(document.activeElement!, { key: 'ArrowRight' });
    expect(document.activeElement).toBe(values[1]);
    fireEvent.keyDown(document.activeElement!, { key: 'ArrowLeft' });
    fireEvent.keyDown(document.activeElement!, { key: 'ArrowLeft' });
    expect(document.activeElement).toBe(body);
  });

  it('does not ask again for a next page that failed: it offers Retry', () => {
    const onLoadMore = vi.fn();
    const onRetry = vi.fn();
    render(<EventTable rows={rows} hasMore loading={false} loadingMore={false} moreError="503 Service Unavailable"
      onSelect={() => {}} onLoadMore={onLoadMore} onRetry={onRetry} />);
    expect(onLoadMore).not.toHaveBeenCalled();
    const failed = screen.getByTestId('load-more-failed');
    expect(failed.textContent).toContain('Could not load more events: 503 Service Unavailable');
    fireEvent.click(within(failed).getByRole('button', { name: 'Retry' }));
    expect(onRetry).toHaveBeenCalledTimes(1);
  });
});
