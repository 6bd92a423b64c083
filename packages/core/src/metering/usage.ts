// The usage-query library billing uses: totals of a metric from the aggregator's rollups
// (ClickHouse table metric_usage, services/aggregator/README.md). Reads with FINAL: of the rows of one
// key and offset window only the most complete (highest version) counts, so nothing is counted twice.
import { sqlNumber, sqlString, type ClickHouseClient } from '../clients/clickhouse.ts';
import type { MetricDefinition } from './definition.ts';
import { MINUTE_BUCKET, STATE_AGGREGATES, metricConditions, metricEventColumns } from './sql.ts';

export type UsageWindow = 'minute' | 'hour' | 'day' | 'month';
export interface UsageQuery {
  metric: MetricDefinition;
  customerId?: string;
  /**
   * Batched reads (billing's period close): only these customers, one row per customer as usual
   * (customer_id is always a grouping key). An empty list reads nothing. Combined with customerId: both apply.
   */
  customerIds?: readonly string[];
  /**
   * Only the usage of this entity of the customer(s) (events sent with this entity_id). Absent: every
   * event of the customer, with or without an entity (entity usage counts toward the customer).
   */
  entityId?: string;
  from: Date;
  to: Date;
  window?: UsageWindow | null;
  /**
   * IANA time zone the hour/day/month windows are aligned to (default UTC), e.g. 'America/New_York':
   * a day window starts at local midnight (its window_start is that instant in UTC). Validate it first
   * (isTimeZone); it reaches the SQL only through sqlString.
   */
  timeZone?: string;
  includeGroups?: boolean;
}
export interface UsageRow {
  customerId: string;
  windowStart: Date | null;
  groups: Record<string, string>;
  /** The value as a JS number (Number(exact)): for checks and displays that compare numbers. */
  value: number;
  /**
   * The exact value as decimal text ("0.3", "12"): sums and maxima from Decimal(38, 12) rollups
   * (at most 12 fractional digits), counts as integers, latest as the event's value. Always set by
   * queryUsage; optional only so that hand-made rows (test readers) may omit it (then String(value)).
   */
  exact?: string;
}

const WINDOW_SECONDS: Record<Exclude<UsageWindow, 'month'>, number> = { minute: 60, hour: 3600, day: 86400 };

/** Whether `tz` is an IANA time zone this runtime knows (ClickHouse's tzdata is assumed to agree). */
export function isTimeZone(tz: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz) || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The SQL of a row's window start (epoch seconds) from its minute bucket. UTC hour/day windows are an
 * integer division (fast, as before); a time zone or a month window uses ClickHouse's zone-aware
 * toStartOf* (minute buckets align with every zone: offsets are whole quarter hours).
 */
function windowStartSql(window: UsageWindow, timeZone: string | undefined): string {
  const utc = !timeZone || timeZone === 'UTC' || timeZone === 'Etc/UTC';
  if (window === 'minute' || (utc && window !== 'month'))
    return `intDiv(toUInt32(bucket), ${WINDOW_SECONDS[window]}) * ${WINDOW_SECONDS[window]}`;
  const tz = sqlString(utc ? 'UTC' : timeZone!);
  if (window === 'hour') return `toUInt32(toStartOfHour(bucket, ${tz}))`;
  if (window === 'day') return `toUInt32(toStartOfDay(bucket, ${tz}))`;
  return `toUInt32(toDateTime(toStartOfMonth(bucket, ${tz}), ${tz}))`;
}

/** Each aggregation's value as exact text: Decimal(38, 12) for sums and maxima, integers for counts. */
const VALUE_SQL = {
  count: 'toString(sum(event_count))',
  sum: 'toString(sum(sum_decimal))',
  max: 'toString(max(max_decimal))',
  unique_count: 'toString(uniqExactMerge(uniq_state))',
  latest: 'toString(argMaxMerge(latest_state))',
} as const;

/** ClickHouse's text of a Decimal / integer / Float64 as decimal text without trailing zeros. */
export function normalizeDecimalText(text: string): string {
  const t = text.trim();
  if (/[eE]/.test(t)) return t; // only a latest value (Float64) prints so; decimal.js reads it exactly
  if (!t.includes('.')) return t === '-0' ? '0' : t;
  const out = t.replace(/0+$/, '').replace(/\.$/, '');
  return out === '-0' || out === '' ? '0' : out;
}

const MINUTE_MS = 60_000;
const MAX_TIME_MS = Date.UTC(2100, 0, 1);

/** customer_id conditions of a query (a single customer and/or a list: `IN (...)`, every value through sqlString), and the entity's. */
function customerConditions(q: Pick<UsageQuery, 'customerId' | 'customerIds' | 'entityId'>): string[] {
  return [
    ...(q.customerId !== undefined ? [`customer_id = ${sqlString(q.customerId)}`] : []),
    ...(q.customerIds !== undefined ? [`customer_id IN (${[...new Set(q.customerIds)].map(sqlString).join(', ')})`] : []),
    ...(q.entityId !== undefined ? [`entity_id = ${sqlString(q.entityId)}`] : []),
  ];
}

/** The rollup rows of one metric version with bucket start in [fromMs, toMs) (minute-aligned), as SQL conditions. */
export function usageConditions(
  q: Pick<UsageQuery, 'metric' | 'customerId' | 'customerIds' | 'entityId'>,
  fromMs: number,
  toMs: number,
): string[] {
  const m = q.metric;
  return [
    `organization_id = ${sqlString(m.organizationId)}`,
    `metric_id = ${sqlString(m.metricId)}`,
    `metric_version = ${sqlNumber(m.version)}`,
    ...customerConditions(q),
    `toUInt32(bucket) >= ${sqlNumber(Math.max(0, fromMs / 1000))}`,
    `toUInt32(bucket) < ${sqlNumber(Math.max(0, toMs / 1000))}`,
  ];
}

/** State rows (like metric_usage's) computed from raw events with time_created_ms in any of the [from, to) ranges. */
function rawStateSelect(q: Pick<UsageQuery, 'metric' | 'customerId' | 'customerIds' | 'entityId'>, ranges: [number, number][]): string {
  const m = q.metric;
  const { num, dec, str, g1, g2 } = metricEventColumns(m);
  const inRange = ranges.map(
    ([
      a,
      b,
    ]) => `(time_created >= toDateTime(${sqlNumber(Math.floor(a / 1000))}) AND time_created <= toDateTime(${sqlNumber(Math.ceil(b / 1000))})
      AND time_created_ms >= ${sqlNumber(a)} AND time_created_ms < ${sqlNumber(b)})`,
  );
  const where = [
    `organization_id = ${sqlString(m.organizationId)}`,
    `event_name = ${sqlString(m.eventName)}`,
    ...customerConditions(q),
    `(${inRange.join(' OR ')})`,
  ];
  return `SELECT customer_id, ${MINUTE_BUCKET} AS bucket, g1 AS group_1, g2 AS group_2, ${STATE_AGGREGATES}
    FROM (SELECT customer_id, time_created, time_created_ms, kafka_partition, kafka_offset, ${num} AS num, ${dec} AS dec, ${str} AS str, ${g1} AS g1, ${g2} AS g2
          FROM (SELECT organization_id, event_name, customer_id, time_created, time_created_ms, kafka_topic, kafka_partition, kafka_offset,
                       prop_keys, prop_values, prop_number_values, prop_is_number, prop_decimal_values
                  FROM events WHERE ${where.join(' AND ')} LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset)
          WHERE ${metricConditions(m).join(' AND ')})
    GROUP BY customer_id, bucket, group_1, group_2`;
}

/**
 * Usage of q.metric (its exact version) over [from, to) by event time: one row per customer (and per
 * window start when q.window is set, and per group values when includeGroups), value = the metric's
 * aggregation over that row's range (unique counts and latest values are exact over the range, not
 * summed). Whole minutes come from the rollups (1-minute buckets); the partial first and last minute
 * of a range that is not minute-aligned are computed from the raw events (deduplicated), so the range
 * is exact to the millisecond. Rows without events are omitted.
 */
export async function queryUsage(ch: ClickHouseClient, q: UsageQuery): Promise<UsageRow[]> {
  const m = q.metric;
  const step = q.window ?? null;
  if (q.window && !['minute', 'hour', 'day', 'month'].includes(q.window)) throw new TypeError(`unknown usage window ${String(q.window)}`);
  if (q.timeZone !== undefined && !isTimeZone(q.timeZone)) throw new TypeError(`unknown time zone ${q.timeZone}`);
  if (!Number.isFinite(q.from.getTime()) || !Number.isFinite(q.to.getTime())) throw new TypeError('from and to must be valid dates');
  // DateTime covers 1970..2105: clamp so that open-ended ranges stay valid
  const fromMs = Math.max(0, q.from.getTime());
  const toMs = Math.min(MAX_TIME_MS, q.to.getTime());
  if (toMs <= fromMs || q.customerIds?.length === 0) return [];
  const groupCount = q.includeGroups ? Math.min(m.groupBy.length, 2) : 0;
  const keys = ['customer_id'];
  if (step) keys.push(`${windowStartSql(step, q.timeZone)} AS w`);
  for (let i = 1; i <= groupCount; i++) keys.push(`group_${i}`);
  const groupKeys = keys.map((k) => k.replace(/^.* AS /, ''));

  const fullFrom = Math.ceil(fromMs / MINUTE_MS) * MINUTE_MS;
  const fullTo = Math.floor(toMs / MINUTE_MS) * MINUTE_MS;
  const parts: string[] = [];
  if (fullFrom < fullTo) {
    parts.push(`SELECT customer_id, bucket, group_1, group_2, event_count, sum_value, max_value, uniq_state, latest_state, sum_decimal, max_decimal
      FROM metric_usage FINAL WHERE ${usageConditions(q, fullFrom, fullTo).join(' AND ')}`);
    const edges: [number, number][] = [];
    if (fromMs < fullFrom) edges.push([fromMs, fullFrom]);
    if (fullTo < toMs) edges.push([fullTo, toMs]);
    if (edges.length) parts.push(rawStateSelect(q, edges));
  } else {
    parts.push(rawStateSelect(q, [[fromMs, toMs]]));
  }
  const sql = `SELECT ${keys.join(', ')}, ${VALUE_SQL[m.aggregation]} AS exact
    FROM (${parts.join('\n UNION ALL \n')})
    GROUP BY ${groupKeys.join(', ')}
    ORDER BY ${groupKeys.join(', ')}`;
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  const rows = await rs.json<Record<string, string | number>>();
  return rows.map((r) => ({
    customerId: String(r.customer_id),
    windowStart: step ? new Date(Number(r.w) * 1000) : null,
    groups: Object.fromEntries(m.groupBy.slice(0, groupCount).map((g, i) => [g, String(r[`group_${i + 1}`])])),
    value: Number(r.exact),
    exact: normalizeDecimalText(String(r.exact)),
  }));
}

export type MetricVersionStatus = 'ready' | 'backfilling' | 'pending' | 'invalid';

/**
 * Whether the aggregates of a metric version are complete for events that arrived before it was
 * defined: 'ready' once its backfill finished, 'backfilling' while one runs, 'pending' before.
 * (Events arriving later are counted by the live path within seconds in any state.)
 */
export async function metricVersionStatus(
  ch: ClickHouseClient,
  metric: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>,
): Promise<MetricVersionStatus> {
  const rs = await ch.query({
    query: `SELECT max(status_rank) AS r FROM metric_backfills FINAL WHERE organization_id = ${sqlString(metric.organizationId)}
              AND metric_id = ${sqlString(metric.metricId)} AND metric_version = ${sqlNumber(metric.version)}`,
    format: 'JSONEachRow',
  });
  const r = Number((await rs.json<{ r: number | string }>())[0]?.r ?? 0);
  return r >= 3 ? 'invalid' : r === 2 ? 'ready' : r === 1 ? 'backfilling' : 'pending';
}
