// Usage alerts and exhaustion (issue #12 item 5). An alert is a threshold on a metered feature's usage
// in its usage window — a percent of the entitlement's limit, or an absolute quantity — for one
// customer, the customers subscribed to one plan, or every customer of the organization.
//   - Evaluated as usage is counted: right after a consuming check or a usage report for that customer
//     and feature (not delaying the answer), and by the billing worker every pass for every alert
//     (usage that arrives through the gateway); the usage is the entitlement's (ledger + ClickHouse).
//   - A crossing is reported once per (alert, customer, usage window): the crossing row's primary key
//     decides, and the `usage.threshold_reached` webhook event is written in the same transaction
//     (webhooks/outbox.ts), so concurrent evaluations report it exactly once.
//   - `entitlement.exhausted`: a hard limit reached (usage >= limit), the same way, once per window,
//     with alert_id `exhausted:<feature>`.
import { withTransaction } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import { Decimal } from '../money.ts';
import { newId } from '../orgs/store.ts';
import { entitlement } from '../entitlements/service.ts';
import * as features from '../features/store.ts';
import { enqueueWebhookEvent } from '../webhooks/outbox.ts';
import { TtlCache } from '../cache.ts';

interface AlertRow {
  alert_id: string;
  feature_id: string;
  customer_id: string | null;
  plan_id: string | null;
  threshold_percent: string | null;
  threshold_quantity: string | null;
  created_at: Date;
  archived_at: Date | null;
}
const COLS =
  'alert_id, feature_id, customer_id, plan_id, threshold_percent::text AS threshold_percent, threshold_quantity::text AS threshold_quantity, created_at, archived_at';

export function alertJson(a: AlertRow) {
  return {
    alert_id: a.alert_id,
    feature_id: a.feature_id,
    customer_id: a.customer_id,
    plan_id: a.plan_id,
    threshold_percent: a.threshold_percent === null ? null : new Decimal(a.threshold_percent).toFixed(),
    threshold_quantity: a.threshold_quantity === null ? null : new Decimal(a.threshold_quantity).toFixed(),
    created_at: a.created_at.toISOString(),
    archived_at: a.archived_at?.toISOString() ?? null,
  };
}

export async function createAlert(
  deps: Deps,
  orgId: string,
  input: {
    alert_id?: string;
    feature_id: string;
    customer_id?: string;
    plan_id?: string;
    threshold_percent?: string;
    threshold_quantity?: string;
  },
) {
  if ((input.threshold_percent === undefined) === (input.threshold_quantity === undefined))
    throw badRequest('pass exactly one of threshold_percent or threshold_quantity');
  if (input.customer_id && input.plan_id) throw badRequest('pass at most one of customer_id or plan_id');
  const f = await features.getFeature(deps.pool, orgId, input.feature_id);
  if (!f) throw notFound('feature', input.feature_id);
  if (f.type !== 'metered') throw badRequest(`feature "${input.feature_id}" is not metered`);
  for (const t of [input.threshold_percent, input.threshold_quantity])
    if (t !== undefined && !new Decimal(t).gt(0)) throw badRequest('a threshold must be greater than 0');
  const id = input.alert_id ?? newId('alert');
  const { rows } = await deps.pool.query<AlertRow>(
    `INSERT INTO usage_alerts (organization_id, alert_id, feature_id, customer_id, plan_id, threshold_percent, threshold_quantity)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING ${COLS}`,
    [
      orgId,
      id,
      input.feature_id,
      input.customer_id ?? null,
      input.plan_id ?? null,
      input.threshold_percent ?? null,
      input.threshold_quantity ?? null,
    ],
  );
  if (!rows[0]) throw conflict(`usage alert "${id}" already exists`);
  forgetAlertFeatures(orgId);
  return alertJson(rows[0]);
}

export async function listAlerts(deps: Deps, orgId: string, page: { limit: number; offset: number }) {
  const { rows } = await deps.pool.query<AlertRow>(
    `SELECT ${COLS} FROM usage_alerts WHERE organization_id = $1 AND archived_at IS NULL ORDER BY created_at, alert_id LIMIT $2 OFFSET $3`,
    [orgId, page.limit + 1, page.offset],
  );
  return rows.map(alertJson);
}

export async function archiveAlert(deps: Deps, orgId: string, alertId: string) {
  const { rows } = await deps.pool.query<AlertRow>(
    `UPDATE usage_alerts SET archived_at = coalesce(archived_at, now()) WHERE organization_id = $1 AND alert_id = $2 RETURNING ${COLS}`,
    [orgId, alertId],
  );
  if (!rows[0]) throw notFound('usage alert', alertId);
  forgetAlertFeatures(orgId);
  return alertJson(rows[0]);
}

export async function alertCrossings(deps: Deps, orgId: string, alertId: string) {
  const { rows } = await deps.pool.query<{
    customer_id: string;
    window_start: Date;
    usage: string;
    usage_limit: string | null;
    crossed_at: Date;
  }>(
    `SELECT customer_id, window_start, usage, usage_limit, crossed_at FROM usage_alert_crossings
      WHERE organization_id = $1 AND alert_id = $2 ORDER BY crossed_at, customer_id LIMIT 1000`,
    [orgId, alertId],
  );
  return rows.map((r) => ({ ...r, window_start: r.window_start.toISOString(), crossed_at: r.crossed_at.toISOString() }));
}

/** Records a crossing once per (alert, customer, window) and writes its webhook event with it. */
async function cross(
  deps: Deps,
  orgId: string,
  alertId: string,
  type: 'usage.threshold_reached' | 'entitlement.exhausted',
  customerId: string,
  windowStart: string,
  data: Record<string, unknown>,
): Promise<boolean> {
  return withTransaction(deps.pool, async (db) => {
    const r = await db.query(
      `INSERT INTO usage_alert_crossings (organization_id, alert_id, customer_id, window_start, usage, usage_limit)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [orgId, alertId, customerId, windowStart, String(data.usage), data.usage_limit === null ? null : String(data.usage_limit)],
    );
    if (!r.rowCount) return false;
    await enqueueWebhookEvent(db, orgId, type, data);
    return true;
  });
}

/**
 * Evaluates the alerts on `featureId` that apply to `customerId` (and its exhaustion): each threshold
 * the usage has reached is reported once per usage window. Returns how many crossings were new.
 */
export async function evaluateCustomer(deps: Deps, orgId: string, customerId: string, featureId: string): Promise<number> {
  const ent = await entitlement(deps, orgId, customerId, featureId, 0).catch(() => null);
  if (!ent || ent.current_usage === null || !ent.usage_period_start || !ent.subscription_id) return 0;
  const { rows: alerts } = await deps.pool.query<AlertRow & { plan_ok: boolean }>(
    `SELECT ${COLS}, (a.plan_id IS NULL OR EXISTS (SELECT 1 FROM subscriptions s WHERE s.organization_id = a.organization_id
              AND s.subscription_id = $4 AND s.plan_id = a.plan_id)) AS plan_ok
       FROM usage_alerts a WHERE organization_id = $1 AND feature_id = $2 AND archived_at IS NULL AND (customer_id IS NULL OR customer_id = $3)`,
    [orgId, featureId, customerId, ent.subscription_id],
  );
  const usage = new Decimal(ent.current_usage);
  const base = {
    customer_id: customerId,
    feature_id: featureId,
    usage: ent.current_usage,
    usage_limit: ent.usage_limit,
    usage_period_start: ent.usage_period_start,
    usage_period_end: ent.usage_period_end,
    subscription_id: ent.subscription_id,
  };
  let crossed = 0;
  for (const a of alerts) {
    if (!a.plan_ok) continue;
    const threshold =
      a.threshold_quantity !== null
        ? new Decimal(a.threshold_quantity)
        : ent.usage_limit === null
          ? null
          : new Decimal(ent.usage_limit).times(a.threshold_percent!).div(100);
    if (threshold === null || usage.lt(threshold)) continue;
    if (
      await cross(deps, orgId, a.alert_id, 'usage.threshold_reached', customerId, ent.usage_period_start, {
        ...base,
        alert_id: a.alert_id,
        threshold_percent: a.threshold_percent === null ? null : new Decimal(a.threshold_percent).toFixed(),
        threshold_quantity: a.threshold_quantity === null ? null : new Decimal(a.threshold_quantity).toFixed(),
        threshold: threshold.toFixed(),
      })
    )
      crossed++;
  }
  if (ent.limit_type === 'hard' && ent.usage_limit !== null && usage.gte(ent.usage_limit))
    if (await cross(deps, orgId, `exhausted:${featureId}`, 'entitlement.exhausted', customerId, ent.usage_period_start, base)) crossed++;
  return crossed;
}

/** The worker's pass: every live alert for every customer it applies to (usage that came through the gateway). */
export async function evaluateAll(deps: Deps, opts: { organizationId?: string; limit?: number } = {}): Promise<number> {
  const { rows } = await deps.pool.query<{ organization_id: string; customer_id: string; feature_id: string }>(
    `SELECT DISTINCT a.organization_id, s.customer_id, a.feature_id
       FROM usage_alerts a JOIN subscriptions s ON s.organization_id = a.organization_id AND s.status <> 'ended'
        AND (a.customer_id IS NULL OR s.customer_id = a.customer_id) AND (a.plan_id IS NULL OR s.plan_id = a.plan_id)
      WHERE a.archived_at IS NULL AND ($1::text IS NULL OR a.organization_id = $1)
      ORDER BY 1, 2, 3 LIMIT $2`,
    [opts.organizationId ?? null, opts.limit ?? 2_000],
  );
  let crossed = 0;
  for (const r of rows) crossed += await evaluateCustomer(deps, r.organization_id, r.customer_id, r.feature_id).catch(() => 0);
  return crossed;
}

// Which features of an organization have alerts, cached briefly (cache.ts's TtlCache: one load per key,
// bounded) so that the evaluation after a consuming check costs nothing for organizations without
// alerts (the worker's pass catches anything a stale entry misses, within one pass).
const alertFeatures = new TtlCache<Set<string>>(5_000, 10_000);
const alertFeaturesKey = (orgId: string) => `${orgId}\u0000`;

function featuresWithAlerts(deps: Deps, orgId: string): Promise<Set<string>> {
  return alertFeatures.get(alertFeaturesKey(orgId), async () => {
    const { rows } = await deps.pool.query<{ feature_id: string }>(
      'SELECT DISTINCT feature_id FROM usage_alerts WHERE organization_id = $1 AND archived_at IS NULL',
      [orgId],
    );
    return new Set(rows.map((r) => r.feature_id));
  });
}

export function forgetAlertFeatures(orgId: string): void {
  alertFeatures.deletePrefix(alertFeaturesKey(orgId));
}

/**
 * After usage was counted by a check or a report (not awaited by the caller): evaluates the customer's
 * alerts on the feature when the organization has any, and exhaustion when the hard limit was reached.
 */
export function afterUsage(deps: Deps, orgId: string, customerId: string, featureId: string, reachedLimit: boolean): void {
  (async () => {
    if (reachedLimit || (await featuresWithAlerts(deps, orgId)).has(featureId)) await evaluateCustomer(deps, orgId, customerId, featureId);
  })().catch((err) => deps.logger.warn({ err: (err as Error).message, customerId, featureId }, 'usage alert evaluation failed'));
}
