import type { PgClient, PgPool } from '@meterline/core';

export interface SubscriptionRow {
  subscription_id: string; customer_id: string; plan_id: string; plan_version: number; status: 'not_started' | 'active' | 'ended';
  start_date: Date; end_date: Date | null; auto_renew: boolean; current_period_start: Date; current_period_end: Date; plan_started_at: Date;
  trial_end: Date | null; ended_at: Date | null; end_reason: string | null; replaced_by: string | null; created_at: Date; updated_at: Date;
}
const COLS = `subscription_id, customer_id, plan_id, plan_version, status, start_date, end_date, auto_renew, current_period_start, current_period_end,
  plan_started_at, trial_end, ended_at, end_reason, replaced_by, created_at, updated_at`;

type Db = PgPool | PgClient;

export async function insertSubscription(db: Db, orgId: string, s: Omit<SubscriptionRow, 'created_at' | 'updated_at' | 'ended_at' | 'end_reason' | 'replaced_by'>) {
  const { rows } = await db.query<SubscriptionRow>(
    `INSERT INTO subscriptions (organization_id, subscription_id, customer_id, plan_id, plan_version, status, start_date, end_date, auto_renew,
       current_period_start, current_period_end, plan_started_at, trial_end)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (organization_id, subscription_id) DO NOTHING RETURNING ${COLS}`,
    [orgId, s.subscription_id, s.customer_id, s.plan_id, s.plan_version, s.status, s.start_date, s.end_date, s.auto_renew, s.current_period_start, s.current_period_end, s.plan_started_at, s.trial_end],
  );
  return rows[0] ?? null;
}

export async function getSubscription(db: Db, orgId: string, id: string, forUpdate = false) {
  const { rows } = await db.query<SubscriptionRow>(`SELECT ${COLS} FROM subscriptions WHERE organization_id = $1 AND subscription_id = $2 ${forUpdate ? 'FOR UPDATE' : ''}`, [orgId, id]);
  return rows[0] ?? null;
}

export async function listSubscriptions(db: Db, orgId: string, o: { customer_id?: string; status?: string; plan_id?: string; limit: number; offset: number }) {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT ${COLS} FROM subscriptions WHERE organization_id = $1 AND ($2::text IS NULL OR customer_id = $2) AND ($3::text IS NULL OR status = $3)
       AND ($4::text IS NULL OR plan_id = $4) ORDER BY created_at, subscription_id LIMIT $5 OFFSET $6`,
    [orgId, o.customer_id ?? null, o.status ?? null, o.plan_id ?? null, o.limit + 1, o.offset],
  );
  return rows;
}

/** Live subscriptions of a customer (not ended). */
export async function liveSubscriptions(db: Db, orgId: string, customerId: string) {
  const { rows } = await db.query<SubscriptionRow>(`SELECT ${COLS} FROM subscriptions WHERE organization_id = $1 AND customer_id = $2 AND status <> 'ended' ORDER BY created_at`, [orgId, customerId]);
  return rows;
}

export async function saveSubscription(db: Db, orgId: string, s: SubscriptionRow) {
  const { rows } = await db.query<SubscriptionRow>(
    `UPDATE subscriptions SET plan_id = $3, plan_version = $4, status = $5, end_date = $6, auto_renew = $7, current_period_start = $8, current_period_end = $9,
       plan_started_at = $10, trial_end = $11, ended_at = $12, end_reason = $13, replaced_by = $14, updated_at = now()
     WHERE organization_id = $1 AND subscription_id = $2 RETURNING ${COLS}`,
    [orgId, s.subscription_id, s.plan_id, s.plan_version, s.status, s.end_date, s.auto_renew, s.current_period_start, s.current_period_end, s.plan_started_at, s.trial_end, s.ended_at, s.end_reason, s.replaced_by],
  );
  return rows[0]!;
}

/** Subscriptions whose period, end date or start has passed (the renewal loop's work list). */
export async function dueSubscriptions(pool: PgPool, now: Date, limit = 200) {
  const { rows } = await pool.query<{ organization_id: string; subscription_id: string }>(
    `SELECT organization_id, subscription_id FROM subscriptions
      WHERE status <> 'ended' AND (current_period_end <= $1 OR end_date <= $1 OR (status = 'not_started' AND start_date <= $1))
      ORDER BY current_period_end LIMIT $2`,
    [now, limit],
  );
  return rows;
}
