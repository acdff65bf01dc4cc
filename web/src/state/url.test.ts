import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STATE, decode, encode, navigate, useAppState, type AppState } from './url';

const roundTrip = (s: AppState) => {
  const url = new URL(encode(s), 'http://x');
  return decode(url.pathname, url.search);
};

describe('URL state', () => {
  it('round-trips the activity view', () => {
    const s: AppState = {
      ...DEFAULT_STATE,
      from: Date.parse('2026-11-27T09:00:00Z'),
      to: Date.parse('2026-11-27T10:00:00.123Z'),
      q: 'proc.name in (sh, bash) and fd.sip = "10.0.0.1"',
      scope: 'k8s.cluster.name = demo and k8s.ns.name = billing',
      sources: ['process', 'network'],
      by: 'host',
      sel: 'node-1.a/42',
      details: true,
    };
    expect(roundTrip(s)).toEqual(s);
  });

  it('round-trips the session and policy pages, and writes only what is not default', () => {
    const session: AppState = { ...DEFAULT_STATE, page: 'session', sessionId: 'node-2:1747:19845', tq: 'curl' };
    expect(roundTrip(session)).toEqual(session);
    expect(encode(session)).toBe('/sessions/node-2%3A1747%3A19845?tq=curl');
    const policy: AppState = { ...DEFAULT_STATE, page: 'policy', sev: 'WARNING', group: 'flat', q: 'k8s.ns.name = billing' };
    expect(roundTrip(policy)).toEqual(policy);
    expect(encode(DEFAULT_STATE)).toBe('/');
  });

  it('reads a malformed session path as no page, without throwing', () => {
    expect(() => decode('/sessions/%E0', '')).not.toThrow();
    expect(decode('/sessions/%E0', '?tq=x').page).toBe('notfound');
    expect(decode('/sessions/a%2Fb', '').sessionId).toBe('a/b');
  });

  it('ignores what it cannot read', () => {
    const s = decode('/', '?from=yesterday&to=2026-11-27T10:00:00Z&src=bogus&by=nope');
    expect(s).toEqual(DEFAULT_STATE);
  });

  it('follows navigation, and browser back restores the previous view', async () => {
    const { result } = renderHook(() => useAppState());
    act(() => navigate({ ...DEFAULT_STATE, scope: 'k8s.ns.name = billing' }));
    act(() => navigate({ ...DEFAULT_STATE, scope: 'k8s.ns.name = billing', q: 'proc.name = curl' }));
    expect(result.current.q).toBe('proc.name = curl');
    act(() => window.history.back());
    await waitFor(() => expect(result.current.q).toBe(''));
    expect(result.current.scope).toBe('k8s.ns.name = billing');
  });
});
