// The details drawer: every field of the selected event, grouped (event,
// where, process, network, file, Kubernetes request, policy), each value a
// filter; links to the event's session and, for a policy event, to the
// activity around it.
import { useEffect, useRef } from 'react';
import type { FieldDoc, KtEvent } from '../api/types';
import { eventCategory, eventId, summaryText } from '../events';
import { useAppContext } from '../state/app';
import { DEFAULT_STATE, type AppState } from '../state/url';
import { formatTime } from '../time';
import { Link } from './Link';
import { ValueButton } from './ValueButton';

export const GROUPS = ['Event', 'Where', 'Process', 'Network', 'File', 'Kubernetes request', 'Policy'] as const;
export type Group = (typeof GROUPS)[number];

export function fieldGroup(name: string, category: string): Group {
  if (name.startsWith('policy.')) return 'Policy';
  if (name.startsWith('ka.')) return 'Kubernetes request';
  if (name.startsWith('fs.') || name === 'fd.directory' || name === 'fd.filename') return 'File';
  if (name === 'fd.name') return category === 'file' ? 'File' : 'Network';
  if (name.startsWith('fd.') || name.startsWith('net.')) return 'Network';
  if (name.startsWith('proc.') || name.startsWith('user.') || name.startsWith('group.')) return 'Process';
  if (name.startsWith('k8s.') || name.startsWith('container.') || name === 'evt.is_host') return 'Where';
  return 'Event';
}

/** The event's fields by group, in the field reference's order; fields the
 * reference does not know (a newer server) come last in their group. */
export function groupFields(e: KtEvent, fields: FieldDoc[]): [Group, string[]][] {
  const known = fields.map((f) => f.name).filter((n) => n in e);
  const rest = Object.keys(e).filter((n) => !known.includes(n));
  const cat = eventCategory(e);
  const by = new Map<Group, string[]>();
  for (const name of [...known, ...rest]) {
    const g = fieldGroup(name, cat);
    by.set(g, [...(by.get(g) ?? []), name]);
  }
  return GROUPS.filter((g) => by.has(g)).map((g) => [g, by.get(g)!]);
}

interface Props {
  event?: KtEvent;
  loading: boolean;
  error?: string;
  onClose: () => void;
  /** Selects another event (a policy event's trigger). */
  onSelect: (id: string) => void;
  /** The state to go back to from the session page. */
  here: AppState;
  /** Where the focus goes on close when what had it before is gone. */
  fallbackFocus?: () => HTMLElement | null;
}

export function DetailsDrawer({ event, loading, error, onClose, onSelect, here, fallbackFocus }: Props) {
  const { fields } = useAppContext();
  const docs = new Map(fields.map((f) => [f.name, f]));
  const closeRef = useRef<HTMLButtonElement>(null);
  const drawerRef = useRef<HTMLElement>(null);
  const fallbackRef = useRef(fallbackFocus);
  fallbackRef.current = fallbackFocus;
  // The focus comes in on open, and goes back on close to where it was (the
  // table, usually), unless the user has since put it somewhere else.
  useEffect(() => {
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const drawer = drawerRef.current;
    closeRef.current?.focus({ preventScroll: true });
    const fallback = fallbackRef.current;
    return () => {
      const now = document.activeElement;
      const lost = !now || now === document.body || !!drawer?.contains(now);
      if (!lost) return;
      const back = opener?.isConnected && opener !== document.body ? opener : fallback?.();
      back?.focus({ preventScroll: true });
    };
  }, []);

  const session = event?.['session.id'];
  const isPolicy = event && eventCategory(event) === 'policy';
  const trigger = event?.['policy.trigger'];
  return (
    <aside ref={drawerRef} className="drawer" data-testid="details-drawer" data-loading={loading} aria-label="Event details">
      <header className="drawer-head">
        <h2>{event ? `${eventCategory(event)} · ${event['evt.type'] ?? ''}` : 'Event'}</h2>
        <button ref={closeRef} type="button" className="icon-btn" aria-label="Close details" title="Close (Esc)"
          onClick={onClose}>✕</button>
      </header>
      {error && <p className="region-error" role="alert">{error}</p>}
      {!event && loading && <p className="muted">Loading…</p>}
      {event && (
        <>
          <p className="drawer-summary mono">{summaryText(event)}</p>
          <p className="muted">{formatTime(String(event['evt.time']))} UTC</p>
          <nav className="drawer-links" aria-label="Related">
            {typeof session === 'string' && (
              <Link to={{ ...DEFAULT_STATE, page: 'session', sessionId: session }} className="btn">Open session</Link>
            )}
            {isPolicy && (
              <Link to={{ ...here, around: eventId(event), sel: undefined }} className="btn">Activity around</Link>
            )}
            {typeof trigger === 'string' && (
              <button type="button" className="btn" onClick={() => onSelect(trigger)}>Select trigger</button>
            )}
          </nav>
          {groupFields(event, fields).map(([group, names]) => (
            <section key={group} className="field-group" aria-label={group}>
              <h3>{group}</h3>
              <dl>
                {names.map((name) => (
                  <div key={name} className="field">
                    <dt className="mono" title={docs.get(name)?.doc}>{name}</dt>
                    <dd className="mono"><FieldValue name={name} value={event[name]} type={docs.get(name)?.type} /></dd>
                  </div>
                ))}
              </dl>
            </section>
          ))}
        </>
      )}
    </aside>
  );
}

export function FieldValue({ name, value, type }: { name: string; value: unknown; type?: string }) {
  if (Array.isArray(value)) {
    return (
      <span className="list">
        {value.map((v, i) => <ValueButton key={i} field={name} value={String(v)} />)}
      </span>
    );
  }
  if (type === 'time') return <span>{String(value)}</span>;
  if (typeof value === 'number' || typeof value === 'string') return <ValueButton field={name} value={value} />;
  return <span>{JSON.stringify(value)}</span>;
}
