// A cursor-paged list of events for a key: the first page small (so the table
// paints early), later pages larger, fetched on demand; a new key aborts
// everything of the old one. A next page that fails is not asked for again
// until the user says so (retryMore): the table would otherwise ask on and
// on while the server is down.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
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
  /** The first page's error. */
  error?: Error;
  /** The last next-page request's error: loadMore does nothing until retryMore. */
  moreError?: Error;
}

export interface PagesApi extends Pages {
  /** Fetches the next page, unless one is loading or the last one failed. */
  loadMore: () => void;
  /** Fetches the next page after a failure (the user asked). */
  retryMore: () => void;
}

type FetchPage = (limit: number, cursor: string | undefined, signal: AbortSignal) => Promise<EventPage>;

export function useEventPages(key: string | null, fetchPage: FetchPage): PagesApi {
  const [pages, setPages] = useState<Pages>({ rows: [], loading: key !== null, loadingMore: false });
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const ctlRef = useRef<AbortController | null>(null);
  const pagesRef = useRef(pages);
  pagesRef.current = pages;

  useEffect(() => {
    if (key === null) {
      ctlRef.current = null;
      setPages({ rows: [], loading: false, loadingMore: false });
      return;
    }
    const ctl = new AbortController();
    ctlRef.current = ctl;
    setPages((p) => ({ ...p, loading: true, loadingMore: false, error: undefined, moreError: undefined }));
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

  const load = useCallback((retry: boolean) => {
    const p = pagesRef.current;
    const ctl = ctlRef.current;
    if (!ctl || !p.next || p.loading || p.loadingMore || p.key !== key || (p.moreError && !retry)) return;
    pagesRef.current = { ...p, loadingMore: true, moreError: undefined };
    setPages(pagesRef.current);
    requestStarted();
    fetchRef.current(NEXT_PAGE, p.next, ctl.signal)
      .then((page) => {
        if (ctl.signal.aborted) return;
        setPages((cur) => ({ ...cur, rows: cur.rows.concat(page.events ?? []), next: page.next, loadingMore: false }));
      })
      .catch((error: Error) => {
        if (!isAbort(error) && !ctl.signal.aborted) setPages((cur) => ({ ...cur, loadingMore: false, moreError: error }));
      })
      .finally(requestEnded);
  }, [key]);

  const loadMore = useCallback(() => load(false), [load]);
  const retryMore = useCallback(() => load(true), [load]);
  return useMemo(() => ({ ...pages, loadMore, retryMore }), [pages, loadMore, retryMore]);
}
