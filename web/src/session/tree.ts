// The process tree of a session, from its events: each execve is a process,
// placed under the process whose exec id is its parent exec id; connections
// and file changes hang on the process that made them.
import type { KtEvent } from '../api/types';
import { str } from '../events';

export interface ProcNode {
  execId: string;
  /** The execve; absent for a process that started before what is stored. */
  exec?: KtEvent;
  exit?: KtEvent;
  name: string;
  cmdline: string;
  pid?: number;
  start: string;
  children: ProcNode[];
  /** Its connections and file changes, oldest first. */
  activity: KtEvent[];
}

export function buildProcessTree(events: KtEvent[]): ProcNode[] {
  const nodes = new Map<string, ProcNode>();
  const order: ProcNode[] = [];
  const node = (e: KtEvent): ProcNode | undefined => {
    const id = str(e, 'proc.exec_id');
    if (!id) return undefined;
    let n = nodes.get(id);
    if (!n) {
      n = {
        execId: id, name: str(e, 'proc.name') ?? '?', cmdline: str(e, 'proc.cmdline') ?? str(e, 'proc.name') ?? '?',
        pid: typeof e['proc.pid'] === 'number' ? e['proc.pid'] : undefined, start: str(e, 'evt.time') ?? '',
        children: [], activity: [],
      };
      nodes.set(id, n);
      order.push(n);
    }
    return n;
  };
  const parentOf = new Map<string, string>();
  for (const e of events) {
    const cat = e['evt.category'];
    if (cat !== 'process' && cat !== 'network' && cat !== 'file') continue;
    const n = node(e);
    if (!n) continue;
    const parent = str(e, 'proc.pexec_id');
    if (parent && !parentOf.has(n.execId)) parentOf.set(n.execId, parent);
    if (cat === 'process' && e['evt.type'] === 'execve') {
      n.exec = e;
      n.start = str(e, 'evt.time') ?? n.start;
      n.cmdline = str(e, 'proc.cmdline') ?? n.cmdline;
    } else if (cat === 'process' && e['evt.type'] === 'exit') {
      n.exit = e;
    } else if (cat !== 'process') {
      n.activity.push(e);
    }
  }
  const roots: ProcNode[] = [];
  for (const n of order) {
    const p = nodes.get(parentOf.get(n.execId) ?? '');
    // A parent outside the session (the runtime) makes n a root; so would a
    // cycle, which exec ids cannot form but bad data could.
    if (p && p !== n && !isDescendant(p, n)) p.children.push(n);
    else roots.push(n);
  }
  const byStart = (a: ProcNode, b: ProcNode) => Date.parse(a.start) - Date.parse(b.start);
  const sortAll = (ns: ProcNode[]) => { ns.sort(byStart); ns.forEach((c) => sortAll(c.children)); };
  sortAll(roots);
  return roots;
}

function isDescendant(candidate: ProcNode, of: ProcNode): boolean {
  return of.children.some((c) => c === candidate || isDescendant(candidate, c));
}

