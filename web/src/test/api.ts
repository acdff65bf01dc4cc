// A fake kubetrail API for component tests: routes by path, records requests.
import { vi } from 'vitest';

/** A route's answer: a body, [status, body], or a promise of either (an
 * answer that comes later, or out of order, as the test decides). */
export type Handler = (url: URL) => unknown | [number, unknown] | Promise<unknown>;

export interface FakeApi {
  requests: URL[];
  /** The requests to path (e.g. "/events"). */
  to: (path: string) => URL[];
  /** The filter parameter of the last request to path. */
  lastFilter: (path: string) => string | null;
}

export function fakeApi(routes: Record<string, Handler>): FakeApi {
  const requests: URL[] = [];
  vi.stubGlobal('fetch', vi.fn(async (input: string, init?: RequestInit) => {
    const url = new URL(input, 'http://localhost');
    requests.push(url);
    const signal = init?.signal;
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const path = url.pathname.replace(/^\/api\/v1/, '');
    const route = Object.keys(routes).find((r) => (r.endsWith('*') ? path.startsWith(r.slice(0, -1)) : path === r));
    const answer = route ? routes[route](url) : [404, { error: { code: 'not_found', message: 'no route' } }];
    // An abort while the answer is pending rejects, as fetch does.
    const out = answer instanceof Promise && signal
      ? await new Promise((resolve, reject) => {
        signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')), { once: true });
        answer.then(resolve, reject);
      })
      : await answer;
    if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const [status, body] = Array.isArray(out) && typeof out[0] === 'number' && out.length === 2 ? out : [200, out];
    return new Response(JSON.stringify(body), { status: status as number, headers: { 'Content-Type': 'application/json' } });
  }));
  return {
    requests,
    to: (path) => requests.filter((u) => u.pathname === `/api/v1${path}`),
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

/** An answer the test gives when it wants: answer.promise for a route,
 * answer.resolve(body) later. */
export function deferred<T = unknown>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}
