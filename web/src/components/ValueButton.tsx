// A value that filters on click: field = value; with Alt or Shift held, or
// from its menu (right click, or the context-menu key), field != value.
import { useContext, useEffect, useRef, useState, type KeyboardEvent, type MouseEvent, type ReactNode } from 'react';
import { FilterActionContext, useAppContext } from '../state/app';
import { valueCondition } from '../filter/query';

interface Props {
  field: string;
  value: string | number;
  children?: ReactNode;
  className?: string;
}

export function ValueButton({ field, value, children, className }: Props) {
  const onFilter = useContext(FilterActionContext);
  const { fieldType } = useAppContext();
  const [menu, setMenu] = useState<{ x: number; y: number } | null>(null);
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
        role="button"
        tabIndex={0}
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
          setMenu({ x: e.clientX, y: e.clientY });
        }}
      >
        {text}
      </span>
      {menu && (
        <ValueMenu
          at={menu}
          items={[
            { label: `Filter ${eqCond}`, run: () => onFilter(eqCond) },
            { label: `Exclude ${neCond}`, run: () => onFilter(neCond) },
            { label: 'Copy value', run: () => void navigator.clipboard?.writeText(String(value)) },
          ]}
          onClose={() => setMenu(null)}
        />
      )}
    </>
  );
}

interface MenuProps {
  at: { x: number; y: number };
  items: { label: string; run: () => void }[];
  onClose: () => void;
}

function ValueMenu({ at, items, onClose }: MenuProps) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.querySelector('button')?.focus();
    const close = (e: Event) => {
      if (!ref.current?.contains(e.target as Node)) onClose();
    };
    document.addEventListener('mousedown', close);
    return () => document.removeEventListener('mousedown', close);
  }, [onClose]);
  return (
    <div
      ref={ref}
      role="menu"
      className="value-menu"
      style={{ left: at.x, top: at.y }}
      onClick={(e) => e.stopPropagation()}
      onKeyDown={(e) => {
        const buttons = [...(ref.current?.querySelectorAll('button') ?? [])];
        const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
        if (e.key === 'Escape') { e.stopPropagation(); onClose(); }
        if (e.key === 'ArrowDown') { e.preventDefault(); buttons[(i + 1) % buttons.length]?.focus(); }
        if (e.key === 'ArrowUp') { e.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length]?.focus(); }
      }}
    >
      {items.map((it) => (
        <button key={it.label} type="button" role="menuitem" onClick={() => { it.run(); onClose(); }}>
          {it.label}
        </button>
      ))}
    </div>
  );
}
