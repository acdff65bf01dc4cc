// Loading API data for a key: a new key aborts the request for the old one,
// so a quick succession of scope or time changes never paints stale data.
import { useEffect, useRef, useState } from 'react';
import { isAbort } from '../api/client';
import { requestEnded, requestStarted } from '../perf';

export interface Loaded<T> {
  data?: T;
  /** The key data belongs to; it lags behind the current key while loading. */
  dataKey?: string;
  error?: Error;
  loading: boolean;
}

/** Loads load() whenever key changes; a null key loads nothing. The last data
 * stays shown while the next loads, so regions do not flash empty. */
export function useApi<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ loading: key !== null });
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    if (key === null) {
      setState({ loading: false });
      return;
    }
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: undefined }));
    requestStarted();
    loadRef.current(ctl.signal)
      .then((data) => { if (!ctl.signal.aborted) setState({ data, dataKey: key, loading: false }); })
      .catch((error: Error) => { if (!isAbort(error) && !ctl.signal.aborted) setState({ error, dataKey: key, loading: false }); })
      .finally(requestEnded);
    return () => ctl.abort();
  }, [key]);

  return state;
}
