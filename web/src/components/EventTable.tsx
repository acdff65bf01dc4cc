// The event table: newest first, virtualised (only the rows in view exist in
// the DOM), fetching the next page as the end comes near, so it scrolls
// through as many rows as the analyst cares to. The rows' body is one Tab
// stop: the selection is its active descendant (arrows move it), and the
// selected row's values are reached with Left/Right.
import { memo, useEffect, useId, useRef, type CSSProperties, type KeyboardEvent } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { KtEvent } from '../api/types';
import { eventCategory, eventId, eventTime, scopeParts, summaryParts, summaryText, type Part } from '../events';
import { formatTime } from '../time';
import { ValueButton, ValueTabIndex } from './ValueButton';

const ROW_HEIGHT = 30;
/** How close to the end of the loaded rows the next page is fetched. */
const PREFETCH_ROWS = 100;

interface Props {
  rows: KtEvent[];
  hasMore: boolean;
  loading: boolean;
  loadingMore: boolean;
  error?: string;
  /** Why the next page could not be loaded: it is then asked for only on Retry. */
  moreError?: string;
  onRetry?: () => void;
  total?: number;
  selected?: string;
  onSelect: (id: string, open: boolean) => void;
  onLoadMore: () => void;
}

export function EventTable({
  rows, hasMore, loading, loadingMore, error, moreError, onRetry, total, selected, onSelect, onLoadMore,
}: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const idBase = useId();
  const rowId = (id: string) => `${idBase}row-${id}`;
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
    if (hasMore && !moreError && !loadingMore && !loading && lastIndex >= rows.length - PREFETCH_ROWS) onLoadMore();
  }, [lastIndex, rows.length, hasMore, moreError, loadingMore, loading, onLoadMore]);

  // Keep the selection in view as the keyboard moves it.
  const selectedIndex = selected ? rows.findIndex((r) => eventId(r) === selected) : -1;
  useEffect(() => {
    if (selectedIndex >= 0) virtualizer.scrollToIndex(selectedIndex, { align: 'auto' });
  }, [selectedIndex, virtualizer]);
  const selectedShown = selectedIndex >= 0 && items.some((it) => it.index === selectedIndex);

  // Left/Right walk the selected row's values; Up/Down from a value go back
  // to the rows (the page moves the selection).
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const body = scroller.current;
    if (!body || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'ArrowUp' || e.key === 'ArrowDown' || e.key === 'j' || e.key === 'k') {
      if (e.target !== body) body.focus({ preventScroll: true });
      return;
    }
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const row = selected && selectedShown ? document.getElementById(rowId(selected)) : null;
    if (!row) return;
    const values = [...row.querySelectorAll<HTMLElement>('.value')];
    const i = values.indexOf(document.activeElement as HTMLElement);
    const to = e.key === 'ArrowRight' ? Math.min(values.length - 1, i + 1) : i - 1;
    e.preventDefault();
    if (to < 0) body.focus({ preventScroll: true });
    else values[to]?.focus();
  };

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
        <div ref={scroller} className="grid-body" tabIndex={0} aria-label="Event rows" data-testid="event-rows"
          aria-activedescendant={selectedShown ? rowId(selected!) : undefined} onKeyDown={onKeyDown}>
          <ValueTabIndex.Provider value={-1}>
            <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
              {items.map((it) => {
                const ev = rows[it.index];
                const style = { transform: `translateY(${it.start}px)`, height: ROW_HEIGHT };
                if (!ev) {
                  return moreError ? (
                    <div key="more" role="row" className="row more" style={style} data-testid="load-more-failed">
                      <span role="alert" className="region-error">Could not load more events: {moreError}</span>{' '}
                      <button type="button" className="btn small" onClick={onRetry}>Retry</button>
                    </div>
                  ) : <div key="more" role="row" className="row more muted" style={style}>Loading more…</div>;
                }
                const id = eventId(ev);
                return (
                  <EventRow key={id} id={rowId(id)} event={ev} index={it.index} selected={id === selected} style={style}
                    onSelect={onSelect} />
                );
              })}
            </div>
          </ValueTabIndex.Provider>
        </div>
      </div>
    </section>
  );
}

interface RowProps {
  /** The element id (the body's active descendant when selected). */
  id: string;
  event: KtEvent;
  index: number;
  selected: boolean;
  style: CSSProperties;
  onSelect: (id: string, open: boolean) => void;
}

const EventRow = memo(function EventRow({ id: elementId, event, index, selected, style, onSelect }: RowProps) {
  const id = eventId(event);
  const cat = eventCategory(event);
  const user = event['ka.user.name'];
  return (
    <div role="row" id={elementId} data-testid="event-row" data-id={id} aria-rowindex={index + 2} aria-selected={selected}
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
