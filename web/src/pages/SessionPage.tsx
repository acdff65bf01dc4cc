// The session view: who opened the session (the Kubernetes request behind
// it), where and when; its process tree and a timeline of everything it did.
import { useCallback, useEffect, useMemo, useState } from 'react';
import * as api from '../api/endpoints';
import type { Session, SessionRequest } from '../api/types';
import { Link } from '../components/Link';
import { ProcessTree } from '../components/ProcessTree';
import { SessionTimeline } from '../components/SessionTimeline';
import { ValueButton } from '../components/ValueButton';
import { eq } from '../filter/query';
import { markRendered } from '../perf';
import { buildProcessTree } from '../session/tree';
import { FilterActionContext } from '../state/app';
import { DEFAULT_STATE, navigate, update, useAppState, type AppState } from '../state/url';
import { useApi } from '../state/useApi';
import { formatDuration, formatTime } from '../time';

/** The session's pod (or container), as a scope condition. */
function podScope(s: Session): string {
  const terms: string[] = [];
  if (s['k8s.cluster.name']) terms.push(eq('k8s.cluster.name', s['k8s.cluster.name']));
  if (s['k8s.ns.name']) terms.push(eq('k8s.ns.name', s['k8s.ns.name']));
  if (s['k8s.workload.kind'] && s['k8s.workload.name']) {
    terms.push(eq('k8s.workload.kind', s['k8s.workload.kind']), eq('k8s.workload.name', s['k8s.workload.name']));
  }
  if (s['k8s.pod.name']) terms.push(eq('k8s.pod.name', s['k8s.pod.name']));
  else if (s['container.id']) terms.push(eq('container.id', s['container.id']));
  return terms.join(' and ');
}

const MARGIN = 5 * 60e3;

/** One session's page; another session (back/forward between two) gets a
 * fresh one, the picked process and all. */
export function SessionPage() {
  const state = useAppState();
  return <Session key={state.sessionId ?? ''} state={state} />;
}

function Session({ state }: { state: AppState }) {
  const id = state.sessionId ?? '';
  const trace = useApi(`trace:${id}`, (signal) => api.trace(id, signal));
  const [execId, setExecId] = useState<string>();
  const t = trace.dataKey === `trace:${id}` ? trace.data : undefined;
  const roots = useMemo(() => (t ? buildProcessTree(t.events) : []), [t]);
  // The timeline starts with the kubectl exec that opened the session.
  const timeline = useMemo(() => (t ? (t.request ? [t.request, ...t.events] : t.events) : []), [t]);
  useEffect(() => { if (t) markRendered('session'); }, [t]);

  const s = t?.session;
  const first = s ? Date.parse(s.first ?? s.start ?? '') : NaN;
  const last = s ? Date.parse(s.last ?? s.end ?? s.first ?? '') : NaN;
  // Offsets count from the request when there is one: it came first.
  const requested = t?.request ? Date.parse(String(t.request['evt.time'])) : NaN;
  const start = Number.isFinite(requested) ? Math.min(requested, first) : first;
  const podActivity: AppState | undefined = s && Number.isFinite(first) ? {
    ...DEFAULT_STATE,
    scope: podScope(s),
    from: Math.floor((first - MARGIN) / 60e3) * 60e3,
    to: Math.ceil((Math.max(last, first) + MARGIN) / 60e3) * 60e3,
  } : undefined;

  // A value clicked here opens the pod's activity filtered on it.
  const onFilter = useCallback((cond: string) => {
    if (podActivity) navigate({ ...podActivity, q: cond });
  }, [podActivity]);

  if (trace.error) {
    return <main className="page"><p className="region-error" role="alert">Session {id}: {trace.error.message}</p></main>;
  }
  if (!t || !s) return <main className="page" aria-busy="true"><p className="muted">Loading session {id}…</p></main>;

  return (
    <FilterActionContext.Provider value={onFilter}>
      <main className="page session" aria-label={`Session ${id}`}>
        <header className="session-head">
          <div>
            <h1 className="mono">{(s['entry.argv'] ?? [s['entry.name'] ?? '?']).join(' ')}</h1>
            <p className="muted mono">session {s['session.id']}</p>
          </div>
          {podActivity && <Link to={podActivity} className="btn">Activity of the pod</Link>}
        </header>
        <div className="session-facts">
          <Who session={s} />
          <section aria-label="Where">
            <h2>Where</h2>
            <dl>
              <Fact label="cluster" field="k8s.cluster.name" value={s['k8s.cluster.name']} />
              <Fact label="namespace" field="k8s.ns.name" value={s['k8s.ns.name']} />
              <Fact label="workload" field="k8s.workload.name" value={s['k8s.workload.name']}
                prefix={s['k8s.workload.kind']} />
              <Fact label="pod" field="k8s.pod.name" value={s['k8s.pod.name']} />
              <Fact label="container" field="container.name" value={s['container.name']} />
              <Fact label="image" field="container.image" value={s['container.image']} />
              <Fact label="node" field="k8s.node.name" value={s['k8s.node.name']} />
            </dl>
          </section>
          <section aria-label="When">
            <h2>When</h2>
            <dl>
              <div className="field"><dt>started</dt><dd className="mono">{s.start ? `${formatTime(s.start)} UTC` : '—'}</dd></div>
              <div className="field"><dt>ended</dt><dd className="mono">
                {s.end ? `${formatTime(s.end)} UTC (${formatDuration(Date.parse(s.end) - Date.parse(s.start ?? s.end))})` : 'still running, or its end was not seen'}
              </dd></div>
              {s.exit_code !== undefined && <div className="field"><dt>exit code</dt><dd className="mono">{s.exit_code}</dd></div>}
              {s.last && <div className="field"><dt>last event</dt><dd className="mono">{formatTime(s.last)} UTC</dd></div>}
              <div className="field"><dt>activity</dt><dd>
                {s.commands} commands · {s.connections} connections · {s.file_changes} file changes
              </dd></div>
            </dl>
          </section>
        </div>
        {t.truncated && <p className="warning" role="status">Only the session's first {t.events.length.toLocaleString()} events are shown.</p>}
        <div className="session-body">
          <ProcessTree roots={roots} start={start} focus={execId} onFocus={setExecId} />
          <SessionTimeline events={timeline} start={start} end={Math.max(last, first + 1)} text={state.tq}
            onText={(tq) => update({ tq }, { replace: true })} execId={execId} />
        </div>
      </main>
    </FilterActionContext.Provider>
  );
}

function Who({ session: s }: { session: Session }) {
  const r = s.request;
  return (
    <section aria-label="Who">
      <h2>Who</h2>
      {r ? <RequestFacts r={r} /> : s.maybe_users?.length ? (
        <p>One of <strong>{s.maybe_users.join(', ')}</strong>: their exec requests fit this session equally well, so none is named.</p>
      ) : (
        <p className="muted">No Kubernetes request started this session (a probe, the node or the container runtime).</p>
      )}
      {s.attachments?.map((a) => (
        <details key={a['ka.auditid']} className="attachment">
          <summary>Attached: {a['ka.user.name'] ?? '?'} at {formatTime(a.time)} UTC</summary>
          <RequestFacts r={a} />
        </details>
      ))}
    </section>
  );
}

function RequestFacts({ r }: { r: SessionRequest }) {
  return (
    <dl>
      <Fact label="user" field="ka.user.name" value={r['ka.user.name']} />
      {r['ka.impuser.name'] && <Fact label="impersonating" field="ka.impuser.name" value={r['ka.impuser.name']} />}
      <Fact label="groups" field="ka.user.groups" value={r['ka.user.groups']} />
      <Fact label="source IP" field="ka.sourceips" value={r['ka.sourceips']} />
      <Fact label="user agent" field="ka.useragent" value={r['ka.useragent']} />
      <Fact label="request" field="ka.target.subresource" value={r['ka.target.subresource']} prefix={r['ka.verb']} />
      <Fact label="audit id" field="ka.auditid" value={r['ka.auditid']} />
      <div className="field"><dt>request time</dt><dd className="mono">{formatTime(r.time)} UTC</dd></div>
    </dl>
  );
}

function Fact({ label, field, value, prefix }: { label: string; field: string; value?: string | string[]; prefix?: string }) {
  if (value === undefined || (Array.isArray(value) && !value.length)) return null;
  return (
    <div className="field">
      <dt>{label}</dt>
      <dd className="mono">
        {prefix && <span className="muted">{prefix} </span>}
        {(Array.isArray(value) ? value : [value]).map((v) => <ValueButton key={v} field={field} value={v} />)}
      </dd>
    </div>
  );
}
