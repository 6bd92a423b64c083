// Reading what the pipeline counted: the aggregates through core's queryUsage (the aggregator's read
// path) and the raw events table (ReplacingMergeTree: exact only with FINAL).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sqlIdentifier, sqlString, type ClickHouseClient, type MetricDefinition } from '@meterline/core';
import { ROOT } from './proc.ts';

type QueryUsage = (ch: ClickHouseClient, q: Record<string, unknown>) => Promise<unknown>;

let cached: QueryUsage | null | undefined;

/** core's queryUsage, once the aggregator work has landed it; null before. */
export async function loadQueryUsage(): Promise<QueryUsage | null> {
  if (cached !== undefined) return cached;
  const file = path.join(ROOT, 'packages/core/src/metering/usage.ts');
  if (!existsSync(file)) return (cached = null);
  const mod = (await import(pathToFileURL(file).href)) as { queryUsage?: QueryUsage };
  return (cached = mod.queryUsage ?? null);
}

/** Sums whatever shape queryUsage returns: a number, {value}, {total}, or rows with value/count. */
export function usageTotal(result: unknown): number {
  if (typeof result === 'number') return result;
  if (typeof result === 'string') return Number(result);
  if (Array.isArray(result)) return result.reduce((a: number, r) => a + usageTotal(r), 0);
  if (result && typeof result === 'object') {
    const o = result as Record<string, unknown>;
    for (const k of ['total', 'value', 'usage', 'count', 'quantity']) if (k in o) return usageTotal(o[k]);
    for (const k of ['rows', 'groups', 'data', 'buckets']) if (Array.isArray(o[k])) return usageTotal(o[k]);
  }
  return NaN;
}

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
  return { organizationId: q.organizationId, metricId: q.metricId, version: 1, eventName: q.eventName, aggregation: 'count', property: null, filters: [], groupBy: [] };
}

/** Total of a metric over the given customers, through queryUsage (one query, one row per customer). */
export async function aggregateTotal(ch: ClickHouseClient, q: UsageQuery): Promise<number> {
  const queryUsage = await loadQueryUsage();
  if (!queryUsage) throw new Error('queryUsage (packages/core/src/metering/usage.ts) does not exist yet');
  const rows = (await queryUsage(ch, { metric: metricDefinition(q), from: new Date(q.fromMs), to: new Date(q.toMs) })) as { customerId: string; value: number }[];
  const wanted = new Set(q.customers);
  let sum = 0;
  for (const r of rows) if (wanted.has(r.customerId)) sum += Number(r.value);
  return sum;
}

/** Exact raw count for an organization (and optional customers), deduplicated with FINAL. */
export async function rawCount(ch: ClickHouseClient, db: string, organizationId: string, customers?: readonly string[]): Promise<number> {
  const where = [`organization_id = ${sqlString(organizationId)}`];
  if (customers) where.push(`customer_id IN (${customers.map(sqlString).join(',')})`);
  const rs = await ch.query({ query: `SELECT count() AS c FROM ${sqlIdentifier(db)}.events FINAL WHERE ${where.join(' AND ')}`, format: 'JSONEachRow' });
  const rows = await rs.json<{ c: string | number }>();
  return Number(rows[0]?.c ?? 0);
}
