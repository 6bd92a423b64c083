// Reading usage. Billing codes against the aggregator's contract (core's queryUsage); until that
// lands, or when it is absent, a direct reader over the raw ClickHouse `events` table implements
// the same contract (deduplicated by idempotency id), so the rest of billing does not care which.
import * as core from '@meterline/core';
import { sqlNumber, sqlString, sqlStringArray, type ClickHouseClient, type MetricDefinition, type MetricFilter } from '@meterline/core';

export type UsageWindow = 'minute' | 'hour' | 'day';
export interface UsageQuery { metric: MetricDefinition; customerId?: string; from: Date; to: Date; window?: UsageWindow | null; includeGroups?: boolean }
export interface UsageRow { customerId: string; windowStart: Date | null; groups: Record<string, string>; value: number }

export interface UsageReader {
  query(q: UsageQuery): Promise<UsageRow[]>;
  /** Which implementation answers: 'aggregator' (core's queryUsage) or 'raw_events'. */
  readonly source: string;
}

type QueryUsageFn = (ch: ClickHouseClient, q: UsageQuery) => Promise<UsageRow[]>;

export function clickHouseUsageReader(ch: ClickHouseClient): UsageReader {
  const fromCore = (core as Record<string, unknown>)['queryUsage'] as QueryUsageFn | undefined;
  const impl: QueryUsageFn = typeof fromCore === 'function' ? fromCore : rawEventsUsage;
  return { source: typeof fromCore === 'function' ? 'aggregator' : 'raw_events', query: (q) => impl(ch, q) };
}

const prop = (p: string) => `visitParamExtractString(properties, ${sqlString(p)})`;
const num = (p: string) => `visitParamExtractFloat(properties, ${sqlString(p)})`;

function filterSql(f: MetricFilter): string {
  switch (f.operator) {
    case 'equals': return `${prop(f.property)} = ${sqlString(f.value)}`;
    case 'in': return `${prop(f.property)} IN (${f.values.map(sqlString).join(',')})`;
    case 'not_in': return `${prop(f.property)} NOT IN (${f.values.map(sqlString).join(',')})`;
    default: {
      const op = { eq: '=', neq: '!=', gt: '>', gte: '>=', lt: '<', lte: '<=' }[f.operator];
      return `${num(f.property)} ${op} ${sqlNumber(f.value)}`;
    }
  }
}

/** The contract over raw events: dedups by idempotency id (LIMIT 1 BY), aggregates per metric. */
export async function rawEventsUsage(ch: ClickHouseClient, q: UsageQuery): Promise<UsageRow[]> {
  const m = q.metric;
  const p = m.property ?? '';
  const agg = {
    count: 'count()',
    sum: `sum(${num(p)})`,
    max: `max(${num(p)})`,
    unique_count: `uniqExact(visitParamExtractRaw(properties, ${sqlString(p)}))`,
    latest: `argMax(${num(p)}, time_created_ms)`,
  }[m.aggregation];
  const where = [
    `organization_id = ${sqlString(m.organizationId)}`,
    `event_name = ${sqlString(m.eventName)}`,
    `time_created_ms >= ${sqlNumber(q.from.getTime())}`,
    `time_created_ms < ${sqlNumber(q.to.getTime())}`,
    `time_created >= toDateTime(${sqlNumber(Math.floor(q.from.getTime() / 1000))})`,
    ...(q.customerId !== undefined ? [`customer_id = ${sqlString(q.customerId)}`] : []),
    ...m.filters.map(filterSql),
  ];
  const step = q.window ? { minute: 60, hour: 3600, day: 86400 }[q.window] : null;
  const groups = q.includeGroups ? m.groupBy : [];
  const keys = ['customer_id', ...(step ? [`intDiv(toUInt32(time_created), ${step}) * ${step} AS w`] : []), ...groups.map((g, i) => `${prop(g)} AS g${i}`)];
  const groupKeys = ['customer_id', ...(step ? ['w'] : []), ...groups.map((_, i) => `g${i}`)];
  const sql = `SELECT ${keys.join(', ')}, toFloat64(${agg}) AS value FROM (
      SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY idempotency_id, ingested_at LIMIT 1 BY idempotency_id
    ) GROUP BY ${groupKeys.join(', ')} ORDER BY ${groupKeys.join(', ')}`;
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  const rows = await rs.json<Record<string, string | number>>();
  void sqlStringArray;
  return rows.map((r) => ({
    customerId: String(r.customer_id),
    windowStart: step ? new Date(Number(r.w) * 1000) : null,
    groups: Object.fromEntries(groups.map((g, i) => [g, String(r[`g${i}`])])),
    value: Number(r.value),
  }));
}
