import type { PgClient, PgPool } from '@meterline/core';
import type { BillingInterval } from '../periods.ts';

export interface SubscriptionRow {
  subscription_id: string;
  customer_id: string;
  plan_id: string;
  plan_version: number;
  status: 'not_started' | 'active' | 'ended';
  start_date: Date;
  end_date: Date | null;
  auto_renew: boolean;
  current_period_start: Date;
  current_period_end: Date;
  plan_started_at: Date;
  trial_end: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  replaced_by: string | null;
  created_at: Date;
  updated_at: Date;
  /** The billing interval of the row's plan version (read along, so periods are computable without another query). */
  interval: BillingInterval;
}
const COLS = `subscription_id, customer_id, plan_id, plan_version, status, start_date, end_date, auto_renew, current_period_start, current_period_end,
  plan_started_at, trial_end, ended_at, end_reason, replaced_by, created_at, updated_at,
  (SELECT pv.billing_interval FROM plan_versions pv WHERE pv.organization_id = subscriptions.organization_id AND pv.plan_id = subscriptions.plan_id
     AND pv.version = subscriptions.plan_version) AS interval`;

/**
 * The status a row has at $now once its elapsed periods are closed (SQL twin of currentPeriod() in
 * current.ts, used to filter lists without writing): not_started until start_date; ended once end_date
 * passed, or the current period ended without auto-renew.
 */
export const effectiveStatusSql = (now: string) => `(CASE WHEN status = 'ended' THEN 'ended'
  WHEN status = 'not_started' AND start_date > ${now} THEN 'not_started'
  WHEN end_date <= ${now} OR (NOT auto_renew AND current_period_end <= ${now}) THEN 'ended'
  ELSE 'active' END)`;

type Db = PgPool | PgClient;

export async function insertSubscription(
  db: Db,
  orgId: string,
  s: Omit<SubscriptionRow, 'created_at' | 'updated_at' | 'ended_at' | 'end_reason' | 'replaced_by' | 'interval'>,
) {
  const { rows } = await db.query<SubscriptionRow>(
    `INSERT INTO subscriptions (organization_id, subscription_id, customer_id, plan_id, plan_version, status, start_date, end_date, auto_renew,
       current_period_start, current_period_end, plan_started_at, trial_end)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (organization_id, subscription_id) DO NOTHING RETURNING ${COLS}`,
    [
      orgId,
      s.subscription_id,
      s.customer_id,
      s.plan_id,
      s.plan_version,
      s.status,
      s.start_date,
      s.end_date,
      s.auto_renew,
      s.current_period_start,
      s.current_period_end,
      s.plan_started_at,
      s.trial_end,
    ],
  );
  return rows[0] ?? null;
}

/** lock: 'update' waits for the row lock; 'skip' returns null when another transaction holds it. */
export async function getSubscription(db: Db, orgId: string, id: string, lock: boolean | 'update' | 'skip' = false) {
  const clause = lock === 'skip' ? 'FOR UPDATE SKIP LOCKED' : lock ? 'FOR UPDATE' : '';
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT ${COLS} FROM subscriptions WHERE organization_id = $1 AND subscription_id = $2 ${clause}`,
    [orgId, id],
  );
  return rows[0] ?? null;
}

/**
 * With `now`, the status filter is on the status at `now` (effectiveStatusSql), so a list answers the
 * same as the detail of each row before the scheduler has closed its elapsed periods.
 */
export async function listSubscriptions(
  db: Db,
  orgId: string,
  o: { customer_id?: string; status?: string; plan_id?: string; limit: number; offset: number; now?: Date },
) {
  const status = o.now ? effectiveStatusSql('$7::timestamptz') : 'status';
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT ${COLS} FROM subscriptions WHERE organization_id = $1 AND ($2::text IS NULL OR customer_id = $2) AND ($3::text IS NULL OR ${status} = $3)
       AND ($4::text IS NULL OR plan_id = $4) ORDER BY created_at, subscription_id LIMIT $5 OFFSET $6`,
    [orgId, o.customer_id ?? null, o.status ?? null, o.plan_id ?? null, o.limit + 1, o.offset, ...(o.now ? [o.now] : [])],
  );
  return rows;
}

/** Live subscriptions of a customer (not ended). */
export async function liveSubscriptions(db: Db, orgId: string, customerId: string) {
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT ${COLS} FROM subscriptions WHERE organization_id = $1 AND customer_id = $2 AND status <> 'ended' ORDER BY created_at`,
    [orgId, customerId],
  );
  return rows;
}

export async function saveSubscription(db: Db, orgId: string, s: SubscriptionRow) {
  const { rows } = await db.query<SubscriptionRow>(
    `UPDATE subscriptions SET plan_id = $3, plan_version = $4, status = $5, end_date = $6, auto_renew = $7, current_period_start = $8, current_period_end = $9,
       plan_started_at = $10, trial_end = $11, ended_at = $12, end_reason = $13, replaced_by = $14, updated_at = now()
     WHERE organization_id = $1 AND subscription_id = $2 RETURNING ${COLS}`,
    [
      orgId,
      s.subscription_id,
      s.plan_id,
      s.plan_version,
      s.status,
      s.end_date,
      s.auto_renew,
      s.current_period_start,
      s.current_period_end,
      s.plan_started_at,
      s.trial_end,
      s.ended_at,
      s.end_reason,
      s.replaced_by,
    ],
  );
  return rows[0]!;
}
