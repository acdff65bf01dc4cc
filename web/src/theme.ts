// Light and dark: the system's choice unless the user picked one, which is
// kept in localStorage. Charts read colours from CSS variables, so they listen
// for changes to redraw.
import { useEffect, useState } from 'react';

export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'kubetrail.theme';
const CHANGED = 'kt:theme';

export function getTheme(): ThemeChoice {
  const t = localStorage.getItem(KEY);
  return t === 'light' || t === 'dark' ? t : 'system';
}

export function applyTheme(t: ThemeChoice = getTheme()): void {
  if (t === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

export function setTheme(t: ThemeChoice): void {
  if (t === 'system') localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, t);
  applyTheme(t);
  window.dispatchEvent(new Event(CHANGED));
}

/** A number that changes whenever the colours may have. */
export function useThemeVersion(): number {
  const [v, setV] = useState(0);
  useEffect(() => {
    const bump = () => setV((x) => x + 1);
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    mq?.addEventListener('change', bump);
    window.addEventListener(CHANGED, bump);
    return () => {
      mq?.removeEventListener('change', bump);
      window.removeEventListener(CHANGED, bump);
    };
  }, []);
  return v;
}

export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
