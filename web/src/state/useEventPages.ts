// A cursor-paged list of events for a key: the first page small (so the table
// paints early), later pages larger, fetched on demand; a new key aborts
// everything of the old one.
import { useCallback, useEffect, useRef, useState } from 'react';
import { isAbort } from '../api/client';
import type { EventPage, KtEvent } from '../api/types';
import { requestEnded, requestStarted } from '../perf';

const FIRST_PAGE = 200;
const NEXT_PAGE = 1000;

export interface Pages {
  /** The key rows belong to. */
  key?: string;
  rows: KtEvent[];
  next?: string;
  loading: boolean;
  loadingMore: boolean;
  error?: Error;
}

type FetchPage = (limit: number, cursor: string | undefined, signal: AbortSignal) => Promise<EventPage>;

export function useEventPages(key: string | null, fetchPage: FetchPage): Pages & { loadMore: () => void } {
  const [pages, setPages] = useState<Pages>({ rows: [], loading: key !== null, loadingMore: false });
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const ctlRef = useRef<AbortController | null>(null);
  const pagesRef = useRef(pages);
  pagesRef.current = pages;

  useEffect(() => {
    if (key === null) return;
    const ctl = new AbortController();
    ctlRef.current = ctl;
    setPages((p) => ({ ...p, loading: true, loadingMore: false, error: undefined }));
    requestStarted();
    fetchRef.current(FIRST_PAGE, undefined, ctl.signal)
      .then((page) => {
        if (!ctl.signal.aborted) setPages({ key, rows: page.events ?? [], next: page.next, loading: false, loadingMore: false });
      })
      .catch((error: Error) => {
        if (!isAbort(error) && !ctl.signal.aborted) setPages({ key, rows: [], loading: false, loadingMore: false, error });
      })
      .finally(requestEnded);
    return () => ctl.abort();
  }, [key]);

  const loadMore = useCallback(() => {
    const p = pagesRef.current;
    const ctl = ctlRef.current;
    if (!ctl || !p.next || p.loading || p.loadingMore || p.key !== key) return;
    pagesRef.current = { ...p, loadingMore: true };
    setPages(pagesRef.current);
    requestStarted();
    fetchRef.current(NEXT_PAGE, p.next, ctl.signal)
      .then((page) => {
        if (ctl.signal.aborted) return;
        setPages((cur) => ({ ...cur, rows: cur.rows.concat(page.events ?? []), next: page.next, loadingMore: false }));
      })
      .catch((error: Error) => {
        if (!isAbort(error) && !ctl.signal.aborted) setPages((cur) => ({ ...cur, loadingMore: false, error }));
      })
      .finally(requestEnded);
  }, [key]);

  return { ...pages, loadMore };
}
