// How an event reads in a table row: its scope and a one-line summary per
// category, each made of parts so that every value in it can be clicked to
// filter on the field it came from.
import type { KtEvent } from './api/types';

export interface Part {
  text: string;
  /** The field and value a click filters on; plain text when absent. */
  field?: string;
  value?: string | number;
}

export function str(e: KtEvent, field: string): string | undefined {
  const v = e[field];
  if (v === undefined || v === null || v === '') return undefined;
  return Array.isArray(v) ? v.join(' ') : String(v);
}

const val = (e: KtEvent, field: string, text?: string): Part | undefined => {
  const v = e[field];
  if (v === undefined || v === null || v === '') return undefined;
  return { text: text ?? String(v), field, value: typeof v === 'number' ? v : String(v) };
};

const t = (text: string): Part => ({ text });

/** Joins parts, dropping absent ones. */
function parts(...ps: (Part | undefined | false)[]): Part[] {
  return ps.filter((p): p is Part => !!p);
}

/** " ECONNREFUSED" after a failed connection or file change. */
function failure(e: KtEvent): Part[] {
  const res = e['evt.res'];
  return res && res !== 'SUCCESS' ? parts(t(' '), val(e, 'evt.res')) : [];
}

export function summaryParts(e: KtEvent): Part[] {
  switch (e['evt.category']) {
    case 'process': {
      const cmd = val(e, 'proc.cmdline') ?? val(e, 'proc.name');
      if (e['evt.type'] === 'exit') return parts(cmd, t(' exited '), val(e, 'proc.exitcode'));
      return parts(cmd);
    }
    case 'network': {
      const peer = str(e, 'net.peer.name');
      const peerNs = str(e, 'net.peer.ns');
      return parts(
        val(e, 'fd.cip', `${str(e, 'fd.cip') ?? '?'}:${str(e, 'fd.cport') ?? '?'}`),
        t(' -> '),
        val(e, 'fd.sip', `${str(e, 'fd.sip') ?? '?'}:${str(e, 'fd.sport') ?? '?'}`),
        t(' ['),
        val(e, 'net.peer.kind') ?? t('unknown'),
        !!peer && t(' '),
        !!peer && val(e, 'net.peer.name', peerNs ? `${peerNs}/${peer}` : peer),
        t(']'),
      ).concat(failure(e));
    }
    case 'file':
      return parts(
        val(e, 'evt.type'), t(' '), val(e, 'fs.path.name'),
        !!e['fs.path.target'] && t(' -> '), val(e, 'fs.path.target'),
      ).concat(failure(e));
    case 'k8s': {
      const sub = str(e, 'ka.target.subresource');
      return parts(
        val(e, 'ka.user.name'), t(' '), val(e, 'ka.verb'), t(' '),
        val(e, 'ka.target.resource') ?? t('?'),
        !!e['ka.target.name'] && t('/'), val(e, 'ka.target.name'),
        !!sub && t('/'), val(e, 'ka.target.subresource'),
        t(' -> '), val(e, 'ka.response.code') ?? t('…'),
      );
    }
    case 'policy':
      return parts(val(e, 'policy.priority'), t(' '), val(e, 'policy.rule'), t(': '), t(str(e, 'policy.output') ?? ''));
    case 'gap':
      return parts(t('sensor lost '), val(e, 'evt.lost'), t(' '), val(e, 'evt.type'), t(' records'));
  }
  return parts(val(e, 'evt.type'));
}

export function summaryText(e: KtEvent): string {
  return summaryParts(e).map((p) => p.text).join('');
}

/** Where it happened: namespace / workload / pod, or the node for events
 * outside any pod. */
export function scopeParts(e: KtEvent): Part[] {
  const ns = val(e, 'k8s.ns.name');
  const wl = val(e, 'k8s.workload.name');
  const pod = val(e, 'k8s.pod.name');
  if (ns || pod) {
    const out: Part[] = [];
    for (const p of [ns, wl, pod]) {
      if (!p) continue;
      if (out.length) out.push(t(' / '));
      out.push(p);
    }
    return out;
  }
  return parts(val(e, 'k8s.node.name') ?? val(e, 'k8s.cluster.name'));
}

export const eventId = (e: KtEvent) => String(e['evt.id'] ?? '');
export const eventTime = (e: KtEvent) => String(e['evt.time'] ?? '');
export const eventCategory = (e: KtEvent) => String(e['evt.category'] ?? '');

