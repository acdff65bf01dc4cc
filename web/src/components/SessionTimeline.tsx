// A session's timeline: every command, connection, file change and policy
// event in time order, placed on a strip across the session's span; rows
// expand to every field, and a filter box narrows them.
import { useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { KtEvent } from '../api/types';
import { eventCategory, eventId, summaryParts, summaryText } from '../events';
import { useAppContext } from '../state/app';
import { formatDuration, formatTime } from '../time';
import { FieldValue, groupFields } from './DetailsDrawer';
import { Parts } from './EventTable';

interface Props {
  events: KtEvent[];
  start: number;
  end: number;
  text: string;
  onText: (text: string) => void;
  /** Only this process's events, when set. */
  execId?: string;
}

/** Which events the timeline keeps: what the session did, not its exits. */
function timelineEvents(events: KtEvent[], text: string, execId?: string): KtEvent[] {
  const needle = text.trim().toLowerCase();
  return events.filter((e) => {
    if (e['evt.category'] === 'process' && e['evt.type'] === 'exit') return false;
    if (execId && e['proc.exec_id'] !== execId) return false;
    if (!needle) return true;
    return summaryText(e).toLowerCase().includes(needle)
      || Object.values(e).some((v) => String(v).toLowerCase().includes(needle));
  });
}

export function SessionTimeline({ events, start, end, text, onText, execId }: Props) {
  const shown = useMemo(() => timelineEvents(events, text, execId), [events, text, execId]);
  const [open, setOpen] = useState<Set<string>>(new Set());
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: shown.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 28,
    overscan: 10,
    initialRect: { width: 800, height: 600 },
    getItemKey: (i) => eventId(shown[i]),
  });
  const span = Math.max(1, end - start);
  const toggle = (id: string) => setOpen((s) => {
    const n = new Set(s);
    if (n.has(id)) n.delete(id); else n.add(id);
    return n;
  });

  return (
    <section className="session-timeline" data-testid="session-timeline" aria-label="Timeline">
      <div className="timeline-head">
        <h2>Timeline</h2>
        <input type="search" className="mono" aria-label="Filter the timeline" placeholder="Filter: curl, 185.220., /tmp"
          value={text} onChange={(e) => onText(e.target.value)} />
        <span className="muted">{shown.length} of {events.length}</span>
        <button type="button" className="btn" onClick={() => setOpen(new Set(shown.map(eventId)))}>Expand all</button>
        <button type="button" className="btn" onClick={() => setOpen(new Set())}>Collapse all</button>
      </div>
      <div className="strip" aria-hidden="true">
        {shown.map((e) => (
          <span key={eventId(e)} className={`tick cat-${eventCategory(e)}`}
            style={{ left: `${((Date.parse(String(e['evt.time'])) - start) / span) * 100}%` }} />
        ))}
      </div>
      <div ref={scroller} className="timeline-body" role="list" aria-label="Session events">
        <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
          {virtualizer.getVirtualItems().map((it) => {
            const e = shown[it.index];
            const id = eventId(e);
            const t = Date.parse(String(e['evt.time']));
            const expanded = open.has(id);
            return (
              <div key={it.key} ref={virtualizer.measureElement} data-index={it.index} role="listitem"
                className={`tl-row ${expanded ? 'open' : ''}`} style={{ transform: `translateY(${it.start}px)` }}>
                <div className="tl-line">
                  <button type="button" className="twisty" aria-expanded={expanded}
                    aria-label={`${expanded ? 'Collapse' : 'Expand'} ${summaryText(e)}`} onClick={() => toggle(id)}>
                    {expanded ? '▾' : '▸'}
                  </button>
                  <span className="mono muted tl-offset" title={`${formatTime(t)} UTC`}>+{formatDuration(Math.max(0, t - start))}</span>
                  <span className={`swatch cat-${eventCategory(e)}`} />
                  <span className="tl-cat">{eventCategory(e)}</span>
                  <span className="mono tl-summary"><Parts parts={summaryParts(e)} /></span>
                  <span className="tl-pos" aria-hidden="true"><span style={{ left: `${((t - start) / span) * 100}%` }} /></span>
                </div>
                {expanded && <EventFields event={e} />}
              </div>
            );
          })}
        </div>
      </div>
    </section>
  );
}

function EventFields({ event }: { event: KtEvent }) {
  const { fields, fieldType } = useAppContext();
  return (
    <dl className="tl-fields">
      {groupFields(event, fields).flatMap(([, names]) => names).map((name) => (
        <div key={name} className="field">
          <dt className="mono">{name}</dt>
          <dd className="mono"><FieldValue name={name} value={event[name]} type={fieldType(name)} /></dd>
        </div>
      ))}
    </dl>
  );
}
