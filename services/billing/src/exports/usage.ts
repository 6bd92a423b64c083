// GET /v1/usage as CSV (format=csv or Accept: text/csv): the same series the JSON answer pages through,
// whole (at most 10,000 windows per group: the JSON answer's bound), one row per window and group:
//   customer_id, metric_id, metric_version, aggregation, window, time_zone, window_start, group.<property>..., value
// window_start is empty without a window (one row per group over [from, to)); one group.<property> column
// per group_by property of the metric (with group_by=true); value is the exact decimal text of
// the rollups (Decimal(38, 12) sums and maxima, integer counts), never a float.
import { Decimal } from '../money.ts';
import { csvRow } from './csv.ts';

export interface SeriesForCsv {
  customer_id: string;
  metric_id: string;
  metric_version: number;
  aggregation: string;
  window: string | null;
  time_zone: string;
  from: string;
  to: string;
  data: { window_start: string | null; groups: Record<string, string>; value: number; exact?: string }[];
}

/** A decimal string without exponent ("1e+21" from a Float64 latest value becomes "1000000000000000000000"). */
const plain = (v: string | number) => {
  try {
    return new Decimal(String(v)).toFixed();
  } catch {
    return String(v);
  }
};

export function usageCsv(s: SeriesForCsv): string {
  const groupCols: string[] = [];
  for (const p of s.data) for (const k of Object.keys(p.groups)) if (!groupCols.includes(k)) groupCols.push(k);
  const out = [
    csvRow([
      'customer_id',
      'metric_id',
      'metric_version',
      'aggregation',
      'window',
      'time_zone',
      'window_start',
      ...groupCols.map((g) => `group.${g}`),
      'value',
    ]),
  ];
  for (const p of s.data)
    out.push(
      csvRow([
        s.customer_id,
        s.metric_id,
        s.metric_version,
        s.aggregation,
        s.window ?? '',
        s.time_zone,
        p.window_start ?? '',
        ...groupCols.map((g) => p.groups[g] ?? ''),
        plain(p.exact ?? p.value),
      ]),
    );
  return out.join('');
}

export const usageCsvFileName = (s: SeriesForCsv) =>
  `usage-${s.customer_id}-${s.metric_id}-${s.from.slice(0, 10)}-${s.to.slice(0, 10)}.csv`;
