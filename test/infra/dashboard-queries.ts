// The Grafana dashboard's queries as the tests see them (dashboard.unit.test.ts, dashboard.int.test.ts):
// every target's PromQL, made concrete (Grafana's variables replaced the way Grafana would for "All"),
// and the metric and label names each one refers to, so they can be checked against what the
// services really export.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DASHBOARD_PATH = `${ROOT}infra/grafana/dashboards/meterline.json`;

export interface DashboardTarget {
  panelId: number;
  panelTitle: string;
  refId: string;
  expr: string;
  legendFormat?: string;
  instant?: boolean;
  datasource?: { type?: string; uid?: string };
}

// the dashboard is untyped JSON: dashboard.unit.test.ts checks its shape
export type Dashboard = Record<string, any>;

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8'));
}

/** Every panel below the rows (rows may nest panels when collapsed). */
export function dashboardPanels(d: Dashboard = loadDashboard()): Dashboard[] {
  const out: Dashboard[] = [];
  for (const p of d.panels ?? []) {
    out.push(p);
    for (const nested of p.panels ?? []) out.push(nested);
  }
  return out;
}

export function dashboardTargets(d: Dashboard = loadDashboard()): DashboardTarget[] {
  return dashboardPanels(d).flatMap((p) =>
    (p.targets ?? []).map((t: Dashboard) => ({
      panelId: p.id,
      panelTitle: p.title,
      refId: t.refId,
      expr: t.expr,
      legendFormat: t.legendFormat,
      instant: t.instant,
      datasource: t.datasource,
    })),
  );
}

/**
 * The expression Prometheus receives: `$job`/`$instance` at "All" (allValue `.*`), `$__rate_interval`
 * and `$__range` as given (Grafana computes them from the scrape interval and the time picker).
 */
export function concreteExpr(expr: string, opts: { rateInterval: string; range: string }): string {
  const out = expr
    .replaceAll('$__rate_interval', opts.rateInterval)
    .replaceAll('$__range', opts.range)
    .replaceAll('$job', '.*')
    .replaceAll('$instance', '.*');
  if (out.includes('$')) throw new Error(`unknown Grafana variable left in ${out}`);
  return out;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset']);

/** Metric names a PromQL expression selects (identifiers that are neither functions, keywords nor labels). */
export function metricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range selectors
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || KEYWORDS.has(name!) || /^\d/.test(name!)) continue;
    if (/^(?:inf|nan)$/i.test(name!)) continue;
    names.add(name!);
  }
  return names;
}

/** Label names an expression matches on or aggregates by. */
export function labelNames(expr: string): Set<string> {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const labels = new Set<string>();
  for (const [, body] of noStrings.matchAll(/\{([^}]*)\}/g)) {
    for (const [, l] of body!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(l!);
  }
  for (const [, list] of noStrings.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    for (const l of list!.split(',')) if (l.trim()) labels.add(l.trim());
  }
  return labels;
}

/** Legend `{{label}}` references. */
export function legendLabels(legend: string | undefined): Set<string> {
  return new Set([...(legend ?? '').matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1]!));
}

/**
 * Sample names in a Prometheus text exposition (`/metrics`): each `# TYPE` family and the series it
 * yields (histogram `_bucket`/`_sum`/`_count`, summary `_sum`/`_count`), with the label names seen.
 */
export function exposedNames(text: string): Map<string, Set<string>> {
  const names = new Map<string, Set<string>>();
  const add = (n: string) => {
    if (!names.has(n)) names.set(n, new Set());
    return names.get(n)!;
  };
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    add(name!);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) add(name! + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) add(name! + s);
  }
  for (const [, name, labels] of text.matchAll(/^([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}/gm)) {
    const set = add(name!);
    for (const [, l] of labels!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) set.add(l!);
  }
  return names;
}

/** The series selector of a `label_values(<selector>, <label>)` variable query. */
export function variableSelector(definition: string): string {
  const m = definition.match(/^label_values\((.*), *[A-Za-z_][A-Za-z0-9_]*\)$/);
  if (!m) throw new Error(`not a label_values() query: ${definition}`);
  return m[1]!;
}

/** Series Prometheus itself creates: `up` per target, `ALERTS` per pending/firing alert. */
export const PROMETHEUS_SERIES = new Map<string, Set<string>>([
  ['up', new Set()],
  ['ALERTS', new Set(['alertname', 'alertstate', 'severity', 'topic', 'partition', 'reason', 'service', 'instance'])],
]);
/** Labels every scraped series carries: the target's (job, instance) and the services' default label. */
export const TARGET_LABELS = new Set(['job', 'instance', 'service']);
