// The scope tree: where the events of the current filter and window happened,
// by Kubernetes ownership (cluster → namespace → workload → pod) or by host
// (cluster → node → container). Clicking a node scopes the view to it.
import { memo, useEffect, useState } from 'react';
import type { ScopeNode } from '../api/types';
import type { GroupBy } from '../state/url';
import { formatCount, nodeTerms, unnamed } from './scope';

interface Props {
  by: GroupBy;
  onBy: (by: GroupBy) => void;
  nodes?: ScopeNode[];
  loading: boolean;
  error?: string;
  scope: string;
  onScope: (cond: string) => void;
}

export function ScopeTree({ by, onBy, nodes, loading, error, scope, onScope }: Props) {
  return (
    <nav className="scope-tree" data-testid="scope-tree" data-loading={loading} aria-label="Scope">
      <div className="segmented" role="radiogroup" aria-label="Group scopes by">
        <button type="button" role="radio" aria-checked={by === 'workload'} onClick={() => onBy('workload')}
          title="cluster → namespace → workload → pod">Kubernetes</button>
        <button type="button" role="radio" aria-checked={by === 'host'} onClick={() => onBy('host')}
          title="cluster → node → container">Hosts</button>
      </div>
      <button type="button" className={`scope-all ${scope === '' ? 'selected' : ''}`} aria-pressed={scope === ''}
        onClick={() => onScope('')}>
        All scopes
      </button>
      {error && <p className="region-error" role="alert">{error}</p>}
      {nodes && nodes.length === 0 && !loading && <p className="muted">No events in this window.</p>}
      {nodes && (
        <ul role="tree" aria-label={by === 'host' ? 'Hosts' : 'Kubernetes'} className="tree">
          {nodes.map((n) => (
            <TreeNode key={`${n.level}/${n.name}`} node={n} parent="" level={1} scope={scope} onScope={onScope} />
          ))}
        </ul>
      )}
    </nav>
  );
}

interface NodeProps {
  node: ScopeNode;
  /** The condition of the node's parent; '' at the top. */
  parent: string;
  level: number;
  scope: string;
  onScope: (cond: string) => void;
}

const TreeNode = memo(function TreeNode({ node, parent, level, scope, onScope }: NodeProps) {
  const cond = [parent, ...nodeTerms(node)].filter(Boolean).join(' and ');
  const selected = scope === cond;
  const onPath = scope.startsWith(`${cond} and `);
  const children = node.children ?? [];
  // Clusters start open, and so does the way down to the selected scope.
  const [open, setOpen] = useState(level === 1 || onPath);
  useEffect(() => { if (onPath) setOpen(true); }, [onPath]);
  const name = node.name || unnamed(node);
  const label = node.level === 'workload' && node.kind ? `${node.kind} ${name}` : name;
  return (
    <li role="treeitem" aria-level={level} aria-selected={selected}
      aria-expanded={children.length ? open : undefined} className="tree-item">
      <div className={`tree-row ${selected ? 'selected' : ''}`} style={{ paddingLeft: `${(level - 1) * 12}px` }}>
        {children.length > 0 ? (
          <button type="button" className="twisty" aria-label={`${open ? 'Collapse' : 'Expand'} ${label}`}
            onClick={() => setOpen(!open)}>{open ? '▾' : '▸'}</button>
        ) : <span className="twisty" />}
        <button type="button" className="tree-label" title={cond}
          aria-label={`${node.level === 'workload' ? node.kind ?? 'workload' : node.level} ${name}`}
          onClick={() => onScope(selected ? '' : cond)}>
          <span className="level">{levelTag(node)}</span>
          <span className="name">{name}</span>
          {node.level === 'container' && node.kind && <span className="sub">{node.kind}</span>}
        </button>
        <span className="count" aria-label={`${node.count} events`}>{formatCount(node.count)}</span>
      </div>
      {open && children.length > 0 && (
        <ul role="group">
          {children.map((c) => (
            <TreeNode key={`${c.level}/${c.kind ?? ''}/${c.id ?? c.name}`} node={c} parent={cond}
              level={level + 1} scope={scope} onScope={onScope} />
          ))}
        </ul>
      )}
    </li>
  );
});

function levelTag(n: ScopeNode): string {
  if (n.level === 'workload') return abbreviations[n.kind ?? ''] ?? 'wl';
  return { cluster: 'cl', namespace: 'ns', pod: 'pod', node: 'node', container: 'ctr', workload: 'wl' }[n.level];
}

const abbreviations: Record<string, string> = {
  Deployment: 'deploy', StatefulSet: 'sts', DaemonSet: 'ds', CronJob: 'cj', Job: 'job', Pod: 'pod',
};
