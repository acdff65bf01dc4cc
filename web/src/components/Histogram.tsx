// The time histogram: events per bucket stacked by category (uPlot), with a
// readout under the cursor; dragging across it zooms the window, and so do
// "+" and "-" when it has the focus.
import { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Histogram as HistogramData } from '../api/types';
import { STACK, toSeries } from './histogramSeries';
import { cssVar, useThemeVersion } from '../theme';
import { formatTime, zoomWindow, type TimeWindow } from '../time';

interface Props {
  data?: HistogramData;
  loading: boolean;
  error?: string;
  window: TimeWindow;
  onZoom: (w: TimeWindow) => void;
  onRendered?: () => void;
}

export function Histogram({ data, loading, error, window: win, onZoom, onRendered }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const theme = useThemeVersion();
  const series = useMemo(() => (data ? toSeries(data) : undefined), [data]);
  // uPlot's hooks outlive renders: they read the latest props through refs.
  const latest = useRef({ win, onZoom, series, onRendered });
  latest.current = { win, onZoom, series, onRendered };

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const colors = Object.fromEntries(STACK.map((c) => [c, cssVar(`--cat-${c}`)]));
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--grid'), width: 1 }, ticks: { show: false } };
    const bars = uPlot.paths.bars!({ size: [1, Infinity], gap: 0, align: 1 });
    const opts: uPlot.Options = {
      width: el.clientWidth || 600,
      height: el.clientHeight || 110,
      padding: [6, 18, 0, 0],
      legend: { show: false },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: {
        x: { time: true, range: () => [latest.current.win.from / 1000, latest.current.win.to / 1000] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.05)] },
      },
      axes: [
        { ...axis, size: 22, values: (u, ticks) => ticks.map((t) => tickLabel(t, u.scales.x.max! - u.scales.x.min!)) },
        { ...axis, size: 44, values: (_u, ticks) => ticks.map(compact) },
      ],
      // Drawn top of the stack first, each bar from zero, so later ones paint over.
      series: [{}, ...[...STACK].reverse().map((c) => ({ label: c, fill: colors[c], stroke: colors[c], width: 0, paths: bars }))],
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const from = Math.round(u.posToVal(u.select.left, 'x') * 1000);
          const to = Math.round(u.posToVal(u.select.left + u.select.width, 'x') * 1000);
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          if (to - from >= 1000) latest.current.onZoom({ from, to });
        }],
        setCursor: [(u) => {
          const out = readout.current;
          const s = latest.current.series;
          const i = u.cursor.idx;
          if (!out) return;
          if (i === null || i === undefined || !s) { out.textContent = ''; return; }
          const parts = [...STACK].reverse().filter((c) => s.counts[c][i]).map((c) => `${c} ${s.counts[c][i].toLocaleString()}`);
          out.textContent = `${formatTime(s.x[i] * 1000, false)}  ${parts.join(' · ') || 'no events'}`;
        }],
      },
    };
    const u = new uPlot(opts, [[]], el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: el.clientHeight || 110 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [theme]);

  useEffect(() => {
    const u = plot.current;
    if (!u || !series) return;
    // Cumulative sums, top of the stack first (the order of the series).
    const stacked: number[][] = [];
    let acc = new Array<number>(series.x.length).fill(0);
    for (const c of STACK) {
      acc = acc.map((v, i) => v + series.counts[c][i]);
      stacked.unshift(acc);
    }
    u.setData([series.x, ...stacked] as uPlot.AlignedData);
    latest.current.onRendered?.();
  }, [series, theme]);

  return (
    <section className="histogram" data-testid="histogram" data-loading={loading} aria-label="Events over time">
      <div className="histogram-head">
        <ul className="legend" aria-label="Categories">
          {[...STACK].reverse().map((c) => <li key={c}><span className={`swatch cat-${c}`} />{c}</li>)}
        </ul>
        <div ref={readout} className="readout mono" aria-live="off" />
        <span className="muted total">
          {series ? `${series.total.toLocaleString()} events` : ''}
        </span>
      </div>
      {error && <p className="region-error" role="alert">{error}</p>}
      <div ref={box} className="histogram-plot" title="Drag across to zoom in; + and - zoom in and out"
        tabIndex={0} role="group" aria-label="Events over time: + zooms in, - zooms out" aria-keyshortcuts="+ -"
        data-testid="histogram-plot"
        onKeyDown={(e) => {
          if (e.ctrlKey || e.metaKey || e.altKey) return;
          const factor = e.key === '+' || e.key === '=' ? 0.5 : e.key === '-' || e.key === '_' ? 2 : 0;
          if (!factor) return;
          e.preventDefault();
          onZoom(zoomWindow(win, factor));
        }} />
    </section>
  );
}

/** A time tick in UTC, as precise as the span needs. */
function tickLabel(seconds: number, span: number): string {
  const t = formatTime(seconds * 1000, true); // 2026-11-27 10:55:02.968
  if (span <= 15 * 60) return t.slice(11, 19);
  if (span <= 2 * 86400) return t.slice(11, 16);
  return t.endsWith('00:00:00.000') ? t.slice(5, 10) : `${t.slice(5, 10)} ${t.slice(11, 16)}`;
}

function compact(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(v);
}
