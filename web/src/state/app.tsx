// What every page shares once signed in: the field reference (for completion,
// grouping and the type of a clicked value), the store's stats (for the
// default window) and what a click on a value does on the current page.
import { createContext, useContext } from 'react';
import type { FieldDoc, FieldType, Stats } from '../api/types';
import type { Trail } from '../time';

export interface AppContextValue {
  fields: FieldDoc[];
  fieldType: (name: string) => FieldType | undefined;
  /** undefined until the server answered; null when it could not. */
  stats?: Stats | null;
  /** The newest event and when the stats said so: where "the last hour" ends. */
  trail?: Trail;
}

export const AppContext = createContext<AppContextValue>({ fields: [], fieldType: () => undefined });

export const useAppContext = () => useContext(AppContext);

/** statsAt: when the stats were read (ms); now when absent. */
export function makeAppContext(fields: FieldDoc[], stats?: Stats | null, statsAt = Date.now()): AppContextValue {
  const types = new Map(fields.map((f) => [f.name, f.type]));
  return { fields, stats, trail: { newest: stats?.newest, seenAt: statsAt }, fieldType: (name) => types.get(name) };
}

/** Adds a condition to the current page's filter. */
export type FilterAction = (cond: string) => void;

export const FilterActionContext = createContext<FilterAction | null>(null);
