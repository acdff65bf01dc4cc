// A session's process tree: commands with their children, collapsible; a
// process can be picked to narrow the timeline to what it did.
import { useState } from 'react';
import type { ProcNode } from '../session/tree';
import { formatDuration } from '../time';

interface Props {
  roots: ProcNode[];
  start: number;
  focus?: string;
  onFocus: (execId: string | undefined) => void;
}

export function ProcessTree({ roots, start, focus, onFocus }: Props) {
  return (
    <section className="session-tree" data-testid="session-tree" aria-label="Process tree">
      <h2>Processes</h2>
      {roots.length === 0 && <p className="muted">No processes recorded.</p>}
      <ul role="tree" aria-label="Processes" className="tree">
        {roots.map((n) => <ProcItem key={n.execId} node={n} level={1} start={start} focus={focus} onFocus={onFocus} />)}
      </ul>
    </section>
  );
}

interface ItemProps {
  node: ProcNode;
  level: number;
  start: number;
  focus?: string;
  onFocus: (execId: string | undefined) => void;
}

function ProcItem({ node, level, start, focus, onFocus }: ItemProps) {
  const [open, setOpen] = useState(true);
  const conns = node.activity.filter((e) => e['evt.category'] === 'network').length;
  const files = node.activity.length - conns;
  const code = node.exit?.['proc.exitcode'];
  const selected = focus === node.execId;
  const offset = Date.parse(node.start) - start;
  return (
    <li role="treeitem" aria-level={level} aria-expanded={node.children.length ? open : undefined}
      aria-selected={selected} aria-label={node.cmdline} className="tree-item proc">
      <div className={`tree-row ${selected ? 'selected' : ''}`} style={{ paddingLeft: `${(level - 1) * 16}px` }}>
        {node.children.length > 0 ? (
          <button type="button" className="twisty" aria-label={`${open ? 'Collapse' : 'Expand'} ${node.name}`}
            onClick={() => setOpen(!open)}>{open ? '▾' : '▸'}</button>
        ) : <span className="twisty" />}
        <button type="button" className="tree-label" onClick={() => onFocus(selected ? undefined : node.execId)}
          title={selected ? 'Show the whole session in the timeline' : 'Show only this process in the timeline'}>
          <span className="mono cmd">{node.cmdline}</span>
        </button>
        <span className="proc-meta muted">
          {Number.isFinite(offset) && <span title={node.start}>+{formatDuration(Math.max(0, offset))}</span>}
          {node.pid !== undefined && <span>pid {node.pid}</span>}
          {conns > 0 && <span className="badge cat-border-network">{conns} conn</span>}
          {files > 0 && <span className="badge cat-border-file">{files} file</span>}
          {code !== undefined && <span className={code === 0 ? '' : 'bad'}>exit {String(code)}</span>}
        </span>
      </div>
      {open && node.children.length > 0 && (
        <ul role="group">
          {node.children.map((c) => (
            <ProcItem key={c.execId} node={c} level={level + 1} start={start} focus={focus} onFocus={onFocus} />
          ))}
        </ul>
      )}
    </li>
  );
}
