// One function per endpoint, typed, so components never build URLs.
import { apiGet } from './client';
import type {
  Activity, EventPage, FieldDoc, Histogram, KtEvent, ScopeNode, Stats, Trace, ValueCount,
} from './types';

export interface Window {
  from: number; // ms since the epoch, inclusive
  to: number; // exclusive
}

export interface Query {
  filter: string;
  window: Window;
}

function windowParams(w: Window) {
  return { from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() };
}

export function stats(signal?: AbortSignal, token?: string): Promise<Stats> {
  return apiGet<Stats>('/stats', {}, signal, token);
}

export function searchEvents(q: Query, limit: number, cursor?: string, signal?: AbortSignal): Promise<EventPage> {
  return apiGet<EventPage>('/events', { filter: q.filter, ...windowParams(q.window), limit, cursor }, signal);
}

export function policyEvents(q: Query, limit: number, cursor?: string, signal?: AbortSignal): Promise<EventPage> {
  return apiGet<EventPage>('/policy-events', { filter: q.filter, ...windowParams(q.window), limit, cursor }, signal);
}

export function getEvent(id: string, signal?: AbortSignal): Promise<KtEvent> {
  return apiGet<KtEvent>(`/events/${encodeURIComponent(id)}`, {}, signal);
}

export async function scopes(q: Query, by: 'workload' | 'host', signal?: AbortSignal): Promise<ScopeNode[]> {
  const r = await apiGet<{ scopes: ScopeNode[] }>('/scopes', { filter: q.filter, ...windowParams(q.window), by }, signal);
  return r.scopes ?? [];
}

export function histogram(q: Query, bucket: string, signal?: AbortSignal): Promise<Histogram> {
  return apiGet<Histogram>('/histogram', { filter: q.filter, ...windowParams(q.window), bucket }, signal);
}

export async function fields(signal?: AbortSignal): Promise<FieldDoc[]> {
  const r = await apiGet<{ fields: FieldDoc[] } | FieldDoc[]>('/fields', {}, signal);
  return Array.isArray(r) ? r : r.fields;
}

export async function values(
  field: string, prefix: string, q: Query, limit: number, signal?: AbortSignal,
): Promise<ValueCount[]> {
  const r = await apiGet<{ values: ValueCount[] } | ValueCount[]>(
    '/values', { field, prefix, filter: q.filter, ...windowParams(q.window), limit }, signal);
  return (Array.isArray(r) ? r : r.values) ?? [];
}

export function trace(id: string, signal?: AbortSignal): Promise<Trace> {
  return apiGet<Trace>(`/sessions/${encodeURIComponent(id)}`, {}, signal);
}

export function activity(policyEventId: string, limit: number, signal?: AbortSignal): Promise<Activity> {
  return apiGet<Activity>(`/policy-events/${encodeURIComponent(policyEventId)}/activity`,
    { before: '5m', after: '5m', limit }, signal);
}
