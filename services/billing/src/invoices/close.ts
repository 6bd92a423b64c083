// Which subscriptions and periods are due: a subscription is due when its start, its current period's
// end or its end_date is <= now and it has not ended. The periods to close (and the state after them)
// are subscriptions/current.ts's elapsedPeriods — the same pure function reads use to show the current
// period, so reads and the scheduler never disagree.
//
// A subscription whose close failed (migration 0006_close_failures.sql) is set aside: its error is
// recorded and it is not due again until close_retry_at (backoff 1 min, 2 min, ... up to 1 h after each
// failure, on the run's clock), so it never takes a slot of every run; a successful close clears it.
import type { PgClient, PgPool } from '@meterline/core';
import type { SubscriptionRow } from '../subscriptions/store.ts';

export { elapsedPeriods, type Elapsed, type PeriodClose } from '../subscriptions/current.ts';

export interface DueRef {
  organization_id: string;
  subscription_id: string;
}

/** A due subscription as read (without a lock) for planning a batch; the close re-reads it under its lock. */
export type DueRow = DueRef & SubscriptionRow & { close_attempts: number };

const DUE_COLS = `s.organization_id, s.subscription_id, s.customer_id, s.plan_id, s.plan_version, s.status, s.start_date, s.end_date, s.auto_renew,
  s.current_period_start, s.current_period_end, s.plan_started_at, s.trial_end, s.ended_at, s.end_reason, s.replaced_by, s.created_at, s.updated_at,
  pv.billing_interval AS interval, s.close_attempts`;

/**
 * Due subscriptions at `now` (of one organization, or all), a page at a time in (organization_id,
 * subscription_id) order after `after`; set-aside ones whose retry time has not come are left out.
 */
export async function dueSubscriptions(
  db: PgPool | PgClient,
  now: Date,
  after: DueRef | null,
  limit = 200,
  organizationId: string | null = null,
): Promise<DueRow[]> {
  const { rows } = await db.query<DueRow>(
    `SELECT ${DUE_COLS} FROM subscriptions s
       JOIN plan_versions pv ON pv.organization_id = s.organization_id AND pv.plan_id = s.plan_id AND pv.version = s.plan_version
      WHERE s.status <> 'ended' AND (s.current_period_end <= $1 OR s.end_date <= $1 OR (s.status = 'not_started' AND s.start_date <= $1))
        AND (s.close_retry_at IS NULL OR s.close_retry_at <= $1)
        AND ($2::text IS NULL OR (s.organization_id, s.subscription_id) > ($2::text, $3::text))
        AND ($5::text IS NULL OR s.organization_id = $5)
      ORDER BY s.organization_id, s.subscription_id LIMIT $4`,
    [now, after?.organization_id ?? null, after?.subscription_id ?? null, limit, organizationId],
  );
  return rows;
}

export const CLOSE_RETRY_MIN_MS = 60_000;
export const CLOSE_RETRY_MAX_MS = 3_600_000;

/** Backoff after the n-th consecutive failure (n >= 1): 1 min, 2 min, 4 min, ... at most 1 h. */
export const closeRetryDelayMs = (attempts: number) =>
  Math.min(CLOSE_RETRY_MAX_MS, CLOSE_RETRY_MIN_MS * 2 ** Math.min(30, Math.max(0, attempts - 1)));

/** Records a failed close (outside the rolled-back close transaction) and sets the subscription aside. */
export async function recordCloseFailure(db: PgPool | PgClient, orgId: string, subscriptionId: string, now: Date, error: string) {
  const { rows } = await db.query<{ close_attempts: number; close_retry_at: Date }>(
    `UPDATE subscriptions SET close_error = $3, close_failed_at = $4, close_attempts = close_attempts + 1,
            close_retry_at = $4::timestamptz + make_interval(secs => least($6::float8, $5::float8 * power(2, least(30, close_attempts))) / 1000)
      WHERE organization_id = $1 AND subscription_id = $2 RETURNING close_attempts, close_retry_at`,
    [orgId, subscriptionId, error.slice(0, 2000), now, CLOSE_RETRY_MIN_MS, CLOSE_RETRY_MAX_MS],
  );
  return rows[0] ?? null;
}

/** Clears a recorded failure (in the transaction of a close that succeeded). */
export async function clearCloseFailure(db: PgClient, orgId: string, subscriptionId: string) {
  await db.query(
    `UPDATE subscriptions SET close_error = NULL, close_failed_at = NULL, close_attempts = 0, close_retry_at = NULL
      WHERE organization_id = $1 AND subscription_id = $2 AND close_attempts > 0`,
    [orgId, subscriptionId],
  );
}

export interface CloseFailure {
  subscription_id: string;
  customer_id: string;
  close_error: string;
  close_failed_at: Date;
  close_attempts: number;
  close_retry_at: Date;
}

/** An organization's set-aside subscriptions (or one of them), by subscription id. */
export async function listCloseFailures(db: PgPool | PgClient, orgId: string, subscriptionId: string | null = null, limit = 100) {
  const { rows } = await db.query<CloseFailure>(
    `SELECT subscription_id, customer_id, close_error, close_failed_at, close_attempts, close_retry_at FROM subscriptions
      WHERE organization_id = $1 AND close_error IS NOT NULL AND ($2::text IS NULL OR subscription_id = $2)
      ORDER BY subscription_id LIMIT $3`,
    [orgId, subscriptionId, limit],
  );
  return rows;
}

/** Subscriptions set aside now (all organizations): the gauge meterline_billing_subscriptions_close_failing. */
export async function countCloseFailures(db: PgPool | PgClient): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM subscriptions WHERE close_error IS NOT NULL');
  return Number(rows[0]?.n ?? 0);
}
