// Loading billable metric definitions from Postgres (table billable_metrics, owned by the billing API).
// Shared by the aggregator (which builds rollups from them) and billing.
import { isSqlNumber } from '../clients/clickhouse.ts';
import type { PgPool } from '../clients/postgres.ts';
import { AGGREGATIONS, MAX_GROUP_BY, type Aggregation, type MetricDefinition, type MetricFilter } from './definition.ts';

export interface StoredMetricDefinition extends MetricDefinition {
  name: string | null;
  updatedAt: Date;
  archivedAt: Date | null;
}

export class InvalidMetricDefinition extends Error {}

const NUM_OPS = new Set(['eq', 'neq', 'gt', 'gte', 'lt', 'lte']);

/** Validates one filter as stored in billable_metrics.filters (jsonb). */
export function parseMetricFilter(raw: unknown): MetricFilter {
  const f = raw as Record<string, unknown>;
  if (!f || typeof f !== 'object' || typeof f.property !== 'string' || f.property === '')
    throw new InvalidMetricDefinition('filter needs a property');
  const op = f.operator;
  if (op === 'equals') {
    if (typeof f.value !== 'string') throw new InvalidMetricDefinition('equals needs a string value');
    return { property: f.property, operator: 'equals', value: f.value };
  }
  if (op === 'in' || op === 'not_in') {
    if (!Array.isArray(f.values) || !f.values.every((v) => typeof v === 'string'))
      throw new InvalidMetricDefinition(`${op} needs string values`);
    return { property: f.property, operator: op, values: f.values as string[] };
  }
  if (typeof op === 'string' && NUM_OPS.has(op)) {
    if (!isSqlNumber(f.value))
      throw new InvalidMetricDefinition(`${op} needs a finite number that is 0 or at least 2.2250738585072014e-308 in magnitude`);
    return { property: f.property, operator: op as 'eq', value: f.value };
  }
  throw new InvalidMetricDefinition(`unknown filter operator ${JSON.stringify(op)}`);
}

interface Row {
  organization_id: string;
  metric_id: string;
  version: number;
  name: string | null;
  event_name: string;
  aggregation: string;
  property: string | null;
  filters: unknown;
  group_by: unknown;
  updated_at: Date;
  archived_at: Date | null;
}

export function parseMetricRow(r: Row): StoredMetricDefinition {
  if (!(AGGREGATIONS as readonly string[]).includes(r.aggregation))
    throw new InvalidMetricDefinition(`unknown aggregation ${r.aggregation}`);
  const aggregation = r.aggregation as Aggregation;
  const property = r.property === null || r.property === '' ? null : r.property;
  if (aggregation !== 'count' && property === null) throw new InvalidMetricDefinition(`${aggregation} needs a property`);
  const filters = Array.isArray(r.filters) ? r.filters.map(parseMetricFilter) : [];
  const groupBy = Array.isArray(r.group_by) ? r.group_by : [];
  if (groupBy.length > MAX_GROUP_BY || !groupBy.every((g) => typeof g === 'string' && g !== ''))
    throw new InvalidMetricDefinition('group_by: up to two property names');
  return {
    organizationId: r.organization_id,
    metricId: r.metric_id,
    version: Number(r.version),
    eventName: r.event_name,
    aggregation,
    property: aggregation === 'count' ? null : property,
    filters,
    groupBy: groupBy as string[],
    name: r.name,
    updatedAt: r.updated_at,
    archivedAt: r.archived_at,
  };
}

/**
 * Metric definitions, optionally only those updated after `sinceUpdatedAt`. Archived metrics are left
 * out unless includeArchived (the aggregator needs them to stop computing). Invalid rows are skipped
 * and reported through onInvalid.
 */
export async function loadMetricDefinitions(
  pool: PgPool,
  sinceUpdatedAt?: Date | null,
  opts: {
    includeArchived?: boolean;
    organizationId?: string;
    onInvalid?: (row: { organizationId: string; metricId: string; version: number }, err: Error) => void;
  } = {},
): Promise<StoredMetricDefinition[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (sinceUpdatedAt) {
    params.push(sinceUpdatedAt);
    where.push(`updated_at > $${params.length}`);
  }
  if (opts.organizationId) {
    params.push(opts.organizationId);
    where.push(`organization_id = $${params.length}`);
  }
  if (!opts.includeArchived) where.push('archived_at IS NULL');
  const { rows } = await pool.query<Row>(
    `SELECT organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by, updated_at, archived_at
       FROM billable_metrics ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY updated_at`,
    params,
  );
  const out: StoredMetricDefinition[] = [];
  for (const r of rows) {
    try {
      out.push(parseMetricRow(r));
    } catch (err) {
      opts.onInvalid?.({ organizationId: r.organization_id, metricId: r.metric_id, version: Number(r.version) }, err as Error);
    }
  }
  return out;
}
