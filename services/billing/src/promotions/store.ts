// Promotional entitlements in Postgres (migration 0012_promotions_addons.sql). One row per (customer,
// feature); whether it is in force is decided by the reader at its own instant (inForce), never by a job.
import type { PgClient, PgPool } from '@meterline/core';

export type PromotionPeriod = 'one_week' | 'one_month' | 'three_months' | 'six_months' | 'one_year' | 'lifetime' | 'custom';
export type PromotionReset = 'day' | 'week' | 'month' | 'year' | 'never';

export interface PromotionRow {
  customer_id: string;
  feature_id: string;
  usage_limit: number | null;
  unlimited: boolean;
  reset_period: PromotionReset;
  period: PromotionPeriod;
  granted_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

const COLS =
  'customer_id, feature_id, usage_limit::float8 AS usage_limit, unlimited, reset_period, period, granted_at, expires_at, revoked_at';

type Db = PgPool | PgClient;

/** In force at `now`: not revoked and not yet expired (expires_at is exclusive: at that instant it no longer grants). */
export const inForce = (p: PromotionRow, now: Date) =>
  p.revoked_at === null && (p.expires_at === null || p.expires_at.getTime() > now.getTime());

/** Grants (or replaces) the customer's promotional entitlement to a feature. */
export async function upsertPromotion(db: Db, orgId: string, p: Omit<PromotionRow, 'revoked_at'>) {
  const { rows } = await db.query<PromotionRow>(
    `INSERT INTO promotional_entitlements (organization_id, customer_id, feature_id, usage_limit, unlimited, reset_period, period, granted_at, expires_at)
     VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8, $9)
     ON CONFLICT (organization_id, customer_id, feature_id) DO UPDATE SET usage_limit = excluded.usage_limit, unlimited = excluded.unlimited,
       reset_period = excluded.reset_period, period = excluded.period, granted_at = excluded.granted_at, expires_at = excluded.expires_at,
       revoked_at = NULL, updated_at = now()
     RETURNING ${COLS}`,
    [orgId, p.customer_id, p.feature_id, p.usage_limit, p.unlimited, p.reset_period, p.period, p.granted_at, p.expires_at],
  );
  return rows[0]!;
}

/** Every promotion of a customer (in force or not), by feature. */
export async function customerPromotions(db: Db, orgId: string, customerId: string) {
  const { rows } = await db.query<PromotionRow>(
    `SELECT ${COLS} FROM promotional_entitlements WHERE organization_id = $1 AND customer_id = $2 ORDER BY feature_id`,
    [orgId, customerId],
  );
  return rows;
}

/** Revokes one in-force (or expired, not yet revoked) promotion; null when there is none to revoke. */
export async function revokePromotion(db: Db, orgId: string, customerId: string, featureId: string, now: Date) {
  const { rows } = await db.query<PromotionRow>(
    `UPDATE promotional_entitlements SET revoked_at = $4, updated_at = now()
      WHERE organization_id = $1 AND customer_id = $2 AND feature_id = $3 AND revoked_at IS NULL RETURNING ${COLS}`,
    [orgId, customerId, featureId, now],
  );
  return rows[0] ?? null;
}
