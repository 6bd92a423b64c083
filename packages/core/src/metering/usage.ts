// The usage-query library billing uses: totals of a metric from the aggregator's rollups
// (ClickHouse table metric_usage, services/aggregator/README.md). Reads with FINAL: of the rows of one
// key and offset window only the most complete (highest version) counts, so nothing is counted twice.
import { sqlNumber, sqlString, type ClickHouseClient } from '../clients/clickhouse.ts';
import type { MetricDefinition } from './definition.ts';

export type UsageWindow = 'minute' | 'hour' | 'day';
export interface UsageQuery { metric: MetricDefinition; customerId?: string; from: Date; to: Date; window?: UsageWindow | null; includeGroups?: boolean }
export interface UsageRow { customerId: string; windowStart: Date | null; groups: Record<string, string>; value: number }

const WINDOW_SECONDS: Record<UsageWindow, number> = { minute: 60, hour: 3600, day: 86400 };

const VALUE_SQL = {
  count: 'toFloat64(sum(event_count))',
  sum: 'sum(sum_value)',
  max: 'max(max_value)',
  unique_count: 'toFloat64(uniqExactMerge(uniq_state))',
  latest: 'argMaxMerge(latest_state)',
} as const;

/** The rollup rows of one metric version in [from, to) (by minute bucket start), as SQL conditions. */
export function usageConditions(q: Pick<UsageQuery, 'metric' | 'customerId' | 'from' | 'to'>): string[] {
  const m = q.metric;
  const fromS = Math.ceil(q.from.getTime() / 1000);
  const toS = Math.ceil(q.to.getTime() / 1000);
  return [
    `organization_id = ${sqlString(m.organizationId)}`,
    `metric_id = ${sqlString(m.metricId)}`,
    `metric_version = ${sqlNumber(m.version)}`,
    ...(q.customerId !== undefined ? [`customer_id = ${sqlString(q.customerId)}`] : []),
    `toUInt32(bucket) >= ${sqlNumber(Math.max(0, fromS))}`,
    `toUInt32(bucket) < ${sqlNumber(Math.max(0, toS))}`,
  ];
}

/**
 * Usage of q.metric (its exact version) over [from, to): one row per customer (and per window start
 * when q.window is set, and per group values when includeGroups), value = the metric's aggregation
 * over that row's range (unique counts and latest values are exact over the range, not summed).
 * Rollups have 1-minute buckets: an event belongs to the minute of its time_created, and a bucket is
 * in the range when its start is in [from, to). Rows without events are omitted.
 */
export async function queryUsage(ch: ClickHouseClient, q: UsageQuery): Promise<UsageRow[]> {
  const m = q.metric;
  const step = q.window ? WINDOW_SECONDS[q.window] : null;
  if (q.window && !step) throw new TypeError(`unknown usage window ${String(q.window)}`);
  const groupCount = q.includeGroups ? Math.min(m.groupBy.length, 2) : 0;
  const keys = ['customer_id'];
  if (step) keys.push(`intDiv(toUInt32(bucket), ${step}) * ${step} AS w`);
  for (let i = 1; i <= groupCount; i++) keys.push(`group_${i}`);
  const groupKeys = keys.map((k) => k.replace(/^.* AS /, ''));
  const sql = `SELECT ${keys.join(', ')}, ${VALUE_SQL[m.aggregation]} AS value
    FROM metric_usage FINAL
    WHERE ${usageConditions(q).join(' AND ')}
    GROUP BY ${groupKeys.join(', ')}
    ORDER BY ${groupKeys.join(', ')}`;
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  const rows = await rs.json<Record<string, string | number>>();
  return rows.map((r) => ({
    customerId: String(r.customer_id),
    windowStart: step ? new Date(Number(r.w) * 1000) : null,
    groups: Object.fromEntries(m.groupBy.slice(0, groupCount).map((g, i) => [g, String(r[`group_${i + 1}`])])),
    value: Number(r.value),
  }));
}

export type MetricVersionStatus = 'ready' | 'backfilling' | 'pending';

/**
 * Whether the aggregates of a metric version are complete for events that arrived before it was
 * defined: 'ready' once its backfill finished, 'backfilling' while one runs, 'pending' before.
 * (Events arriving later are counted by the live path within seconds in any state.)
 */
export async function metricVersionStatus(ch: ClickHouseClient, metric: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>): Promise<MetricVersionStatus> {
  const rs = await ch.query({
    query: `SELECT max(status_rank) AS r FROM metric_backfills FINAL WHERE organization_id = ${sqlString(metric.organizationId)}
              AND metric_id = ${sqlString(metric.metricId)} AND metric_version = ${sqlNumber(metric.version)}`,
    format: 'JSONEachRow',
  });
  const r = Number((await rs.json<{ r: number | string }>())[0]?.r ?? 0);
  return r >= 2 ? 'ready' : r === 1 ? 'backfilling' : 'pending';
}

/** True when metricVersionStatus is 'ready'. */
export async function metricVersionReady(ch: ClickHouseClient, metric: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>): Promise<boolean> {
  return (await metricVersionStatus(ch, metric)) === 'ready';
}
