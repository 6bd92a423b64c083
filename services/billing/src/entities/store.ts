// Entities in Postgres (migration 0014): one row per (organization, customer, entity_id); deleted_at
// set = soft-deleted (its usage stays and still counts toward the customer).
import type { PgPool } from '@meterline/core';

export interface EntityRow {
  customer_id: string;
  entity_id: string;
  name: string | null;
  feature_id: string | null;
  created_at: Date;
  deleted_at: Date | null;
}

const COLS = 'customer_id, entity_id, name, feature_id, created_at, deleted_at';

export function entityJson(r: EntityRow) {
  return {
    customer_id: r.customer_id,
    entity_id: r.entity_id,
    name: r.name,
    feature_id: r.feature_id,
    created_at: r.created_at.toISOString(),
    deleted_at: r.deleted_at?.toISOString() ?? null,
  };
}

/**
 * Inserts the entity, or restores a soft-deleted one (name / feature_id from this call). An active
 * entity with the same id is returned unchanged with created = false (the caller decides 200 or 409).
 */
export async function upsertEntity(
  pool: PgPool,
  orgId: string,
  e: { customer_id: string; entity_id: string; name: string | null; feature_id: string | null },
): Promise<{ row: EntityRow; created: boolean }> {
  const ins = await pool.query<EntityRow>(
    `INSERT INTO entities (organization_id, customer_id, entity_id, name, feature_id) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (organization_id, customer_id, entity_id) DO UPDATE
       SET name = EXCLUDED.name, feature_id = EXCLUDED.feature_id, deleted_at = NULL, updated_at = now()
       WHERE entities.deleted_at IS NOT NULL
     RETURNING ${COLS}`,
    [orgId, e.customer_id, e.entity_id, e.name, e.feature_id],
  );
  if (ins.rows[0]) return { row: ins.rows[0], created: true };
  const row = await getEntity(pool, orgId, e.customer_id, e.entity_id, true);
  return { row: row!, created: false };
}

export async function getEntity(
  pool: PgPool,
  orgId: string,
  customerId: string,
  entityId: string,
  includeDeleted = false,
): Promise<EntityRow | null> {
  const r = await pool.query<EntityRow>(
    `SELECT ${COLS} FROM entities WHERE organization_id = $1 AND customer_id = $2 AND entity_id = $3 ${includeDeleted ? '' : 'AND deleted_at IS NULL'}`,
    [orgId, customerId, entityId],
  );
  return r.rows[0] ?? null;
}

export async function listEntities(
  pool: PgPool,
  orgId: string,
  customerId: string,
  q: { limit: number; offset: number; include_deleted?: boolean },
): Promise<EntityRow[]> {
  const r = await pool.query<EntityRow>(
    `SELECT ${COLS} FROM entities WHERE organization_id = $1 AND customer_id = $2 ${q.include_deleted ? '' : 'AND deleted_at IS NULL'}
     ORDER BY entity_id LIMIT $3 OFFSET $4`,
    [orgId, customerId, q.limit + 1, q.offset],
  );
  return r.rows;
}

/** The ids of a customer's active entities (the check path caches them: service.ts). */
export async function activeEntityIds(pool: PgPool, orgId: string, customerId: string): Promise<string[]> {
  const r = await pool.query<{ entity_id: string }>(
    'SELECT entity_id FROM entities WHERE organization_id = $1 AND customer_id = $2 AND deleted_at IS NULL ORDER BY entity_id',
    [orgId, customerId],
  );
  return r.rows.map((x) => x.entity_id);
}

/** Soft delete; returns the row, or null when there is no active entity with that id. */
export async function softDeleteEntity(pool: PgPool, orgId: string, customerId: string, entityId: string): Promise<EntityRow | null> {
  const r = await pool.query<EntityRow>(
    `UPDATE entities SET deleted_at = now(), updated_at = now()
      WHERE organization_id = $1 AND customer_id = $2 AND entity_id = $3 AND deleted_at IS NULL RETURNING ${COLS}`,
    [orgId, customerId, entityId],
  );
  return r.rows[0] ?? null;
}
