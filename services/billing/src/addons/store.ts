// Add-ons attached to subscriptions (migration 0012_promotions_addons.sql): segments of constant
// quantity [started_at, ended_at); the open segment (ended_at NULL) is the add-on's current quantity.
import type { PgClient, PgPool } from '@meterline/core';

export interface AddOnSegment {
  segment_id: string;
  subscription_id: string;
  add_on_id: string;
  plan_version: number;
  quantity: number;
  started_at: Date;
  ended_at: Date | null;
}
const COLS = 'segment_id, subscription_id, add_on_id, plan_version, quantity, started_at, ended_at';
type Db = PgPool | PgClient;

/** The open segments of some subscriptions (what entitlements read). */
export async function openSegments(db: Db, orgId: string, subscriptionIds: string[]) {
  if (subscriptionIds.length === 0) return [];
  const { rows } = await db.query<AddOnSegment>(
    `SELECT ${COLS} FROM subscription_add_ons WHERE organization_id = $1 AND subscription_id = ANY($2::text[]) AND ended_at IS NULL
      ORDER BY subscription_id, add_on_id`,
    [orgId, subscriptionIds],
  );
  return rows;
}

/** Segments of a subscription that overlap [from, to) (what invoices price), oldest first. */
export async function segmentsOverlapping(db: Db, orgId: string, subscriptionId: string, from: Date, to: Date) {
  const { rows } = await db.query<AddOnSegment>(
    `SELECT ${COLS} FROM subscription_add_ons WHERE organization_id = $1 AND subscription_id = $2
        AND started_at <= $4 AND (ended_at IS NULL OR ended_at > $3) ORDER BY started_at, add_on_id, segment_id`,
    [orgId, subscriptionId, from, to],
  );
  return rows;
}

export async function openSegment(db: Db, orgId: string, subscriptionId: string, addOnId: string) {
  const { rows } = await db.query<AddOnSegment>(
    `SELECT ${COLS} FROM subscription_add_ons WHERE organization_id = $1 AND subscription_id = $2 AND add_on_id = $3 AND ended_at IS NULL`,
    [orgId, subscriptionId, addOnId],
  );
  return rows[0] ?? null;
}

export async function insertSegment(db: Db, orgId: string, s: AddOnSegment) {
  const { rows } = await db.query<AddOnSegment>(
    `INSERT INTO subscription_add_ons (organization_id, segment_id, subscription_id, add_on_id, plan_version, quantity, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLS}`,
    [orgId, s.segment_id, s.subscription_id, s.add_on_id, s.plan_version, s.quantity, s.started_at],
  );
  return rows[0]!;
}

/** Ends a segment at `at`; a segment that had not started by `at` is deleted (it never took effect). */
export async function endSegment(db: Db, orgId: string, segmentId: string, at: Date) {
  await db.query('DELETE FROM subscription_add_ons WHERE organization_id = $1 AND segment_id = $2 AND started_at >= $3', [
    orgId,
    segmentId,
    at,
  ]);
  const { rows } = await db.query<AddOnSegment>(
    `UPDATE subscription_add_ons SET ended_at = $3 WHERE organization_id = $1 AND segment_id = $2 AND ended_at IS NULL RETURNING ${COLS}`,
    [orgId, segmentId, at],
  );
  return rows[0] ?? null;
}
