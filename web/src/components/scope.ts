// The condition each scope tree node stands for: the conjunction of its own
// terms and its ancestors', so that a pod is the pod of that namespace of
// that cluster.
import type { ScopeNode } from '../api/types';
import { eq } from '../filter/query';

/** field = value; for the empty name (cluster-wide requests have no
 * namespace) "not field exists", since a comparison on an absent field is
 * false. */
function is(field: string, value: string): string {
  return value === '' ? `not ${field} exists` : eq(field, value);
}

export function nodeTerms(n: ScopeNode): string[] {
  switch (n.level) {
    case 'cluster': return [is('k8s.cluster.name', n.name)];
    case 'namespace': return [is('k8s.ns.name', n.name)];
    case 'workload':
      return n.kind ? [eq('k8s.workload.kind', n.kind), is('k8s.workload.name', n.name)] : [is('k8s.workload.name', n.name)];
    case 'pod': return [is('k8s.pod.name', n.name)];
    case 'node': return [is('k8s.node.name', n.name)];
    // Without an id: the node's own processes, outside any container.
    case 'container': return n.id ? [eq('container.id', n.id)] : n.name ? [eq('container.name', n.name)] : ['not container.id exists'];
  }
}

/** What the tree shows for a node without a name. */
export function unnamed(n: ScopeNode): string {
  return n.level === 'namespace' ? '(no namespace)' : n.level === 'node' ? '(no node)' : `(no ${n.level})`;
}

export function formatCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
}
