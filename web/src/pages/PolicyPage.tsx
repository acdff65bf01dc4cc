// Policy events: a feed filtered by severity, rule, scope and time, grouped
// by rule with counts or flat. Each event opens the activity around it.
import { useCallback, useEffect, useMemo, useState } from 'react';
import * as api from '../api/endpoints';
import type { KtEvent } from '../api/types';
import { FilterBar } from '../components/FilterBar';
import { Link } from '../components/Link';
import { TimeControls } from '../components/TimeControls';
import { ValueButton } from '../components/ValueButton';
import { eventId, scopeParts, str } from '../events';
import { Parts } from '../components/EventTable';
import { filterError } from '../filter/errors';
import { andAll, combine, eq } from '../filter/query';
import { markRendered } from '../perf';
import { groupByRule, PRIORITIES, severityCondition, type RuleGroup } from '../policy';
import { FilterActionContext, useAppContext } from '../state/app';
import { DEFAULT_STATE, navigate, update, useAppState, type AppState } from '../state/url';
import { useApi } from '../state/useApi';
import { useEventPages } from '../state/useEventPages';
import { DEFAULT_SPAN, formatTime, lastWindow, type TimeWindow } from '../time';

export function PolicyPage() {
  const state = useAppState();
  const { stats, trail } = useAppContext();
  useEffect(() => {
    if (state.from === undefined && stats !== undefined) update(lastWindow(DEFAULT_SPAN.policy, trail), { replace: true });
  }, [state.from, stats, trail]);
  if (state.from === undefined || state.to === undefined) return null;
  return <Feed state={state} win={{ from: state.from, to: state.to }} />;
}

const aroundState = (e: KtEvent): AppState => ({ ...DEFAULT_STATE, around: eventId(e) });

function Feed({ state, win }: { state: AppState; win: TimeWindow }) {
  const combined = useMemo(() => combine(severityCondition(state.sev), '', state.q), [state.sev, state.q]);
  const query = useMemo(() => ({ filter: combined.filter ?? '', window: win }), [combined.filter, win.from, win.to]);
  // A filter the client refuses (combined.error) is never sent: no key, no request.
  const key = combined.filter === null ? null : `${combined.filter}|${win.from}|${win.to}`;
  const pages = useEventPages(key, (limit, cursor, signal) => api.policyEvents(query, limit, cursor, signal));
  // One bucket over the window: the exact number of matching policy events.
  const totalFilter = combined.filter === null ? null : combine('evt.category = policy', '', combined.filter).filter;
  const span = `${Math.ceil((win.to - win.from) / 1000)}s`;
  const totalKey = totalFilter === null ? null : `${totalFilter}|${win.from}|${win.to}`;
  const hist = useApi(totalKey, (signal) => api.histogram({ filter: totalFilter ?? '', window: win }, span, signal));
  const total = hist.dataKey === totalKey && totalKey !== null ? hist.data?.buckets?.reduce((n, b) => n + b.total, 0) : undefined;

  useEffect(() => { if (pages.key === key && !pages.error) markRendered('policy-feed'); }, [pages.key, key, pages.error]);
  const onFilter = useCallback((cond: string) => update({ q: andAll(state.q, cond) }), [state.q]);

  const err = pages.key === key ? pages.error : undefined;
  const filterErr = useMemo(() => filterError(combined, err), [combined, err]);

  const groups = useMemo(() => groupByRule(pages.rows), [pages.rows]);
  const more = !!pages.next;

  return (
    <FilterActionContext.Provider value={onFilter}>
      <main className="page policy" aria-label="Policy events">
        <div className="controls">
          <FilterBar value={state.q} onApply={(q) => update({ q })} error={filterErr}
            context={{ filter: andPolicy(severityCondition(state.sev)), window: win }}
            placeholder="k8s.ns.name = billing and policy.rule contains Shell" />
          <div className="controls-row">
            <TimeControls window={win} onWindow={(w) => update(w)} />
            <label className="inline">
              Severity at least
              <select value={state.sev ?? ''} onChange={(e) => update({ sev: e.target.value || undefined })}>
                <option value="">any</option>
                {PRIORITIES.map((p) => <option key={p} value={p}>{p}</option>)}
              </select>
            </label>
            <div className="segmented" role="radiogroup" aria-label="Show">
              <button type="button" role="radio" aria-checked={state.group === 'rule'}
                onClick={() => update({ group: 'rule' })}>By rule</button>
              <button type="button" role="radio" aria-checked={state.group === 'flat'}
                onClick={() => update({ group: 'flat' })}>Flat</button>
            </div>
          </div>
        </div>
        <section className="policy-feed" data-testid="policy-feed" data-loading={pages.loading || pages.loadingMore}
          aria-label="Policy event feed">
          <p className="table-status muted" aria-live="polite">
            {filterErr ? <span className="region-error" role="alert">Correct the filter to see policy events.</span>
              : err ? <span className="region-error" role="alert">{err.message}</span>
              : pages.loading && !pages.rows.length ? 'Loading policy events…'
              : !pages.rows.length ? 'No policy events in this window.'
              : `${pages.rows.length.toLocaleString()}${more ? '+' : ''} loaded${total !== undefined ? ` of ${total.toLocaleString()}` : ''} policy events, newest first`}
          </p>
          {state.group === 'rule' ? (
            <ul className="rule-groups" aria-label="Rules">
              {groups.map((g) => <RuleGroupItem key={g.rule} group={g} more={more} onFilter={onFilter} />)}
            </ul>
          ) : <PolicyRows events={pages.rows} />}
          {more && pages.moreError && (
            <p className="region-error" role="alert" data-testid="load-more-failed">
              Could not load more policy events: {pages.moreError.message}
            </p>
          )}
          {more && (
            <button type="button" className="btn" disabled={pages.loadingMore} onClick={pages.retryMore}>
              {pages.loadingMore ? 'Loading…' : pages.moreError ? 'Retry' : 'Load more'}
            </button>
          )}
        </section>
      </main>
    </FilterActionContext.Provider>
  );
}

/** How many of a rule's events show before "show all". */
const GROUP_PREVIEW = 5;

function RuleGroupItem({ group: g, more, onFilter }: { group: RuleGroup; more: boolean; onFilter: (c: string) => void }) {
  const [all, setAll] = useState(false);
  return (
    <li className="rule-group">
      <details open>
        <summary>
          <span className={`prio prio-${g.priority.toLowerCase()}`}>{g.priority}</span>
          <span className="rule-name">{g.rule}</span>
          <span className="count" data-testid="rule-count" aria-label={`${g.count} events`}>{g.count}{more ? '+' : ''}</span>
          <span className="muted">last {formatTime(g.last, false)}</span>
          <button type="button" className="btn small" onClick={(e) => {
            e.preventDefault();
            onFilter(eq('policy.rule', g.rule));
          }}>Only this rule</button>
        </summary>
        <PolicyRows events={all ? g.events : g.events.slice(0, GROUP_PREVIEW)} />
        {g.events.length > GROUP_PREVIEW && (
          <button type="button" className="btn small show-all" onClick={() => setAll(!all)}>
            {all ? 'Show fewer' : `Show all ${g.events.length}`}
          </button>
        )}
      </details>
    </li>
  );
}

/** Value completion on this page looks among policy events. */
function andPolicy(cond: string): string {
  return cond ? `evt.category = policy and ${cond}` : 'evt.category = policy';
}

function PolicyRows({ events }: { events: KtEvent[] }) {
  return (
    <ul className="policy-rows" aria-label="Policy events">
      {events.map((e) => {
        const prio = str(e, 'policy.priority') ?? '';
        const open = () => navigate(aroundState(e));
        return (
          <li key={eventId(e)} className="policy-row" data-testid="policy-event-row" data-id={eventId(e)}
            onClick={(ev) => { if (!(ev.target as HTMLElement).closest('button, a, [role="button"]')) open(); }}>
            <span className="mono muted">{formatTime(str(e, 'evt.time') ?? '')}</span>
            <span className={`prio prio-${prio.toLowerCase()}`}><ValueButton field="policy.priority" value={prio} /></span>
            <span className="rule"><ValueButton field="policy.rule" value={str(e, 'policy.rule') ?? ''} /></span>
            <span className="scope"><Parts parts={scopeParts(e)} /></span>
            <span className="user">{typeof e['ka.user.name'] === 'string' && <ValueButton field="ka.user.name" value={e['ka.user.name']} />}</span>
            <span className="output mono">{str(e, 'policy.output')}</span>
            <Link to={aroundState(e)} className="btn small">Activity around</Link>
          </li>
        );
      })}
    </ul>
  );
}
