import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STATE, navigate } from '../state/url';
import { fakeApi } from '../test/api';
import { SessionPage } from './SessionPage';

const exec = (id: string, parent: string, cmd: string, t: string) => ({
  'evt.id': `n/${id}`, 'evt.category': 'process', 'evt.type': 'execve', 'evt.time': `2026-11-27T09:${t}Z`,
  'proc.exec_id': id, 'proc.pexec_id': parent, 'proc.cmdline': cmd, 'proc.name': cmd.split(' ')[0],
});

const trace = (id: string) => ({
  session: { 'session.id': id, 'entry.argv': ['bash'], first: '2026-11-27T09:20:00Z', last: '2026-11-27T09:30:00Z',
    commands: 2, connections: 0, file_changes: 0 },
  events: [exec(`${id}-bash`, 'runtime', 'bash', '20:00'), exec('shared-id', `${id}-bash`, 'id', '21:00')],
});

describe('SessionPage', () => {
  it('forgets the picked process when back/forward show another session', async () => {
    window.history.replaceState(null, '', '/sessions/s1');
    sessionStorage.setItem('kubetrail.token', 't');
    fakeApi({ '/sessions/*': (url) => trace(decodeURIComponent(url.pathname.split('/').pop()!)) });
    render(<SessionPage />);
    const tree = await screen.findByTestId('session-tree');
    fireEvent.click(within(tree).getByRole('button', { name: 'id' }));
    await waitFor(() => expect(within(screen.getByTestId('session-tree')).getByRole('treeitem', { name: 'id' })
      .getAttribute('aria-selected')).toBe('true'));

    act(() => navigate({ ...DEFAULT_STATE, page: 'session', sessionId: 's2' }));
    await screen.findByText('session s2');
    expect(within(screen.getByTestId('session-tree')).getByRole('treeitem', { name: 'id' })
      .getAttribute('aria-selected')).toBe('false');

    act(() => window.history.back());
    await screen.findByText('session s1');
    expect(within(screen.getByTestId('session-tree')).getByRole('treeitem', { name: 'id' })
      .getAttribute('aria-selected')).toBe('false');
  });
});
