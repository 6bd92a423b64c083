// Reading what the pipeline counted: the aggregates through core's queryUsage (the aggregator's read
// path) and the raw events table (ReplacingMergeTree: exact only with FINAL).
import { queryUsage, sqlIdentifier, sqlString, type ClickHouseClient, type MetricDefinition } from '@meterline/core';

export interface UsageQuery {
  organizationId: string;
  metricId: string;
  /** The metric's event (the bench's metrics are `count` over one event name, version 1). */
  eventName: string;
  customers: readonly string[];
  fromMs: number;
  toMs: number;
}

export function metricDefinition(q: Pick<UsageQuery, 'organizationId' | 'metricId' | 'eventName'>): MetricDefinition {
  return {
    organizationId: q.organizationId,
    metricId: q.metricId,
    version: 1,
    eventName: q.eventName,
    aggregation: 'count',
    property: null,
    filters: [],
    groupBy: [],
  };
}

/** Total of a metric over the given customers, through queryUsage (one query, one row per customer). */
export async function aggregateTotal(ch: ClickHouseClient, q: UsageQuery): Promise<number> {
  const rows = await queryUsage(ch, { metric: metricDefinition(q), from: new Date(q.fromMs), to: new Date(q.toMs) });
  const wanted = new Set(q.customers);
  let sum = 0;
  for (const r of rows) if (wanted.has(r.customerId)) sum += Number(r.value);
  return sum;
}

/** Exact raw count for an organization (and optional customers), deduplicated with FINAL. */
export async function rawCount(ch: ClickHouseClient, db: string, organizationId: string, customers?: readonly string[]): Promise<number> {
  const where = [`organization_id = ${sqlString(organizationId)}`];
  if (customers) where.push(`customer_id IN (${customers.map(sqlString).join(',')})`);
  const rs = await ch.query({
    query: `SELECT count() AS c FROM ${sqlIdentifier(db)}.events FINAL WHERE ${where.join(' AND ')}`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ c: string | number }>();
  return Number(rows[0]?.c ?? 0);
}
