// Shapes of the kubetrail API (/api/v1), as http/openapi.json and the Go JSON
// tags define them.

/** An event: one flat object keyed by field name; empty fields are omitted. */
export type KtEvent = Record<string, unknown>;

export const CATEGORIES = ['process', 'network', 'file', 'k8s', 'gap', 'policy'] as const;
export type Category = (typeof CATEGORIES)[number];

export interface EventPage {
  events: KtEvent[];
  next?: string;
}

export type ScopeLevel = 'cluster' | 'namespace' | 'workload' | 'pod' | 'node' | 'container';

export interface ScopeNode {
  level: ScopeLevel;
  name: string;
  kind?: string;
  id?: string;
  count: number;
  children?: ScopeNode[];
}

export interface Bucket {
  start: string;
  total: number;
  counts: Partial<Record<Category, number>>;
}

export interface Histogram {
  from: string;
  to: string;
  bucket: string;
  buckets: Bucket[] | null;
}

export type FieldType = 'string' | 'int' | 'time' | 'list';

export interface FieldDoc {
  name: string;
  type: FieldType;
  categories: Category[];
  derived?: boolean;
  doc: string;
}

export interface ValueCount {
  value: string | number; // as the field's type
  count: number;
}

export interface Stats {
  events: Partial<Record<Category, number>>;
  bytes: number;
  oldest?: string;
  newest?: string;
}

export interface SessionRequest {
  'ka.auditid': string;
  time: string;
  'ka.verb'?: string;
  'ka.target.subresource'?: string;
  'ka.user.name'?: string;
  'ka.user.groups'?: string[];
  'ka.impuser.name'?: string;
  'ka.sourceips'?: string[];
  'ka.useragent'?: string;
}

export interface Session {
  'session.id': string;
  'k8s.cluster.name'?: string;
  'k8s.node.name'?: string;
  'k8s.ns.name'?: string;
  'k8s.workload.kind'?: string;
  'k8s.workload.name'?: string;
  'k8s.pod.name'?: string;
  'k8s.pod.uid'?: string;
  'container.id'?: string;
  'container.name'?: string;
  'container.image'?: string;
  'entry.name'?: string;
  'entry.argv'?: string[];
  'entry.tty'?: number;
  'entry.exec_auditid'?: string;
  start?: string;
  end?: string;
  exit_code?: number;
  first?: string;
  last?: string;
  commands: number;
  connections: number;
  file_changes: number;
  request?: SessionRequest;
  maybe_users?: string[];
  attachments?: SessionRequest[];
}

export interface Trace {
  session: Session;
  request?: KtEvent | null;
  events: KtEvent[];
  truncated?: boolean;
}

export interface Activity {
  event: KtEvent;
  trigger: KtEvent | null;
  session: Session | null;
  scope: 'container' | 'pod' | 'node' | 'user' | 'event';
  window: { from: string; to: string };
  filter: string;
  events: KtEvent[];
  truncated?: boolean;
}
