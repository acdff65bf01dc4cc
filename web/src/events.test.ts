import { describe, expect, it } from 'vitest';
import { scopeParts, summaryParts, summaryText } from './events';

describe('row summaries', () => {
  it('shows a command line, and an exit with its code', () => {
    expect(summaryText({ 'evt.category': 'process', 'evt.type': 'execve', 'proc.name': 'curl', 'proc.cmdline': 'curl -sS http://x' }))
      .toBe('curl -sS http://x');
    expect(summaryText({ 'evt.category': 'process', 'evt.type': 'exit', 'proc.cmdline': 'bash', 'proc.exitcode': 1 }))
      .toBe('bash exited 1');
  });

  it('shows a connection client -> server with the peer', () => {
    const e = {
      'evt.category': 'network', 'evt.res': 'SUCCESS', 'fd.cip': '10.244.1.39', 'fd.cport': 60685,
      'fd.sip': '185.220.101.47', 'fd.sport': 443, 'net.peer.kind': 'unknown',
    };
    expect(summaryText(e)).toBe('10.244.1.39:60685 -> 185.220.101.47:443 [unknown]');
    expect(summaryText({ ...e, 'net.peer.kind': 'service', 'net.peer.ns': 'data', 'net.peer.name': 'pgbouncer', 'evt.res': 'ECONNREFUSED' }))
      .toBe('10.244.1.39:60685 -> 185.220.101.47:443 [service data/pgbouncer] ECONNREFUSED');
  });

  it('shows a file operation with its path', () => {
    expect(summaryText({ 'evt.category': 'file', 'evt.type': 'unlink', 'fs.path.name': '/root/.bash_history', 'evt.res': 'SUCCESS' }))
      .toBe('unlink /root/.bash_history');
    expect(summaryText({ 'evt.category': 'file', 'evt.type': 'rename', 'fs.path.name': '/a', 'fs.path.target': '/b' }))
      .toBe('rename /a -> /b');
  });

  it('shows a Kubernetes request as user verb resource/name -> code', () => {
    expect(summaryText({
      'evt.category': 'k8s', 'ka.user.name': 'john.doe', 'ka.verb': 'get', 'ka.target.resource': 'pods',
      'ka.target.name': 'invoice-api-x', 'ka.target.subresource': 'exec', 'ka.response.code': 101,
    })).toBe('john.doe get pods/invoice-api-x/exec -> 101');
    expect(summaryText({ 'evt.category': 'k8s', 'ka.user.name': 'ci', 'ka.verb': 'list', 'ka.target.resource': 'secrets', 'ka.response.code': 403 }))
      .toBe('ci list secrets -> 403');
  });

  it('shows a policy event as PRIORITY rule: output, and a gap', () => {
    expect(summaryText({
      'evt.category': 'policy', 'policy.priority': 'WARNING', 'policy.rule': 'Outbound Connection to Unknown IP',
      'policy.output': 'Outbound connection to 185.220.101.47:443',
    })).toBe('WARNING Outbound Connection to Unknown IP: Outbound connection to 185.220.101.47:443');
    expect(summaryText({ 'evt.category': 'gap', 'evt.type': 'execve', 'evt.lost': 12 })).toBe('sensor lost 12 execve records');
  });

  it('makes each value a filter on its own field', () => {
    const parts = summaryParts({ 'evt.category': 'k8s', 'ka.user.name': 'john.doe', 'ka.verb': 'get', 'ka.target.resource': 'pods', 'ka.response.code': 200 });
    expect(parts.filter((p) => p.field).map((p) => [p.field, p.value])).toEqual([
      ['ka.user.name', 'john.doe'], ['ka.verb', 'get'], ['ka.target.resource', 'pods'], ['ka.response.code', 200],
    ]);
    expect(scopeParts({ 'k8s.ns.name': 'billing', 'k8s.workload.name': 'invoice-api', 'k8s.pod.name': 'p1' }).map((p) => p.text).join(''))
      .toBe('billing / invoice-api / p1');
    expect(scopeParts({ 'k8s.node.name': 'node-1' }).map((p) => p.text).join('')).toBe('node-1');
  });
});
