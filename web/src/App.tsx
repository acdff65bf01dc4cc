// Signed out: the login. Signed in: the field reference and stats are
// loaded once (the stats with when they were read: a trail live then is taken
// as live after), then the page the URL names.
import { useEffect, useMemo, useState } from 'react';
import * as api from './api/endpoints';
import { getToken, onUnauthorized, setToken } from './api/client';
import type { FieldDoc, Stats } from './api/types';
import { Header } from './components/Header';
import { ActivityPage } from './pages/ActivityPage';
import { Login } from './pages/Login';
import { PolicyPage } from './pages/PolicyPage';
import { SessionPage } from './pages/SessionPage';
import { AppContext, makeAppContext } from './state/app';
import { DEFAULT_STATE, useAppState } from './state/url';
import { Link } from './components/Link';

export function App() {
  const [token, setTokenState] = useState(getToken());
  const [notice, setNotice] = useState<string>();
  // undefined: not asked yet; null: asked, unanswered (the default window then ends now).
  const [stats, setStatsState] = useState<{ stats: Stats | null; at: number }>();
  const setStats = (s: Stats | null | undefined) => setStatsState(s === undefined ? undefined : { stats: s, at: Date.now() });
  const [fields, setFields] = useState<FieldDoc[]>([]);

  useEffect(() => onUnauthorized(() => {
    // A token being tried at the login is not kept yet: its refusal is the
    // login's to show, not "no longer accepts".
    if (!getToken()) return;
    setToken(null);
    setTokenState(null);
    setNotice('The server no longer accepts your token. Sign in again.');
  }), []);

  useEffect(() => {
    if (!token) return;
    const ctl = new AbortController();
    api.fields(ctl.signal).then(setFields, () => {});
    api.stats(ctl.signal).then(setStats, () => { if (!ctl.signal.aborted) setStats(null); });
    return () => ctl.abort();
  }, [token]);

  const ctx = useMemo(() => makeAppContext(fields, stats?.stats, stats?.at), [fields, stats]);

  if (!token) {
    return (
      <Login notice={notice} onLogin={(t, s) => {
        setToken(t);
        setStats(s);
        setNotice(undefined);
        setTokenState(t);
      }} />
    );
  }
  return (
    <AppContext.Provider value={ctx}>
      <Header onLogout={() => {
        setToken(null);
        setTokenState(null);
        setStats(undefined);
        setNotice('Signed out.');
      }} />
      <Page />
    </AppContext.Provider>
  );
}

export function Page() {
  const { page } = useAppState();
  switch (page) {
    case 'session': return <SessionPage />;
    case 'policy': return <PolicyPage />;
    case 'notfound': return <NotFound />;
    default: return <ActivityPage />;
  }
}

function NotFound() {
  return (
    <main className="page center">
      <p className="region-error" role="alert">There is no page at {window.location.pathname}.</p>
      <p><Link to={DEFAULT_STATE}>Go to the activity</Link></p>
    </main>
  );
}
