// The Activity page: scope tree, histogram, filter bar and source toggles over
// a table of events with a details drawer. The table, histogram and scope
// queries go out together and each region paints as soon as its answer is in.
import { useCallback, useEffect, useMemo } from 'react';
import * as api from '../api/endpoints';
import { DetailsDrawer } from '../components/DetailsDrawer';
import { EventTable } from '../components/EventTable';
import { FilterBar } from '../components/FilterBar';
import { Histogram } from '../components/Histogram';
import { ScopeTree } from '../components/ScopeTree';
import { SourceToggles } from '../components/SourceToggles';
import { TimeControls } from '../components/TimeControls';
import { eventId } from '../events';
import { filterError, isFilterError } from '../filter/errors';
import { ALL_SOURCES, andAll, combine, sourcesCondition } from '../filter/query';
import { markRendered } from '../perf';
import { FilterActionContext, useAppContext } from '../state/app';
import { update, useAppState, type AppState } from '../state/url';
import { useApi } from '../state/useApi';
import { useEventPages } from '../state/useEventPages';
import { bucketFor, DEFAULT_SPAN, lastWindow, type TimeWindow } from '../time';

/** How far the table pages on its own to bring a linked selection into view. */
const MAX_ROWS_TO_FIND_SELECTION = 10000;

const tableBody = () => document.querySelector<HTMLElement>('[data-testid="event-rows"]');

export function ActivityPage() {
  const state = useAppState();
  const { stats, trail } = useAppContext();

  // A link without a window gets the default one, written into the URL.
  useEffect(() => {
    if (state.from === undefined && !state.around && stats !== undefined) {
      update(lastWindow(DEFAULT_SPAN.activity, trail), { replace: true });
    }
  }, [state.from, state.around, stats, trail]);

  const around = useApi(state.around ? `around:${state.around}` : null, (signal) => api.activity(state.around!, 1, signal));
  useEffect(() => {
    const a = around.data;
    if (!a || around.dataKey !== `around:${state.around}`) return;
    update({
      from: Math.floor(Date.parse(a.window.from)),
      to: Math.ceil(Date.parse(a.window.to)) + 1,
      scope: a.filter,
      q: '',
      sources: ALL_SOURCES,
      sel: eventId(a.trigger ?? a.event),
      details: true,
      around: undefined,
    }, { replace: true });
  }, [around.data, around.dataKey, state.around]);

  if (state.around) {
    return (
      <main className="page center" aria-busy={!around.error}>
        {around.error
          ? <p className="region-error" role="alert">Cannot open the activity around {state.around}: {around.error.message}</p>
          : <p className="muted">Finding the activity around {state.around}…</p>}
      </main>
    );
  }
  if (state.from === undefined || state.to === undefined) return null;
  return <Activity state={state} win={{ from: state.from, to: state.to }} />;
}

function Activity({ state, win }: { state: AppState; win: TimeWindow }) {
  const sources = sourcesCondition(state.sources);
  const combined = useMemo(() => combine(state.scope, sources, state.q), [state.scope, sources, state.q]);
  // Value completion looks within the scope and sources, the user's text aside.
  const completionFilter = useMemo(() => combine(state.scope, sources, '').filter, [state.scope, sources]);
  // The tree leaves the scope out, so that it still shows where else to go.
  const treeFilter = useMemo(() => combine('', sources, state.q).filter, [sources, state.q]);
  const query: api.Query = useMemo(() => ({ filter: combined.filter ?? '', window: win }), [combined.filter, win.from, win.to]);
  // A filter the client refuses (combined.error) is never sent: no key, no request.
  const key = combined.filter === null ? null : `${combined.filter}|${win.from}|${win.to}`;
  const bucket = bucketFor(win);

  const pages = useEventPages(key, (limit, cursor, signal) => api.searchEvents(query, limit, cursor, signal));
  const histKey = key === null ? null : `${key}|${bucket.param}`;
  const hist = useApi(histKey, (signal) => api.histogram(query, bucket.param, signal));
  const treeKey = treeFilter === null ? null : `${treeFilter}|${win.from}|${win.to}|${state.by}`;
  const tree = useApi(treeKey, (signal) => api.scopes({ filter: treeFilter ?? '', window: win }, state.by, signal));

  useEffect(() => { if (pages.key === key && !pages.error) markRendered('table'); }, [pages.key, key, pages.error]);
  // The tree does not refetch when only the scope changes, but it has then
  // rendered the new selection: that is its render for this state too.
  useEffect(() => {
    if (tree.dataKey === treeKey && tree.data) markRendered('scopes');
  }, [tree.dataKey, treeKey, tree.data, state.scope]);
  const histRendered = useCallback(() => markRendered('histogram'), []);

  const histCurrent = hist.dataKey !== undefined && hist.dataKey === histKey;
  const filterErr = useMemo(
    () => filterError(combined, pages.key === key ? pages.error : undefined, histCurrent ? hist.error : undefined),
    [combined, pages.key, pages.error, key, histCurrent, hist.error],
  );

  const rows = pages.rows;
  const selIndex = state.sel ? rows.findIndex((r) => eventId(r) === state.sel) : -1;
  const selected = selIndex >= 0 ? rows[selIndex] : undefined;
  // A selection not among the loaded rows (a pasted link, a policy event's
  // trigger) is fetched by id for the drawer...
  const fetchSelected = state.sel && !selected && !(pages.loading && !rows.length) ? state.sel : null;
  const single = useApi(fetchSelected ? `event:${fetchSelected}` : null, (signal) => api.getEvent(fetchSelected!, signal));
  const fetched = single.dataKey === `event:${state.sel}` ? single.data : undefined;
  const drawerEvent = selected ?? fetched;
  // ...and, when it lies in the window, the table pages down to it, as long
  // as the rows have not gone past its time (newest first: then it is not
  // among the results, the filter leaves it out).
  const fetchedTime = fetched ? Date.parse(String(fetched['evt.time'])) : NaN;
  const selInWindow = fetchedTime >= win.from && fetchedTime < win.to;
  const lastTime = rows.length ? Date.parse(String(rows[rows.length - 1]['evt.time'])) : NaN;
  const pastSelection = lastTime < fetchedTime;
  useEffect(() => {
    if (selInWindow && selIndex < 0 && !pastSelection && pages.next && !pages.loading && !pages.loadingMore
      && pages.key === key && rows.length < MAX_ROWS_TO_FIND_SELECTION) pages.loadMore();
  }, [selInWindow, selIndex, pastSelection, pages, key, rows.length]);

  const onFilter = useCallback((cond: string) => update({ q: andAll(state.q, cond) }), [state.q]);
  const onSelect = useCallback((id: string, open: boolean) => update({ sel: id, details: open }, { replace: true }), []);

  // Keyboard: j/k or arrows move the selection and Enter opens it, when the
  // focus is on the table (or nowhere); Esc closes the details, "/" goes to
  // the filter bar, from anywhere but a field or a menu.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target instanceof Element ? e.target : document.body;
      if (e.ctrlKey || e.metaKey || e.altKey || t.closest('input, textarea, select, [role="menu"]')) return;
      const onTable = t === document.body || t === document.documentElement || !!t.closest('[data-testid="event-rows"]');
      const move = (d: number) => {
        if (!onTable) return;
        if (!rows.length) return;
        e.preventDefault();
        const i = selIndex < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, selIndex + d));
        update({ sel: eventId(rows[i]) }, { replace: true });
      };
      switch (e.key) {
        case 'j': case 'ArrowDown': move(1); break;
        case 'k': case 'ArrowUp': move(-1); break;
        case 'Enter':
          if (onTable && state.sel && !t.closest('button, a, [role="button"]')) {
            e.preventDefault();
            update({ details: true }, { replace: true });
          }
          break;
        case 'Escape':
          if (state.details) update({ details: false }, { replace: true });
          break;
        case '/':
          e.preventDefault();
          document.getElementById('filter-input')?.focus();
          break;
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [rows, selIndex, state.sel, state.details]);

  const total = histCurrent && hist.data ? (hist.data.buckets ?? []).reduce((n, b) => n + b.total, 0) : undefined;

  return (
    <FilterActionContext.Provider value={onFilter}>
      <div className={`activity ${state.details && state.sel ? 'with-drawer' : ''}`}>
        <ScopeTree by={state.by} onBy={(by) => update({ by })} nodes={tree.data} loading={tree.loading}
          error={tree.error && !isFilterError(tree.error) ? tree.error.message : undefined}
          scope={state.scope} onScope={(scope) => update({ scope })} />
        <main className="activity-main" aria-label="Activity">
          <div className="controls">
            <FilterBar value={state.q} onApply={(q) => update({ q })} error={filterErr}
              context={{ filter: completionFilter ?? '', window: win }} />
            <div className="controls-row">
              <TimeControls window={win} onWindow={(w) => update(w)} />
              <SourceToggles enabled={state.sources} onChange={(s) => update({ sources: s })} />
            </div>
            {state.scope && (
              <div className="scope-chip" role="status" aria-label="Scope">
                <span className="muted">Scope</span>
                <code className="mono">{state.scope}</code>
                <button type="button" className="icon-btn" aria-label="Clear scope" onClick={() => update({ scope: '' })}>✕</button>
              </div>
            )}
          </div>
          <Histogram data={hist.data} loading={hist.loading} window={win} onZoom={(w) => update(w)}
            error={hist.error && !isFilterError(hist.error) ? hist.error.message : undefined}
            onRendered={histRendered} />
          <EventTable rows={rows} hasMore={!!pages.next} loading={pages.loading} loadingMore={pages.loadingMore}
            error={pages.error || combined.error ? (filterErr ? 'Correct the filter to see events.' : pages.error?.message) : undefined}
            total={total}
            moreError={pages.moreError?.message} onRetry={pages.retryMore}
            selected={state.sel} onSelect={onSelect} onLoadMore={pages.loadMore} />
        </main>
        {state.details && state.sel && (
          <DetailsDrawer event={drawerEvent} loading={single.loading}
            error={single.error?.message}
            onClose={() => update({ details: false }, { replace: true })}
            onSelect={(id) => update({ sel: id, details: true })} here={state} fallbackFocus={tableBody} />
        )}
      </div>
    </FilterActionContext.Provider>
  );
}
