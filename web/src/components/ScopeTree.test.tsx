import { fireEvent, render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { ScopeNode } from '../api/types';
import { ScopeTree } from './ScopeTree';

const byWorkload: ScopeNode[] = [{
  level: 'cluster', name: 'demo', count: 300, children: [{
    level: 'namespace', name: 'billing', count: 200, children: [{
      level: 'workload', kind: 'Deployment', name: 'invoice-api', count: 150, children: [
        { level: 'pod', name: 'invoice-api-abc', count: 150 },
      ],
    }],
  }],
}];

const byHost: ScopeNode[] = [{
  level: 'cluster', name: 'demo', count: 300, children: [{
    level: 'node', name: 'node-1', count: 300, children: [
      { level: 'container', name: 'app', kind: 'registry.example.com/billing/invoice-api', id: 'c0ffee', count: 300 },
    ],
  }],
}];

describe('ScopeTree', () => {
  it('scopes to a node with the conditions of its whole path', () => {
    const onScope = vi.fn();
    render(<ScopeTree by="workload" onBy={() => {}} nodes={byWorkload} loading={false} scope="" onScope={onScope} />);
    fireEvent.click(screen.getByRole('button', { name: 'namespace billing' }));
    expect(onScope).toHaveBeenLastCalledWith('k8s.cluster.name = demo and k8s.ns.name = billing');
    fireEvent.click(screen.getByRole('button', { name: 'Expand billing' }));
    fireEvent.click(screen.getByRole('button', { name: 'Deployment invoice-api' }));
    expect(onScope).toHaveBeenLastCalledWith(
      'k8s.cluster.name = demo and k8s.ns.name = billing and k8s.workload.kind = Deployment and k8s.workload.name = invoice-api');
  });

  it('opens the way to the selected scope and marks it', () => {
    const scope = 'k8s.cluster.name = demo and k8s.ns.name = billing and k8s.workload.kind = Deployment'
      + ' and k8s.workload.name = invoice-api and k8s.pod.name = invoice-api-abc';
    const onScope = vi.fn();
    render(<ScopeTree by="workload" onBy={() => {}} nodes={byWorkload} loading={false} scope={scope} onScope={onScope} />);
    const pod = screen.getByRole('treeitem', { selected: true });
    expect(pod.textContent).toContain('invoice-api-abc');
    // Clicking the selected node again clears the scope.
    fireEvent.click(screen.getByRole('button', { name: 'pod invoice-api-abc' }));
    expect(onScope).toHaveBeenLastCalledWith('');
  });

  it('groups by host: node, then container by id', () => {
    const onScope = vi.fn();
    const onBy = vi.fn();
    render(<ScopeTree by="host" onBy={onBy} nodes={byHost} loading={false} scope="" onScope={onScope} />);
    fireEvent.click(screen.getByRole('button', { name: 'Expand node-1' }));
    fireEvent.click(screen.getByRole('button', { name: 'container app' }));
    expect(onScope).toHaveBeenLastCalledWith('k8s.cluster.name = demo and k8s.node.name = node-1 and container.id = c0ffee');
    fireEvent.click(screen.getByRole('radio', { name: 'Kubernetes' }));
    expect(onBy).toHaveBeenCalledWith('workload');
  });
});
