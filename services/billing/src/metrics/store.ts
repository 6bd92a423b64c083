import type { MetricDefinition, PgClient, PgPool } from '@meterline/core';

export interface MetricRow {
  metric_id: string;
  version: number;
  name: string | null;
  event_name: string;
  aggregation: MetricDefinition['aggregation'];
  property: string | null;
  filters: MetricDefinition['filters'];
  group_by: string[];
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
}
const COLS = 'metric_id, version, name, event_name, aggregation, property, filters, group_by, created_at, updated_at, archived_at';

export function metricJson(r: MetricRow) {
  return {
    ...r,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    archived_at: r.archived_at?.toISOString() ?? null,
  };
}

export function toDefinition(orgId: string, r: MetricRow): MetricDefinition {
  return {
    organizationId: orgId,
    metricId: r.metric_id,
    version: r.version,
    eventName: r.event_name,
    aggregation: r.aggregation,
    property: r.property,
    filters: r.filters,
    groupBy: r.group_by,
  };
}

export type MetricInput = Pick<MetricRow, 'metric_id' | 'name' | 'event_name' | 'aggregation' | 'property' | 'filters' | 'group_by'>;

/** Live (not archived) metric definitions of an organization. */
export async function countLiveMetrics(db: PgPool | PgClient, orgId: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM billable_metrics WHERE organization_id = $1 AND archived_at IS NULL',
    [orgId],
  );
  return Number(rows[0]!.n);
}

export async function insertMetric(pool: PgPool | PgClient, orgId: string, m: MetricInput) {
  const { rows } = await pool.query<MetricRow>(
    `INSERT INTO billable_metrics (organization_id, metric_id, name, event_name, aggregation, property, filters, group_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (organization_id, metric_id) DO NOTHING RETURNING ${COLS}`,
    [orgId, m.metric_id, m.name, m.event_name, m.aggregation, m.property, JSON.stringify(m.filters), JSON.stringify(m.group_by)],
  );
  return rows[0] ?? null;
}

export async function getMetric(pool: PgPool | PgClient, orgId: string, metricId: string, includeArchived = true) {
  const { rows } = await pool.query<MetricRow>(
    `SELECT ${COLS} FROM billable_metrics WHERE organization_id = $1 AND metric_id = $2 ${includeArchived ? '' : 'AND archived_at IS NULL'}`,
    [orgId, metricId],
  );
  return rows[0] ?? null;
}

export async function listMetrics(pool: PgPool, orgId: string, o: { limit: number; offset: number; include_archived: boolean }) {
  const { rows } = await pool.query<MetricRow>(
    `SELECT ${COLS} FROM billable_metrics WHERE organization_id = $1 AND ($2::boolean OR archived_at IS NULL) ORDER BY created_at, metric_id LIMIT $3 OFFSET $4`,
    [orgId, o.include_archived, o.limit + 1, o.offset],
  );
  return rows;
}

/** Writes a new definition; bumps version when the definition (not just the name) changed. */
export async function updateMetric(pool: PgPool, orgId: string, metricId: string, m: MetricInput, definitionChanged: boolean) {
  const { rows } = await pool.query<MetricRow>(
    `UPDATE billable_metrics SET name = $3, event_name = $4, aggregation = $5, property = $6, filters = $7, group_by = $8,
       version = version + CASE WHEN $9::boolean THEN 1 ELSE 0 END, updated_at = clock_timestamp()
     WHERE organization_id = $1 AND metric_id = $2 AND archived_at IS NULL RETURNING ${COLS}`,
    [
      orgId,
      metricId,
      m.name,
      m.event_name,
      m.aggregation,
      m.property,
      JSON.stringify(m.filters),
      JSON.stringify(m.group_by),
      definitionChanged,
    ],
  );
  return rows[0] ?? null;
}

export async function archiveMetric(pool: PgPool, orgId: string, metricId: string) {
  const { rows } = await pool.query<MetricRow>(
    `UPDATE billable_metrics SET archived_at = coalesce(archived_at, now()), updated_at = clock_timestamp() WHERE organization_id = $1 AND metric_id = $2 RETURNING ${COLS}`,
    [orgId, metricId],
  );
  return rows[0] ?? null;
}

// ---- version history (migration 0011_metric_versions.sql: a trigger on billable_metrics writes it in
// the same transaction as every create and update) --------------------------------------------------

export interface MetricVersionRow {
  metric_id: string;
  version: number;
  name: string | null;
  event_name: string;
  aggregation: MetricDefinition['aggregation'];
  property: string | null;
  filters: MetricDefinition['filters'];
  group_by: string[];
  valid_from: Date;
  superseded_at: Date | null;
  created_at: Date;
}
const VERSION_COLS =
  'metric_id, version, name, event_name, aggregation, property, filters, group_by, valid_from, superseded_at, created_at';

export function metricVersionJson(r: MetricVersionRow) {
  return {
    ...r,
    valid_from: r.valid_from.toISOString(),
    superseded_at: r.superseded_at?.toISOString() ?? null,
    created_at: r.created_at.toISOString(),
  };
}

/** A metric's versions, oldest first (limit + 1 rows: pageOf tells has_more). */
export async function listMetricVersions(pool: PgPool, orgId: string, metricId: string, o: { limit: number; offset: number }) {
  const { rows } = await pool.query<MetricVersionRow>(
    `SELECT ${VERSION_COLS} FROM billable_metric_versions WHERE organization_id = $1 AND metric_id = $2 ORDER BY version LIMIT $3 OFFSET $4`,
    [orgId, metricId, o.limit + 1, o.offset],
  );
  return rows;
}
