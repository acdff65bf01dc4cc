import { describe, expect, it } from 'vitest';
import { buildProcessTree, type ProcNode } from './tree';

const exec = (id: string, parent: string, cmd: string, t: string) => ({
  'evt.category': 'process', 'evt.type': 'execve', 'evt.time': `2026-11-27T09:${t}Z`, 'proc.exec_id': id,
  'proc.pexec_id': parent, 'proc.cmdline': cmd, 'proc.name': cmd.split(' ')[0],
});

const shape = (ns: ProcNode[]): unknown => ns.map((n) => ({ [n.cmdline]: shape(n.children) }));

describe('session process tree', () => {
  it('nests children under their parents, in start order', () => {
    const events = [
      exec('bash', 'runtime', 'bash', '23:52.2'),
      exec('tar', 'bash', 'tar -xzf /tmp/x.tgz', '24:55.3'),
      exec('gzip', 'tar', 'gzip -d', '24:55.4'),
      exec('id', 'bash', 'id', '24:01.4'),
      { 'evt.category': 'network', 'evt.type': 'connect', 'evt.time': '2026-11-27T09:24:56Z', 'proc.exec_id': 'tar', 'proc.pexec_id': 'bash' },
      { 'evt.category': 'process', 'evt.type': 'exit', 'evt.time': '2026-11-27T09:27:55Z', 'proc.exec_id': 'bash', 'proc.exitcode': 0 },
      { 'evt.category': 'policy', 'evt.time': '2026-11-27T09:25:00Z', 'policy.rule': 'x' },
    ];
    const roots = buildProcessTree(events);
    expect(shape(roots)).toEqual([{ bash: [{ id: [] }, { 'tar -xzf /tmp/x.tgz': [{ 'gzip -d': [] }] }] }]);
    const tar = roots[0].children[1];
    expect(tar.activity.map((e) => e['evt.type'])).toEqual(['connect']);
    expect(roots[0].exit?.['proc.exitcode']).toBe(0);
  });

  it('keeps a process whose execve is not stored, from its other events', () => {
    const roots = buildProcessTree([
      { 'evt.category': 'file', 'evt.type': 'open', 'evt.time': '2026-11-27T09:00:00Z', 'proc.exec_id': 'old', 'proc.pexec_id': 'runtime', 'proc.name': 'nginx' },
      exec('sh', 'old', 'sh -c date', '00:01'),
    ]);
    expect(shape(roots)).toEqual([{ nginx: [{ 'sh -c date': [] }] }]);
    expect(roots[0].exec).toBeUndefined();
  });
});
