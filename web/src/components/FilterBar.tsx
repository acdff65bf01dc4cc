// The filter bar: the filter language with completion of field names (from
// /fields), operators and values (from /values), Enter to apply, and the
// server's error marked where it is (a squiggle under the column, the message
// beside it).
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import * as api from '../api/endpoints';
import { isAbort } from '../api/client';
import {
  applySuggestion, completionContext, connectiveSuggestions, fieldSuggestions, operatorSuggestions,
  valueSuggestions, type CompletionContext, type Suggestion,
} from '../filter/complete';
import type { FilterError } from '../filter/query';
import { useAppContext } from '../state/app';

export type { FilterError };

interface Props {
  value: string;
  onApply: (text: string) => void;
  error?: FilterError;
  /** The scope and window values are completed in (the user's filter aside). */
  context: api.Query;
  placeholder?: string;
}

type Open = Exclude<CompletionContext, { kind: 'none' }>;

export function FilterBar({ value, onApply, error, context, placeholder }: Props) {
  const { fields, fieldType } = useAppContext();
  const [draft, setDraft] = useState(value);
  const [ctx, setCtx] = useState<Open | null>(null);
  const [values, setValues] = useState<Suggestion[]>([]);
  const [active, setActive] = useState(-1);
  const inputRef = useRef<HTMLInputElement>(null);
  const mirrorRef = useRef<HTMLDivElement>(null);
  const listId = useId();

  useEffect(() => setDraft(value), [value]);

  const suggestions = useMemo<Suggestion[]>(() => {
    if (!ctx) return [];
    switch (ctx.kind) {
      case 'field': return fieldSuggestions(fields, ctx.prefix);
      case 'operator': return operatorSuggestions(fieldType(ctx.field), ctx.prefix);
      case 'connective': return connectiveSuggestions(ctx.prefix);
      case 'value': return values;
    }
  }, [ctx, fields, fieldType, values]);

  // Values come from the server, a moment after typing stops.
  const valueField = ctx?.kind === 'value' ? ctx.field : undefined;
  const valuePrefix = ctx?.kind === 'value' ? ctx.prefix : '';
  const inList = ctx?.kind === 'value' && ctx.inList;
  const contextRef = useRef(context);
  contextRef.current = context;
  useEffect(() => {
    setValues([]);
    if (!valueField || fieldType(valueField) === 'time') return;
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      api.values(valueField, valuePrefix, contextRef.current, 20, ctl.signal)
        .then((vs) => setValues(valueSuggestions(vs, inList)))
        .catch((err) => { if (!isAbort(err)) setValues([]); });
    }, 120);
    return () => { clearTimeout(timer); ctl.abort(); };
  }, [valueField, valuePrefix, inList, fieldType]);

  const refreshCompletion = (text: string, caret: number | null) => {
    const c = completionContext(text, caret ?? text.length);
    setCtx(c.kind === 'none' ? null : c);
    setActive(-1);
  };

  const accept = (s: Suggestion) => {
    if (!ctx) return;
    const next = applySuggestion(draft, ctx, s);
    setDraft(next.text);
    requestAnimationFrame(() => {
      inputRef.current?.setSelectionRange(next.caret, next.caret);
      refreshCompletion(next.text, next.caret);
    });
  };

  const open = ctx !== null && suggestions.length > 0;

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (open && e.key === 'ArrowDown') {
      e.preventDefault();
      setActive((a) => (a + 1) % suggestions.length);
    } else if (open && e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => (a <= 0 ? suggestions.length - 1 : a - 1));
    } else if (open && e.key === 'Tab' && !e.shiftKey) {
      e.preventDefault();
      accept(suggestions[Math.max(active, 0)]);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (open && active >= 0) accept(suggestions[active]);
      else {
        setCtx(null);
        onApply(draft.trim());
      }
    } else if (e.key === 'Escape') {
      if (open) {
        e.stopPropagation();
        setCtx(null);
      } else {
        inputRef.current?.blur();
      }
    } else if (e.key === ' ' && e.ctrlKey) {
      e.preventDefault();
      refreshCompletion(draft, inputRef.current?.selectionStart ?? null);
    }
  };

  const syncMirror = () => {
    if (mirrorRef.current && inputRef.current) mirrorRef.current.scrollLeft = inputRef.current.scrollLeft;
  };
  useEffect(syncMirror);

  const showError = error && draft === value ? error : undefined;
  const at = showError?.index;
  const errorId = `${listId}-error`;

  return (
    <div className="filter-bar">
      <div className="filter-field">
        <input
          ref={inputRef}
          id="filter-input"
          data-testid="filter-input"
          className="filter-input mono"
          type="text"
          role="combobox"
          aria-label="Filter"
          aria-autocomplete="list"
          aria-expanded={open}
          aria-controls={listId}
          aria-activedescendant={open && active >= 0 ? `${listId}-${active}` : undefined}
          aria-invalid={!!showError}
          aria-describedby={showError ? errorId : undefined}
          placeholder={placeholder ?? 'k8s.ns.name = billing and not proc.name in (sh, bash)'}
          spellCheck={false}
          autoComplete="off"
          value={draft}
          onChange={(e) => {
            setDraft(e.target.value);
            refreshCompletion(e.target.value, e.target.selectionStart);
          }}
          onKeyDown={onKeyDown}
          onKeyUp={(e) => {
            if (e.key === 'ArrowLeft' || e.key === 'ArrowRight' || e.key === 'Home' || e.key === 'End') {
              refreshCompletion(draft, e.currentTarget.selectionStart);
            }
            syncMirror();
          }}
          onClick={(e) => refreshCompletion(draft, e.currentTarget.selectionStart)}
          onScroll={syncMirror}
          onBlur={() => setTimeout(() => setCtx(null), 150)}
        />
        {at !== undefined && (
          <div ref={mirrorRef} className="filter-mirror mono" aria-hidden="true">
            {draft.slice(0, at)}
            <span className="squiggle">{draft.slice(at, at + 1) || '\u00a0'}</span>
          </div>
        )}
        {open && (
          <ul id={listId} role="listbox" aria-label="Suggestions" className="completions">
            {suggestions.map((s, i) => (
              <li
                key={`${s.label}-${i}`}
                id={`${listId}-${i}`}
                role="option"
                aria-selected={i === active}
                className={i === active ? 'active' : undefined}
                onMouseDown={(e) => { e.preventDefault(); accept(s); }}
              >
                <span className="mono">{s.label}</span>
                {s.detail && <span className="detail">{s.detail}</span>}
              </li>
            ))}
          </ul>
        )}
      </div>
      <button type="button" className="btn" onClick={() => onApply(draft.trim())}>Apply</button>
      {showError && (
        <div id={errorId} className="filter-error" role="alert" data-testid="filter-error"
          data-column={at === undefined ? undefined : at + 1}>
          {at !== undefined && (
            <pre className="mono error-context">
              {draft.slice(0, at)}<mark>{draft.slice(at, at + 1) || ' '}</mark>{draft.slice(at + 1)}
            </pre>
          )}
          <span className="error-message">
            {at !== undefined ? `column ${at + 1}: ` : ''}{showError.message}
          </span>
        </div>
      )}
    </div>
  );
}
