// The whole view lives in the URL: page, window, scope, filter, sources, tree
// grouping, selection. A pasted link reproduces the view, and browser
// back/forward walk through the analyst's steps. Only what differs from the
// defaults is written, so links stay short.
import { useSyncExternalStore } from 'react';
import { ALL_SOURCES, SOURCES, type Source } from '../filter/query';

/** notfound: a path that names nothing readable (a malformed session id). */
export type Page = 'activity' | 'session' | 'policy' | 'notfound';
export type GroupBy = 'workload' | 'host';
export type PolicyGrouping = 'rule' | 'flat';

export interface AppState {
  page: Page;
  /** The session shown on the session page. */
  sessionId?: string;
  /** The window [from, to) in ms; absent until the default is chosen. */
  from?: number;
  to?: number;
  /** The user's filter text. */
  q: string;
  /** The scope condition the scope tree (or "activity around") set; kept
   * apart from q and and-ed with it for API calls. */
  scope: string;
  sources: Source[];
  by: GroupBy;
  /** The selected event's id, and whether its details are open. */
  sel?: string;
  details: boolean;
  /** A policy event whose surrounding activity is to be shown: resolved into
   * window, scope and selection, then dropped from the URL. */
  around?: string;
  /** Policy page: the lowest priority shown, and the grouping. */
  sev?: string;
  group: PolicyGrouping;
  /** Session page: the timeline's text filter. */
  tq: string;
}

export const DEFAULT_STATE: AppState = {
  page: 'activity', q: '', scope: '', sources: ALL_SOURCES, by: 'workload', details: false, group: 'rule', tq: '',
};

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function parseTime(s: string | null): number | undefined {
  if (!s) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

export function encode(s: AppState): string {
  const path =
    s.page === 'session' ? `/sessions/${encodeURIComponent(s.sessionId ?? '')}`
    : s.page === 'policy' ? '/policy-events'
    : '/';
  const q = new URLSearchParams();
  const set = (k: string, v: string | undefined, dflt = '') => { if (v !== undefined && v !== dflt) q.set(k, v); };
  if (s.page !== 'session') {
    set('from', s.from === undefined ? undefined : iso(s.from));
    set('to', s.to === undefined ? undefined : iso(s.to));
    set('q', s.q);
  }
  if (s.page === 'activity') {
    set('scope', s.scope);
    set('src', s.sources.join(','), ALL_SOURCES.join(','));
    set('by', s.by, DEFAULT_STATE.by);
    set('sel', s.sel);
    set('details', s.details ? '1' : undefined);
    set('around', s.around);
  }
  if (s.page === 'policy') {
    set('sev', s.sev);
    set('group', s.group, DEFAULT_STATE.group);
  }
  if (s.page === 'session') set('tq', s.tq);
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

export function decode(pathname: string, search: string): AppState {
  const q = new URLSearchParams(search);
  const session = /^\/sessions\/(.+)$/.exec(pathname);
  const page: Page = session ? 'session' : pathname.startsWith('/policy-events') ? 'policy' : 'activity';
  const src = q.get('src');
  const chosen = SOURCES.map((x) => x.id).filter((id) => src?.split(',').includes(id));
  const sources = chosen.length ? chosen : ALL_SOURCES;
  const state: AppState = {
    ...DEFAULT_STATE,
    page,
    q: q.get('q') ?? '',
    scope: q.get('scope') ?? '',
    sources,
    by: q.get('by') === 'host' ? 'host' : 'workload',
    details: q.get('details') === '1',
    group: q.get('group') === 'flat' ? 'flat' : 'rule',
    tq: q.get('tq') ?? '',
  };
  const from = parseTime(q.get('from'));
  const to = parseTime(q.get('to'));
  if (from !== undefined && to !== undefined && from < to) Object.assign(state, { from, to });
  for (const k of ['sel', 'around', 'sev'] as const) {
    const v = q.get(k);
    if (v) state[k] = v;
  }
  if (session) {
    // A malformed escape (/sessions/%E0) names no session; it must not throw
    // here, where every render reads the URL.
    try {
      state.sessionId = decodeURIComponent(session[1]);
    } catch {
      return { ...DEFAULT_STATE, page: 'notfound' };
    }
  }
  return state;
}

// ---- Navigation over history.pushState / popstate ----

const NAVIGATE = 'kt:navigate';

function subscribe(onChange: () => void): () => void {
  window.addEventListener('popstate', onChange);
  window.addEventListener(NAVIGATE, onChange);
  return () => {
    window.removeEventListener('popstate', onChange);
    window.removeEventListener(NAVIGATE, onChange);
  };
}

const href = () => window.location.pathname + window.location.search;

let cached: { href: string; state: AppState } | undefined;

/** The current state, the same object for the same URL (so it can be a
 * dependency of effects and memos). */
export function currentState(): AppState {
  const h = href();
  if (cached?.href !== h) cached = { href: h, state: decode(window.location.pathname, window.location.search) };
  return cached.state;
}

export function useAppState(): AppState {
  return useSyncExternalStore(subscribe, currentState);
}

export interface NavigateOptions {
  /** Replace the history entry rather than add one (selection moves, defaults
   * filled in), so that back skips them. */
  replace?: boolean;
}

export function navigate(s: AppState, opts: NavigateOptions = {}): void {
  const url = encode(s);
  if (url === href()) return;
  if (opts.replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  window.dispatchEvent(new Event(NAVIGATE));
}

/** Changes part of the current state. */
export function update(patch: Partial<AppState>, opts?: NavigateOptions): void {
  navigate({ ...currentState(), ...patch }, opts);
}
