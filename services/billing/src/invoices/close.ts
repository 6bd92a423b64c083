// Which subscriptions and periods are due: a subscription is due when its start, its current period's
// end or its end_date is <= now and it has not ended. The periods to close (and the state after them)
// are subscriptions/current.ts's elapsedPeriods — the same pure function reads use to show the current
// period, so reads and the scheduler never disagree.
import type { PgClient, PgPool } from '@meterline/core';

export { elapsedPeriods, type Elapsed, type PeriodClose } from '../subscriptions/current.ts';

export interface DueRef {
  organization_id: string;
  subscription_id: string;
}

/** Due subscriptions at `now` (of one organization, or all), a page at a time in (organization_id, subscription_id) order after `after`. */
export async function dueSubscriptions(
  db: PgPool | PgClient,
  now: Date,
  after: DueRef | null,
  limit = 200,
  organizationId: string | null = null,
): Promise<DueRef[]> {
  const { rows } = await db.query<DueRef>(
    `SELECT organization_id, subscription_id FROM subscriptions
      WHERE status <> 'ended' AND (current_period_end <= $1 OR end_date <= $1 OR (status = 'not_started' AND start_date <= $1))
        AND ($2::text IS NULL OR (organization_id, subscription_id) > ($2::text, $3::text))
        AND ($5::text IS NULL OR organization_id = $5)
      ORDER BY organization_id, subscription_id LIMIT $4`,
    [now, after?.organization_id ?? null, after?.subscription_id ?? null, limit, organizationId],
  );
  return rows;
}
