import type { PgPool } from '@meterline/core';

export interface FeatureRow {
  feature_id: string;
  name: string | null;
  type: 'boolean' | 'metered';
  metric_id: string | null;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
}
const COLS = 'feature_id, name, type, metric_id, created_at, updated_at, archived_at';

export function featureJson(r: FeatureRow) {
  return {
    ...r,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    archived_at: r.archived_at?.toISOString() ?? null,
  };
}

export async function insertFeature(
  pool: PgPool,
  orgId: string,
  f: { feature_id: string; name: string | null; type: string; metric_id: string | null },
) {
  const { rows } = await pool.query<FeatureRow>(
    `INSERT INTO features (organization_id, feature_id, name, type, metric_id) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (organization_id, feature_id) DO NOTHING RETURNING ${COLS}`,
    [orgId, f.feature_id, f.name, f.type, f.metric_id],
  );
  return rows[0] ?? null;
}

export async function getFeature(pool: PgPool, orgId: string, featureId: string, includeArchived = true) {
  const { rows } = await pool.query<FeatureRow>(
    `SELECT ${COLS} FROM features WHERE organization_id = $1 AND feature_id = $2 ${includeArchived ? '' : 'AND archived_at IS NULL'}`,
    [orgId, featureId],
  );
  return rows[0] ?? null;
}

export async function getFeatures(pool: PgPool, orgId: string, ids: string[]) {
  const { rows } = await pool.query<FeatureRow>(
    `SELECT ${COLS} FROM features WHERE organization_id = $1 AND feature_id = ANY($2::text[])`,
    [orgId, ids],
  );
  return rows;
}

export async function listFeatures(pool: PgPool, orgId: string, o: { limit: number; offset: number; include_archived: boolean }) {
  const { rows } = await pool.query<FeatureRow>(
    `SELECT ${COLS} FROM features WHERE organization_id = $1 AND ($2::boolean OR archived_at IS NULL) ORDER BY created_at, feature_id LIMIT $3 OFFSET $4`,
    [orgId, o.include_archived, o.limit + 1, o.offset],
  );
  return rows;
}

export async function updateFeatureName(pool: PgPool, orgId: string, featureId: string, name: string | null) {
  const { rows } = await pool.query<FeatureRow>(
    `UPDATE features SET name = $3, updated_at = now() WHERE organization_id = $1 AND feature_id = $2 AND archived_at IS NULL RETURNING ${COLS}`,
    [orgId, featureId, name],
  );
  return rows[0] ?? null;
}

export async function archiveFeature(pool: PgPool, orgId: string, featureId: string) {
  const { rows } = await pool.query<FeatureRow>(
    `UPDATE features SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE organization_id = $1 AND feature_id = $2 RETURNING ${COLS}`,
    [orgId, featureId],
  );
  return rows[0] ?? null;
}
