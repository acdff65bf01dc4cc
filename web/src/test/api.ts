// A fake kubetrail API for component tests: routes by path, records requests.
import { vi } from 'vitest';

export type Handler = (url: URL) => unknown | [number, unknown];

export interface FakeApi {
  requests: URL[];
  /** The filter parameter of the last request to path. */
  lastFilter: (path: string) => string | null;
}

export function fakeApi(routes: Record<string, Handler>): FakeApi {
  const requests: URL[] = [];
  vi.stubGlobal('fetch', vi.fn(async (input: string, init?: RequestInit) => {
    const url = new URL(input, 'http://localhost');
    requests.push(url);
    if (init?.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const path = url.pathname.replace(/^\/api\/v1/, '');
    const route = Object.keys(routes).find((r) => (r.endsWith('*') ? path.startsWith(r.slice(0, -1)) : path === r));
    const out = route ? routes[route](url) : [404, { error: { code: 'not_found', message: 'no route' } }];
    const [status, body] = Array.isArray(out) && typeof out[0] === 'number' && out.length === 2 ? out : [200, out];
    return new Response(JSON.stringify(body), { status: status as number, headers: { 'Content-Type': 'application/json' } });
  }));
  return {
    requests,
    lastFilter: (path) => [...requests].reverse().find((u) => u.pathname === `/api/v1${path}`)?.searchParams.get('filter') ?? null,
  };
}

export const FIELDS = [
  { name: 'evt.category', type: 'string', categories: [], doc: 'Kind of activity' },
  { name: 'k8s.cluster.name', type: 'string', categories: [], doc: 'Cluster' },
  { name: 'k8s.node.name', type: 'string', categories: [], doc: 'Node' },
  { name: 'k8s.ns.name', type: 'string', categories: [], doc: 'Namespace' },
  { name: 'proc.name', type: 'string', categories: [], doc: 'Process name' },
  { name: 'proc.pid', type: 'int', categories: [], doc: 'PID' },
  { name: 'ka.user.name', type: 'string', categories: [], doc: 'User' },
  { name: 'ka.user.groups', type: 'list', categories: [], doc: 'Groups' },
];
