// Sign in with the server's bearer token. The token is checked against
// /api/v1/stats before it is kept (in sessionStorage: gone with the tab).
import { useState, type FormEvent } from 'react';
import * as api from '../api/endpoints';
import { ApiError } from '../api/client';
import type { Stats } from '../api/types';

interface Props {
  notice?: string;
  onLogin: (token: string, stats: Stats) => void;
}

export function Login({ notice, onLogin }: Props) {
  const [token, setTokenText] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError('Enter the API token.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      onLogin(t, await api.stats(undefined, t));
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401
        ? 'The server refused this token. Check it and try again.'
        : err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <form onSubmit={submit} aria-labelledby="login-title" noValidate>
        <h1 id="login-title"><span className="logo" aria-hidden="true">◆</span> kubetrail explorer</h1>
        <p className="muted">Sign in with the kubetrail server's API token.</p>
        {notice && <p className="notice" role="status">{notice}</p>}
        <label htmlFor="token">API token</label>
        <input id="token" data-testid="login-token" type="password" autoComplete="current-password"
          autoFocus value={token} onChange={(e) => setTokenText(e.target.value)}
          aria-invalid={!!error} aria-describedby={error ? 'login-error' : undefined} />
        {error && <p id="login-error" className="region-error" role="alert">{error}</p>}
        <button type="submit" className="btn primary" data-testid="login-submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
