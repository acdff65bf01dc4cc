// A value that filters on click: field = value; with Alt or Shift held, or
// from its menu (right click, or the context-menu key), field != value.
import {
  createContext, useContext, useEffect, useLayoutEffect, useRef, useState,
  type KeyboardEvent, type MouseEvent, type ReactNode,
} from 'react';
import { createPortal } from 'react-dom';
import { FilterActionContext, useAppContext } from '../state/app';
import { valueCondition } from '../filter/query';

/** The tabIndex of values: 0 (each a Tab stop) by default; -1 where a
 * container is the one Tab stop and moves focus among them (the table). */
export const ValueTabIndex = createContext<0 | -1>(0);

interface Props {
  field: string;
  value: string | number;
  children?: ReactNode;
  className?: string;
}

export function ValueButton({ field, value, children, className }: Props) {
  const onFilter = useContext(FilterActionContext);
  const tabIndex = useContext(ValueTabIndex);
  const { fieldType } = useAppContext();
  const [menu, setMenu] = useState<{ x: number; y: number } | null>(null);
  const self = useRef<HTMLSpanElement>(null);
  const text = children ?? String(value);
  if (!onFilter) return <span className={className}>{text}</span>;

  const type = fieldType(field);
  const eqCond = valueCondition(field, value, false, type);
  const neCond = valueCondition(field, value, true, type);
  const click = (e: MouseEvent | KeyboardEvent) => {
    e.stopPropagation();
    onFilter(e.altKey || e.shiftKey ? neCond : eqCond);
  };
  // A span, not a <button>: it flows as text, so a long summary made of
  // values wraps and ellipsises like one.
  return (
    <>
      <span
        ref={self}
        role="button"
        tabIndex={tabIndex}
        aria-haspopup="menu"
        aria-expanded={menu ? true : undefined}
        className={`value ${className ?? ''}`}
        title={`Filter: ${eqCond}  (Alt/Shift-click: ${neCond})`}
        onClick={click}
        onKeyDown={(e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            click(e);
          }
        }}
        onContextMenu={(e) => {
          e.preventDefault();
          e.stopPropagation();
          // From the keyboard (the context-menu key, Shift+F10) there is no
          // pointer: the menu opens under the value.
          const r = e.currentTarget.getBoundingClientRect();
          setMenu(e.clientX || e.clientY ? { x: e.clientX, y: e.clientY } : { x: r.left, y: r.bottom });
        }}
      >
        {text}
      </span>
      {/* In document.body: rows of the virtualised table and the timeline are
          transformed and clip what overflows them, which would misplace or
          hide a fixed-position menu inside them. */}
      {menu && createPortal(
        <ValueMenu
          at={menu}
          items={[
            { label: `Filter ${eqCond}`, run: () => onFilter(eqCond) },
            { label: `Exclude ${neCond}`, run: () => onFilter(neCond) },
            { label: 'Copy value', run: () => void navigator.clipboard?.writeText(String(value)) },
          ]}
          onClose={(refocus) => {
            setMenu(null);
            if (refocus && self.current?.isConnected) self.current.focus({ preventScroll: true });
          }}
        />,
        document.body,
      )}
    </>
  );
}

interface MenuProps {
  at: { x: number; y: number };
  items: { label: string; run: () => void }[];
  /** refocus: give the focus back to the value (the menu had it). */
  onClose: (refocus: boolean) => void;
}

function ValueMenu({ at, items, onClose }: MenuProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [pos, setPos] = useState(at);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  // Kept inside the viewport.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const r = el.getBoundingClientRect();
    setPos({
      x: Math.max(0, Math.min(at.x, window.innerWidth - r.width - 4)),
      y: Math.max(0, Math.min(at.y, window.innerHeight - r.height - 4)),
    });
  }, [at.x, at.y]);

  useEffect(() => {
    ref.current?.querySelector('button')?.focus();
    // A click elsewhere closes it, leaving the focus where that click put it.
    const close = (e: Event) => {
      if (!ref.current?.contains(e.target as Node)) closeRef.current(false);
    };
    document.addEventListener('mousedown', close);
    return () => document.removeEventListener('mousedown', close);
  }, []);
  return (
    <div
      ref={ref}
      role="menu"
      className="value-menu"
      style={{ left: pos.x, top: pos.y }}
      onClick={(e) => e.stopPropagation()}
      onContextMenu={(e) => { e.preventDefault(); e.stopPropagation(); }}
      onBlur={(e) => {
        // Focus gone elsewhere (not to another of its items): it closes.
        const to = e.relatedTarget as Node | null;
        if (to && !ref.current?.contains(to)) onClose(false);
      }}
      onKeyDown={(e) => {
        e.stopPropagation();
        const buttons = [...(ref.current?.querySelectorAll('button') ?? [])];
        const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
        if (e.key === 'Escape' || e.key === 'Tab') { e.preventDefault(); onClose(true); }
        if (e.key === 'ArrowDown') { e.preventDefault(); buttons[(i + 1) % buttons.length]?.focus(); }
        if (e.key === 'ArrowUp') { e.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length]?.focus(); }
        if (e.key === 'Home') { e.preventDefault(); buttons[0]?.focus(); }
        if (e.key === 'End') { e.preventDefault(); buttons[buttons.length - 1]?.focus(); }
      }}
    >
      {items.map((it) => (
        <button key={it.label} type="button" role="menuitem" tabIndex={-1} onClick={() => { it.run(); onClose(true); }}>
          {it.label}
        </button>
      ))}
    </div>
  );
}
