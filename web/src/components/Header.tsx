// The top bar: the pages, the theme and signing out.
import { useState } from 'react';
import { getTheme, setTheme, type ThemeChoice } from '../theme';
import { DEFAULT_STATE, useAppState } from '../state/url';
import { Link } from './Link';

export function Header({ onLogout }: { onLogout: () => void }) {
  const state = useAppState();
  const [theme, setThemeState] = useState<ThemeChoice>(getTheme());
  const keep = { from: state.from, to: state.to };
  return (
    <header className="topbar">
      <span className="brand"><span className="logo" aria-hidden="true">◆</span> kubetrail</span>
      <nav aria-label="Pages">
        <Link to={{ ...DEFAULT_STATE, ...keep }} aria-current={state.page === 'activity' ? 'page' : undefined}>Activity</Link>
        <Link to={{ ...DEFAULT_STATE, page: 'policy' }} aria-current={state.page === 'policy' ? 'page' : undefined}>
          Policy events
        </Link>
        {state.page === 'session' && <span aria-current="page" className="crumb">Session</span>}
      </nav>
      <span className="spacer" />
      <label className="inline">
        Theme
        <select value={theme} onChange={(e) => {
          const t = e.target.value as ThemeChoice;
          setTheme(t);
          setThemeState(t);
        }}>
          <option value="system">System</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </label>
      <button type="button" className="btn" onClick={onLogout}>Sign out</button>
    </header>
  );
}
