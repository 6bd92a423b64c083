// Promotional entitlements (Stigg grantPromotionalEntitlements / revokePromotionalEntitlement): a
// feature granted to one customer outside any plan, with a limit (or unlimited, or boolean access), until
// an expiry. How they combine with plans and add-ons is entitlements/grants.ts; the rules are in
// services/billing/README.md, "Promotional entitlements".
//   - expiry is enforced at read time: every snapshot and every check compares expires_at with its own
//     clock (deps.now()), and a cached snapshot is stale from the earliest expiry it holds, so the first
//     check at or after expires_at no longer grants — no job, no delay.
//   - grant and revoke write the row and the webhook event (entitlement.granted / entitlement.revoked)
//     in one transaction, then drop the customer's cached snapshot in every instance.
import { withTransaction } from '@meterline/core';
import type { GrantPromotionalEntitlementInput, PromotionalEntitlement } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { badRequest, notFound } from '../http/errors.ts';
import * as customers from '../customers/store.ts';
import * as featureStore from '../features/store.ts';
import { addInterval } from '../periods.ts';
import { enqueueWebhookEvent } from '../webhooks/outbox.ts';
import * as store from './store.ts';

export function promotionJson(p: store.PromotionRow, now: Date): PromotionalEntitlement {
  return {
    customer_id: p.customer_id,
    feature_id: p.feature_id,
    usage_limit: p.unlimited ? null : p.usage_limit,
    has_unlimited_usage: p.unlimited || p.usage_limit === null,
    reset_period: p.reset_period,
    period: p.period,
    granted_at: p.granted_at.toISOString(),
    expires_at: p.expires_at?.toISOString() ?? null,
    revoked_at: p.revoked_at?.toISOString() ?? null,
    status: p.revoked_at ? 'revoked' : store.inForce(p, now) ? 'active' : 'expired',
  };
}

/** The expiry of a promotion granted at `now` for `period` (null = lifetime). */
export function expiryOf(period: Exclude<store.PromotionPeriod, 'custom'>, now: Date): Date | null {
  switch (period) {
    case 'one_week':
      return addInterval(now, 'week', 1);
    case 'one_month':
      return addInterval(now, 'month', 1);
    case 'three_months':
      return addInterval(now, 'quarter', 1);
    case 'six_months':
      return addInterval(now, 'month', 6);
    case 'one_year':
      return addInterval(now, 'year', 1);
    case 'lifetime':
      return null;
  }
}

export async function grantPromotion(deps: Deps, orgId: string, customerId: string, input: GrantPromotionalEntitlementInput) {
  const now = deps.now();
  const customer = await customers.getCustomer(deps.pool, orgId, customerId);
  if (!customer) throw notFound('customer', customerId);
  const feature = await featureStore.getFeature(deps.pool, orgId, input.feature_id);
  if (!feature || feature.archived_at) throw notFound('feature', input.feature_id);
  if (feature.type === 'boolean') {
    if (input.usage_limit !== undefined || input.unlimited !== undefined || input.reset_period !== undefined)
      throw badRequest(`feature "${feature.feature_id}" is boolean: it takes no usage_limit, unlimited or reset_period`);
  } else if ((input.usage_limit !== undefined) === (input.unlimited === true))
    throw badRequest(`feature "${feature.feature_id}" is metered: pass usage_limit or unlimited: true (one of them)`);
  let period: store.PromotionPeriod;
  let expires: Date | null;
  if (input.expires_at !== undefined) {
    if (input.period !== undefined && input.period !== 'custom')
      throw badRequest('pass period or expires_at (or period: custom with expires_at)');
    period = 'custom';
    expires = new Date(input.expires_at);
    if (expires.getTime() <= now.getTime()) throw badRequest('expires_at must be in the future');
  } else {
    if (input.period === undefined) throw badRequest('pass period (one_week ... lifetime) or expires_at');
    if (input.period === 'custom') throw badRequest('period custom needs expires_at');
    period = input.period;
    expires = expiryOf(input.period, now);
  }
  const row = await withTransaction(deps.pool, async (db) => {
    const r = await store.upsertPromotion(db, orgId, {
      customer_id: customerId,
      feature_id: feature.feature_id,
      usage_limit: feature.type === 'metered' && !input.unlimited ? (input.usage_limit ?? null) : null,
      unlimited: feature.type === 'metered' && input.unlimited === true,
      reset_period: input.reset_period ?? 'never',
      period,
      granted_at: now,
      expires_at: expires,
    });
    await enqueueWebhookEvent(db, orgId, 'entitlement.granted', { source: 'promotional', ...promotionJson(r, now) });
    return r;
  });
  await deps.cache.invalidateCustomer(orgId, customerId);
  return promotionJson(row, now);
}

export async function listPromotions(deps: Deps, orgId: string, customerId: string, includeInactive: boolean) {
  const now = deps.now();
  const customer = await customers.getCustomer(deps.pool, orgId, customerId);
  if (!customer) throw notFound('customer', customerId);
  return (await store.customerPromotions(deps.pool, orgId, customerId))
    .filter((p) => includeInactive || store.inForce(p, now))
    .map((p) => promotionJson(p, now));
}

export async function revokePromotion(deps: Deps, orgId: string, customerId: string, featureId: string) {
  const now = deps.now();
  const row = await withTransaction(deps.pool, async (db) => {
    const r = await store.revokePromotion(db, orgId, customerId, featureId, now);
    if (!r) return null;
    await enqueueWebhookEvent(db, orgId, 'entitlement.revoked', { source: 'promotional', ...promotionJson(r, now) });
    return r;
  });
  if (!row) throw notFound('promotional entitlement', `${customerId}/${featureId}`);
  await deps.cache.invalidateCustomer(orgId, customerId);
  return promotionJson(row, now);
}
