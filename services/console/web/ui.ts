// Small shared pieces: status badges, tables' empty/error rows, the entitlement bar, the usage chart.
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { errorText, qty } from './format.ts';

export function Badge({ status }: { status: string }) {
  return html`<span class=${`badge badge-${status}`} data-testid="status">${status}</span>`;
}

export function Problem({ error }: { error: unknown }) {
  return html`<div class="problem" role="alert">${errorText(error)}</div>`;
}

export function Loading() {
  return html`<div class="muted">Loading…</div>`;
}

/** Usage against a limit: a bar (a meter element, so it reads as a value to assistive tech too). */
export function UsageBar({ used, limit, unlimited }: { used: number | null; limit: number | null; unlimited: boolean }) {
  if (unlimited || limit === null) return html`<div class="bar-label" data-testid="usage-text">${qty(used ?? 0)} used · unlimited</div>`;
  const pct = limit > 0 ? Math.min(100, ((used ?? 0) / limit) * 100) : 100;
  const over = (used ?? 0) > limit;
  return html`<div class="bar-wrap">
    <meter class=${over ? 'over' : ''} min="0" max=${limit} value=${Math.min(used ?? 0, limit)} low=${limit * 0.8} high=${limit * 0.95} optimum="0"></meter>
    <div class="bar-label" data-testid="usage-text">${qty(used ?? 0)} / ${qty(limit)} (${pct.toFixed(pct < 10 ? 1 : 0)} %)</div>
  </div>`;
}

/** One series over time, drawn by uPlot (x: window start, seconds; y: value). */
export function UsageChart({ xs, ys, label }: { xs: number[]; ys: number[]; label: string }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const width = Math.max(320, el.current.clientWidth || 720);
    const plot = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: true } },
        axes: [{}, { size: 70 }],
        series: [{}, { label, stroke: '#2563eb', fill: 'rgba(37,99,235,0.15)', width: 2, paths: uPlot.paths.bars?.({ size: [0.8, 40] }) }],
        legend: { show: true },
      },
      [xs, ys],
      el.current,
    );
    return () => plot.destroy();
  }, [xs, ys, label]);
  return html`<div class="chart" ref=${el} data-testid="usage-chart"></div>`;
}
