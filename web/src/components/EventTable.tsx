// The event table: newest first, virtualised (only the rows in view exist in
// the DOM), fetching the next page as the end comes near, so it scrolls
// through as many rows as the analyst cares to.
import { memo, useEffect, useRef, type CSSProperties } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { KtEvent } from '../api/types';
import { eventCategory, eventId, eventTime, scopeParts, summaryParts, summaryText, type Part } from '../events';
import { formatTime } from '../time';
import { ValueButton } from './ValueButton';

const ROW_HEIGHT = 30;
/** How close to the end of the loaded rows the next page is fetched. */
const PREFETCH_ROWS = 100;

interface Props {
  rows: KtEvent[];
  hasMore: boolean;
  loading: boolean;
  loadingMore: boolean;
  error?: string;
  total?: number;
  selected?: string;
  onSelect: (id: string, open: boolean) => void;
  onLoadMore: () => void;
}

export function EventTable({ rows, hasMore, loading, loadingMore, error, total, selected, onSelect, onLoadMore }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const count = rows.length + (hasMore ? 1 : 0);
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    initialRect: { width: 1000, height: 600 },
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1].index : 0;

  useEffect(() => {
    if (hasMore && !loadingMore && !loading && lastIndex >= rows.length - PREFETCH_ROWS) onLoadMore();
  }, [lastIndex, rows.length, hasMore, loadingMore, loading, onLoadMore]);

  // Keep the selection in view as the keyboard moves it.
  const selectedIndex = selected ? rows.findIndex((r) => eventId(r) === selected) : -1;
  useEffect(() => {
    if (selectedIndex >= 0) virtualizer.scrollToIndex(selectedIndex, { align: 'auto' });
  }, [selectedIndex, virtualizer]);

  return (
    <section className="event-table" data-testid="event-table" data-loading={loading || loadingMore}
      aria-label="Events">
      <div className="table-status muted" aria-live="polite">
        {error ? <span className="region-error" role="alert">{error}</span>
          : loading && !rows.length ? 'Loading events…'
          : !rows.length ? 'No events match.'
          : `${rows.length.toLocaleString()}${hasMore ? '+' : ''} loaded${total !== undefined ? ` of ${total.toLocaleString()} events` : ''}, newest first`}
      </div>
      <div role="grid" aria-label="Events, newest first" aria-rowcount={total ?? (hasMore ? -1 : rows.length)}
        aria-busy={loading} className={`grid ${loading ? 'stale' : ''}`}>
        <div role="row" className="row head">
          <span role="columnheader" className="c-time">Time (UTC)</span>
          <span role="columnheader" className="c-scope">Scope</span>
          <span role="columnheader" className="c-cat">Category</span>
          <span role="columnheader" className="c-summary">Summary</span>
          <span role="columnheader" className="c-user">User</span>
        </div>
        <div ref={scroller} className="grid-body" tabIndex={0} aria-label="Event rows">
          <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
            {items.map((it) => {
              const ev = rows[it.index];
              const style = { transform: `translateY(${it.start}px)`, height: ROW_HEIGHT };
              if (!ev) {
                return <div key="more" role="row" className="row more muted" style={style}>Loading more…</div>;
              }
              const id = eventId(ev);
              return (
                <EventRow key={id} event={ev} index={it.index} selected={id === selected} style={style} onSelect={onSelect} />
              );
            })}
          </div>
        </div>
      </div>
    </section>
  );
}

interface RowProps {
  event: KtEvent;
  index: number;
  selected: boolean;
  style: CSSProperties;
  onSelect: (id: string, open: boolean) => void;
}

const EventRow = memo(function EventRow({ event, index, selected, style, onSelect }: RowProps) {
  const id = eventId(event);
  const cat = eventCategory(event);
  const user = event['ka.user.name'];
  return (
    <div role="row" data-testid="event-row" data-id={id} aria-rowindex={index + 2} aria-selected={selected}
      className={`row ${selected ? 'selected' : ''}`} style={style} onClick={() => onSelect(id, true)}>
      <span role="gridcell" className="c-time mono" title={eventTime(event)}>{formatTime(eventTime(event))}</span>
      <span role="gridcell" className="c-scope"><Parts parts={scopeParts(event)} /></span>
      <span role="gridcell" className="c-cat">
        <span className={`swatch cat-${cat}`} />
        <ValueButton field="evt.category" value={cat} />
      </span>
      <span role="gridcell" className="c-summary mono" title={summaryText(event)}>
        <Parts parts={summaryParts(event)} />
      </span>
      <span role="gridcell" className="c-user">
        {typeof user === 'string' && <ValueButton field="ka.user.name" value={user} />}
      </span>
    </div>
  );
});

export function Parts({ parts }: { parts: Part[] }) {
  return (
    <>
      {parts.map((p, i) =>
        p.field && p.value !== undefined
          ? <ValueButton key={i} field={p.field} value={p.value}>{p.text}</ValueButton>
          : <span key={i}>{p.text}</span>)}
    </>
  );
}
