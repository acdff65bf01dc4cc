// The explorer's performance on a large trail (make bench-ui): a kubetrail
// server on a copy of the 10M-event benchmark trail (built by the duckdb
// package's BenchmarkQueries), nothing deleted (retention 0), and the activity
// page over the trail's day, measured in headless Chromium with the app's own
// performance marks (src/perf.ts):
//   load         navigation start -> kt:table-rendered (and histogram, scopes),
//                each in a fresh browser context (nothing cached), the server warm
//   scope change click on a namespace in the scope tree -> regions re-rendered
//   time change  click on a time preset -> regions re-rendered
// with the API's resource timings beside them, to tell the server's time from
// the browser's. Prints a table; writes e2e/artifacts/bench-ui.json.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type Browser, type Page } from '@playwright/test';
import { ARTIFACTS, startKubetrail } from './kubetrail';

const EVENTS = Number(process.env.BENCH_UI_EVENTS ?? 10_000_000);
const TRAIL = process.env.KT_BENCH_TRAIL
  ?? path.join(process.env.KUBETRAIL_BENCH_DIR ?? path.join(tmpdir(), 'kubetrail-bench'), `trail-v3-${EVENTS}.duckdb`);
const LOADS = Number(process.env.BENCH_UI_LOADS ?? 5);
const CHANGES = Number(process.env.BENCH_UI_CHANGES ?? 10);
const RETENTION = ['process', 'network', 'file', 'k8s', 'policy', 'gap'];
const GOALS = { load: 1000, change: 300 };

type Region = 'table' | 'histogram' | 'scopes';
const REGIONS: Region[] = ['table', 'histogram', 'scopes'];
const ENDPOINTS = ['events', 'histogram', 'scopes', 'stats', 'fields'] as const;

/** One API request, from the Resource Timing API (ms, relative to the start of the step). */
interface Request { endpoint: string; start: number; ttfb: number; end: number }

interface Sample {
  /** What was clicked (changes). */
  label?: string;
  /** When each region rendered, ms after the step began (navigation start, or the click). */
  regions: Record<Region, number>;
  requests: Request[];
  /** Loads only: when the first API request went out (the app booted). */
  boot?: number;
}

test(`explorer on a ${EVENTS.toLocaleString('en-US')}-event trail`, async ({ browser }) => {
  if (!existsSync(TRAIL)) throw new Error(`${TRAIL} is missing: make bench-ui builds it`);
  const token = `kt_bench_${randomBytes(12).toString('hex')}`;
  const server = await startKubetrail({
    name: 'bench-server',
    args: ['server', '--data-dir', 'DATA_DIR', '--listen', '127.0.0.1:0', ...RETENTION.flatMap((c) => [`--retention-${c}`, '0'])],
    env: { KUBETRAIL_ADMIN_TOKEN: token },
    prepare: (dir) => copyFileSync(TRAIL, path.join(dir, 'trail.duckdb')),
    ready: (out) => {
      const url = /listening on (https?:\/\/[^\s]+)/.exec(out)?.[1];
      return url ? { url, token } : undefined;
    },
    timeoutMs: 300_000,
  });
  try {
    const res = await fetch(`${server.url}/api/v1/stats`, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET /api/v1/stats: ${res.status} ${await res.text()}`);
    const stats = (await res.json()) as { events: Record<string, number>; oldest: string; newest: string };
    const total = Object.values(stats.events).reduce((a, b) => a + b, 0);
    // The day ending just after the newest event, on a whole minute: what the
    // 24h preset gives on a trail whose newest event is in the past.
    const to = Math.ceil((Date.parse(stats.newest) + 1) / 60e3) * 60e3;
    const from = to - 24 * 3600e3;
    const url = `/?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`;
    console.log(`trail ${path.basename(TRAIL)}: ${total.toLocaleString('en-US')} events, ${stats.oldest} .. ${stats.newest}`);
    console.log(`server ${server.url}; page ${url}`);

    // Loads: each in a fresh context; the first is the first after the server started.
    const loads: Sample[] = [];
    for (let i = 0; i <= LOADS; i++) {
      const { page, close } = await open(browser, server.url, token);
      loads.push(await measureLoad(page, url));
      await close();
    }

    // Changes, on one page.
    const { page, close } = await open(browser, server.url, token);
    await measureLoad(page, url);
    const namespaces = await page.getByTestId('scope-tree').locator('button.tree-label[aria-label^="namespace "]')
      .evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label')!));
    if (namespaces.length < 2) throw new Error(`the scope tree shows ${namespaces.length} namespaces`);
    const scopeChanges: Sample[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const label = namespaces[i % namespaces.length];
      scopeChanges.push(await measureChange(page, `[data-testid="scope-tree"] button[aria-label="${label}"]`, ['table', 'histogram', 'scopes']));
    }
    await measureChange(page, '.scope-all', ['table', 'histogram', 'scopes']);
    const timeChanges: Sample[] = [];
    const presets = ['6h', '24h', '1h', '24h'];
    for (let i = 0; i < CHANGES; i++) {
      timeChanges.push(await measureChange(page, `preset:${presets[i % presets.length]}`, ['table', 'histogram', 'scopes']));
    }
    await close();

    const report = summarise({ trail: TRAIL, events: total, window: { from, to }, loads, scopeChanges, timeChanges });
    console.log(report.text);
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(path.join(ARTIFACTS, 'bench-ui.json'), JSON.stringify(report.json, null, 2));
  } finally {
    await server.stop();
  }
});

async function open(browser: Browser, baseURL: string, token: string) {
  const context = await browser.newContext({ baseURL });
  await context.addInitScript((t) => {
    sessionStorage.setItem('kubetrail.token', t);
    performance.setResourceTimingBufferSize(100_000);
  }, token);
  const page = await context.newPage();
  return { page, close: () => context.close() };
}

/** Waits until every region's mark has been set more often than before (a
 * number per region), no request is in flight and no region is loading. */
async function settled(page: Page, regions: Region[], before: number[]) {
  await page.waitForFunction(({ names, before: b }) =>
    names.every((n, i) => performance.getEntriesByName(n, 'mark').length > b[i])
    && ((window as { __ktState?: { pending: number } }).__ktState?.pending ?? 0) === 0
    && !document.querySelector('[data-loading="true"]'),
  { names: regions.map((r) => `kt:${r}-rendered`), before }, { timeout: 120_000, polling: 10 });
}

/** What happened since the time t0 (ms since navigation start): the first
 * mark of each region after it, and the API requests that started after it. */
function collect(page: Page, t0: number, regions: Region[]): Promise<Sample> {
  return page.evaluate(({ t0: t, regions: rs }) => {
    const first = (name: string) => performance.getEntriesByName(name, 'mark').find((m) => m.startTime >= t)?.startTime ?? NaN;
    const regionTimes = Object.fromEntries(rs.map((r) => [r, first(`kt:${r}-rendered`) - t]));
    const requests = (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
      .filter((e) => e.name.includes('/api/v1/') && e.startTime >= t)
      .map((e) => ({
        endpoint: new URL(e.name).pathname.replace('/api/v1/', ''),
        start: e.startTime - t,
        ttfb: e.responseStart - e.startTime,
        end: e.responseEnd - t,
      }));
    return { regions: regionTimes, requests } as Sample;
  }, { t0, regions });
}

async function measureLoad(page: Page, url: string): Promise<Sample> {
  await page.goto(url, { waitUntil: 'commit' });
  await settled(page, REGIONS, [0, 0, 0]);
  const s = await collect(page, 0, REGIONS);
  s.boot = Math.min(...s.requests.map((r) => r.start));
  return s;
}

/** Clicks target in the page (no round trip between the start mark and the
 * click) and measures until the regions have rendered the new state. target
 * is a selector, or preset:LABEL for a time preset. */
async function measureChange(page: Page, target: string, regions: Region[]): Promise<Sample> {
  const before = await page.evaluate((names) => names.map((n) => performance.getEntriesByName(n, 'mark').length),
    regions.map((r) => `kt:${r}-rendered`));
  const t0 = await page.evaluate((target) => {
    const el = target.startsWith('preset:')
      ? [...document.querySelectorAll<HTMLButtonElement>('[aria-label="Last"] button')].find((b) => b.textContent === target.slice(7))
      : document.querySelector<HTMLElement>(target);
    if (!el) throw new Error(`nothing to click: ${target}`);
    const t = performance.now();
    el.click();
    return t;
  }, target);
  await settled(page, regions, before);
  return { ...(await collect(page, t0, regions)), label: target.replace(/^.*aria-label="([^"]+)".*$/, '$1') };
}

// ---- The report ----

function pct(xs: number[], p: number): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} ms` : '—');
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

/** The server's share: per endpoint, the time to first byte (the query) and to the last byte. */
function endpointTimes(samples: Sample[], endpoint: string) {
  const rs = samples.flatMap((s) => s.requests.filter((r) => r.endpoint === endpoint));
  return { ttfb: pct(rs.map((r) => r.ttfb), 50), ttfbMax: pct(rs.map((r) => r.ttfb), 100), end: pct(rs.map((r) => r.end), 50), n: rs.length };
}

interface Results {
  trail: string;
  events: number;
  window: { from: number; to: number };
  loads: Sample[];
  scopeChanges: Sample[];
  timeChanges: Sample[];
}

function summarise(r: Results) {
  const [first, ...warm] = r.loads;
  const col = (xs: Sample[], region: Region, p: number) => pct(xs.map((s) => s.regions[region]), p);
  const rows: [string, string, string, string, string][] = [
    ['', 'table', 'histogram', 'scopes', 'goal'],
    ['first load', ms(first.regions.table), ms(first.regions.histogram), ms(first.regions.scopes), `≤ ${GOALS.load} ms`],
    [`load p50 (${warm.length})`, ms(col(warm, 'table', 50)), ms(col(warm, 'histogram', 50)), ms(col(warm, 'scopes', 50)), `≤ ${GOALS.load} ms`],
    [`load max (${warm.length})`, ms(col(warm, 'table', 100)), ms(col(warm, 'histogram', 100)), ms(col(warm, 'scopes', 100)), ''],
    [`scope change p50 (${r.scopeChanges.length})`, ms(col(r.scopeChanges, 'table', 50)), ms(col(r.scopeChanges, 'histogram', 50)), ms(col(r.scopeChanges, 'scopes', 50)), `≤ ${GOALS.change} ms`],
    [`scope change max`, ms(col(r.scopeChanges, 'table', 100)), ms(col(r.scopeChanges, 'histogram', 100)), ms(col(r.scopeChanges, 'scopes', 100)), ''],
    [`time change p50 (${r.timeChanges.length})`, ms(col(r.timeChanges, 'table', 50)), ms(col(r.timeChanges, 'histogram', 50)), ms(col(r.timeChanges, 'scopes', 50)), `≤ ${GOALS.change} ms`],
    [`time change max`, ms(col(r.timeChanges, 'table', 100)), ms(col(r.timeChanges, 'histogram', 100)), ms(col(r.timeChanges, 'scopes', 100)), ''],
  ];
  const w = [24, 11, 11, 11, 10];
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? pad(c, w[i]) : lpad(c, w[i]))).join(' ');
  const out: string[] = [];
  out.push('');
  out.push(`explorer, ${r.events.toLocaleString('en-US')} events, window ${new Date(r.window.from).toISOString()} .. ${new Date(r.window.to).toISOString()} (24h)`);
  out.push('time to render (navigation start or click -> kt:<region>-rendered):');
  for (const row of rows) out.push(`  ${line(row)}`);
  out.push('');
  out.push('server (API requests: time to first byte p50 / max, and when the response was in, p50, after the step began):');
  const server: Record<string, Record<string, ReturnType<typeof endpointTimes>>> = {};
  for (const [name, samples] of [['load', warm], ['scope change', r.scopeChanges], ['time change', r.timeChanges]] as const) {
    server[name] = {};
    const parts: string[] = [];
    for (const e of ENDPOINTS) {
      const t = endpointTimes(samples, e);
      if (!t.n) continue;
      server[name][e] = t;
      parts.push(`${e} ${ms(t.ttfb)} / ${ms(t.ttfbMax)} (in at ${ms(t.end)})`);
    }
    out.push(`  ${pad(name, 13)} ${parts.join('; ')}`);
  }
  for (const [name, samples] of [['scope changes', r.scopeChanges], ['time changes', r.timeChanges]] as const) {
    out.push(`  ${name}, each: ${samples.map((c) => {
      const ev = c.requests.find((q) => q.endpoint === 'events');
      return `${c.label} ${Math.round(c.regions.table)}${ev ? ` (events ${Math.round(ev.ttfb)})` : ''}`;
    }).join(', ')}`);
  }
  out.push(`  app boot (navigation start -> first API request), loads p50: ${ms(pct(warm.map((s) => s.boot ?? NaN), 50))}`);
  const verdict = (name: string, value: number, goal: number) => `${name} ${ms(value)} ${value <= goal ? 'meets' : 'MISSES'} its goal (≤ ${goal} ms)`;
  const loadAll = pct(warm.map((s) => Math.max(s.regions.table, s.regions.histogram, s.regions.scopes)), 50);
  const scopeAll = pct(r.scopeChanges.map((s) => Math.max(s.regions.table, s.regions.histogram)), 50);
  const timeAll = pct(r.timeChanges.map((s) => Math.max(s.regions.table, s.regions.histogram)), 50);
  out.push('');
  out.push(`  ${verdict('first meaningful render (all three regions, p50)', loadAll, GOALS.load)}`);
  out.push(`  ${verdict('scope change (table and histogram, p50)', scopeAll, GOALS.change)}`);
  out.push(`  ${verdict('time change (table and histogram, p50)', timeAll, GOALS.change)}`);
  return { text: out.join('\n'), json: { ...r, server } };
}
