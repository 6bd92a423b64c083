// docs/migrating-from-stigg.md, walked with @meterline/sdk through the real services (gateway → Kafka →
// aggregator → ClickHouse, billing on Postgres), in the Python SDK page's order: provision_customer,
// update_customer, get_customer_by_id, get_active_subscriptions_list, get_subscription,
// provision_subscription, update_subscription, cancel_subscription, get_entitlement, get_entitlements,
// report_usage (delta, SET), report_event, get_coupons, grant_promotional_entitlements,
// revoke_promotional_entitlements, estimate_subscription, estimate_subscription_update. Every call is the
// guide's mapping. Stigg's GraphQL inputs are camelCase; the SDK's bodies are snake_case (billing also
// reads camelCase keys and upper-case enums, shown once below).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Meterline } from '@meterline/sdk';
import { uniqueId } from '../support/fixtures.ts';
import { waitFor } from '../support/wait.ts';
import { rejection, startMigrationStack, type MigrationStack } from './migrate-support.ts';

let stack: MigrationStack;
let sdk: Meterline;
const demo = uniqueId('customer-demo');
const paid = uniqueId('customer-paid');
let basicSub = '';
let paidSub = '';

/** Half-even rounding of a non-negative a/b to an integer (billing's proration rounding). */
function divRoundHalfEven(a: bigint, b: bigint): bigint {
  const q = a / b;
  const r = a % b;
  if (r * 2n > b) return q + 1n;
  if (r * 2n < b) return q;
  return q % 2n === 0n ? q : q + 1n;
}

// Stigg's catalog (features, plans, add-ons, coupons) is made in its console; in Meterline it is API calls.
beforeAll(async () => {
  stack = await startMigrationStack('mig_stigg');
  sdk = stack.sdk;
  await sdk.metrics.create({ metric_id: 'templates', event_name: 'templates', aggregation: 'latest', property: 'count' }); // Fluctuating
  await sdk.metrics.create({ metric_id: 'campaigns', event_name: 'campaign', aggregation: 'sum', property: 'count' }); // Incremental
  await sdk.metrics.create({ metric_id: 'logins', event_name: 'user_login', aggregation: 'unique_count', property: 'user_id' }); // raw events
  await sdk.features.create({ feature_id: 'feature-01-templates', name: 'Templates', type: 'metered', metric_id: 'templates' });
  await sdk.features.create({ feature_id: 'feature-02-campaigns', name: 'Campaigns', type: 'metered', metric_id: 'campaigns' });
  await sdk.features.create({ feature_id: 'feature-05-mau', name: 'Monthly active users', type: 'metered', metric_id: 'logins' });
  await sdk.features.create({ feature_id: 'feature-04-analytics', name: 'Analytics', type: 'boolean' });
  await sdk.plans.create({
    plan_id: 'plan-revvenu-basic',
    name: 'Basic',
    interval: 'month',
    flat_fee: '0',
    entitlements: [
      { feature_id: 'feature-01-templates', limit: 3, limit_type: 'hard', reset_period: 'never' },
      { feature_id: 'feature-02-campaigns', limit: 4, limit_type: 'hard', reset_period: 'month' },
      { feature_id: 'feature-05-mau', limit: 100, limit_type: 'soft' },
    ],
  });
  await sdk.plans.create({
    plan_id: 'plan-revvenu-essentials',
    name: 'Essentials',
    interval: 'month',
    flat_fee: '20.00',
    flat_fee_timing: 'in_advance',
    entitlements: [
      { feature_id: 'feature-01-templates', limit: 10, limit_type: 'hard', reset_period: 'never' },
      { feature_id: 'feature-02-campaigns', limit: 12, limit_type: 'hard', reset_period: 'month' },
      { feature_id: 'feature-04-analytics' },
    ],
  });
  await sdk.plans.create({
    plan_id: 'addon-10-campaigns',
    name: '10 campaigns',
    interval: 'month',
    plan_type: 'add_on',
    flat_fee: '5.00',
    flat_fee_timing: 'in_arrears',
    entitlements: [{ feature_id: 'feature-02-campaigns', limit: 10, limit_type: 'hard', reset_period: 'month' }],
  });
  await sdk.coupons.create({ coupon_id: 'coupon-vip', name: 'VIP', percent_off: '20', duration: 'forever' });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe('Stigg Python SDK, in page order', () => {
  it('provision_customer(subscriptionParams, couponRefId) → customers.create + coupons.redeem + subscriptions.create', async () => {
    const c = await sdk.customers.create({ customer_id: demo, name: 'Acme', email: 'test@example.com', metadata: { key: 'value' } });
    expect(c).toMatchObject({ customer_id: demo, name: 'Acme', metadata: { key: 'value' } });
    const red = await sdk.coupons.redeem(demo, 'coupon-vip');
    expect(red).toMatchObject({ coupon_id: 'coupon-vip', customer_id: demo });
    const sub = await sdk.subscriptions.create({ customer_id: demo, plan_id: 'plan-revvenu-basic' });
    basicSub = sub.subscription_id;
    expect(sub).toMatchObject({ status: 'active', plan_id: 'plan-revvenu-basic' });
  });

  it('update_customer → customers.update (only the fields sent change)', async () => {
    const u = await sdk.customers.update(demo, { email: 'test2@example.com' });
    expect(u).toMatchObject({ email: 'test2@example.com', name: 'Acme', metadata: { key: 'value' } });
  });

  it('get_customer_by_id → customers.get', async () => {
    const d = await sdk.customers.get(demo);
    expect(d).toMatchObject({ customer_id: demo, email: 'test2@example.com' });
    expect(d.subscriptions.map((s) => s.subscription_id)).toEqual([basicSub]);
  });

  it('get_active_subscriptions_list → subscriptions.list({customer_id, status: "active"}) (+ listAddOns)', async () => {
    const l = await sdk.subscriptions.list({ customer_id: demo, status: 'active' });
    expect(l.data.map((s) => [s.subscription_id, s.plan_id])).toEqual([[basicSub, 'plan-revvenu-basic']]);
    expect((await sdk.subscriptions.listAddOns(basicSub)).data).toEqual([]);
  });

  it('get_subscription → subscriptions.get: the plan with its entitlements, the current period', async () => {
    const s = await sdk.subscriptions.get(basicSub);
    expect(s).toMatchObject({ subscription_id: basicSub, status: 'active' });
    const ents = (s.plan as { entitlements: { feature_id: string; limit: number }[] }).entitlements;
    expect(ents.map((e) => [e.feature_id, e.limit])).toEqual([
      ['feature-01-templates', 3],
      ['feature-02-campaigns', 4],
      ['feature-05-mau', 100],
    ]);
    expect(Date.parse(s.current_period_end)).toBeGreaterThan(Date.now());
  });

  it('provision_subscription(addons, couponId) → checkout.attach + subscriptions.attachAddOn: campaigns 12 + 2 × 10', async () => {
    await sdk.customers.create({ customer_id: paid, name: 'Paid Inc.' });
    const r = await sdk.checkout.attach({ customer_id: paid, plan_id: 'plan-revvenu-essentials' });
    expect(r.status).toBe('subscribed');
    paidSub = r.subscription!.subscription_id;
    const start = (await sdk.invoices.list({ subscription_id: paidSub })).data.find((i) => i.reason === 'subscription_start');
    expect(start?.total).toBe('20.00');
    // get_subscription's latest_invoice / payment_collection → invoices.list + payments.list
    const pay = await sdk.payments.list(start!.invoice_id);
    expect(pay).toMatchObject({ invoice_id: start!.invoice_id, total: '20.00', payment_status: 'unpaid', amount_paid: '0.00' });
    await sdk.coupons.redeem(paid, 'coupon-vip', paidSub);
    const a = await sdk.subscriptions.attachAddOn(paidSub, { plan_id: 'addon-10-campaigns', quantity: 2 });
    expect(a.quantity).toBe(2);
    const e = await sdk.entitlements.get(paid, 'feature-02-campaigns');
    expect(e.usage_limit).toBe(32);
    expect(e.grants?.map((g) => g.source).sort()).toEqual(['add_on', 'plan']);
  });

  it('update_subscription(addons quantity) → subscriptions.updateAddOn: 12 + 3 × 10 = 42', async () => {
    const a = await sdk.subscriptions.updateAddOn(paidSub, 'addon-10-campaigns', 3);
    expect(a.quantity).toBe(3);
    expect((await sdk.entitlements.get(paid, 'feature-02-campaigns')).usage_limit).toBe(42);
    expect((await sdk.subscriptions.listAddOns(paidSub)).data.find((x) => x.ended_at === null)?.quantity).toBe(3);
  });

  it('cancel_subscription(IMMEDIATE) → subscriptions.cancel({type: end_current_subscription_and_bill}): ended, access gone', async () => {
    const s = await sdk.subscriptions.cancel(paidSub, { type: 'end_current_subscription_and_bill' });
    expect(s.status).toBe('ended');
    const e = await sdk.entitlements.get(paid, 'feature-02-campaigns');
    expect(e).toMatchObject({ is_granted: false, access_denied_reason: 'no_active_subscription' });
    // (END_OF_BILLING_PERIOD → subscriptions.cancel() with no options: auto_renew off, runs to the period end)
  });

  it('get_entitlement(requestedUsage) → entitlements.get(customer, feature, {requested_usage})', async () => {
    const no = await sdk.entitlements.get(demo, 'feature-01-templates', { requested_usage: 10 });
    expect(no).toMatchObject({
      is_granted: false,
      access_denied_reason: 'requested_usage_exceeds_limit',
      usage_limit: 3,
      current_usage: 0,
      requested_usage: 10,
    });
    const yes = await sdk.entitlements.get(demo, 'feature-01-templates', { requested_usage: 2 });
    expect(yes).toMatchObject({ is_granted: true, has_unlimited_usage: false, reset_period: 'never' });
  });

  it('get_entitlements → entitlements.list', async () => {
    const l = await sdk.entitlements.list(demo);
    expect(l.data.map((e) => [e.feature_id, e.usage_limit]).sort()).toEqual([
      ['feature-01-templates', 3],
      ['feature-02-campaigns', 4],
      ['feature-05-mau', 100],
    ]);
    const campaigns = l.data.find((e) => e.feature_id === 'feature-02-campaigns')!;
    expect(campaigns.reset_period).toBe('month');
    expect(campaigns.usage_period_start).not.toBeNull();
  });

  it('report_usage (delta) → usage.report; report_usage(updateBehavior SET) → usage.set; a hard limit refuses nothing reported', async () => {
    const d = await sdk.usage.report({ customer_id: demo, feature_id: 'feature-02-campaigns', value: 3 });
    expect(d).toMatchObject({ update_behavior: 'delta', previous_usage: 0, current_usage: 3, usage_limit: 4, over_limit: false });
    const s = await sdk.usage.set({ customer_id: demo, feature_id: 'feature-01-templates', value: 2 });
    expect(s).toMatchObject({ update_behavior: 'set', current_usage: 2 });
    // Stigg's own spelling (camelCase keys, "SET") is read the same way
    const raw = await sdk.request<{ current_usage: number; update_behavior: string }>('POST', '/v1/usage', {
      customerId: demo,
      featureId: 'feature-01-templates',
      value: 3,
      updateBehavior: 'SET',
    });
    expect(raw).toMatchObject({ update_behavior: 'set', current_usage: 3 });
    // the limit is reached: a check for one more template is denied
    expect((await sdk.entitlements.check({ customer_id: demo, feature_id: 'feature-01-templates' })).allowed).toBe(false);
    await waitFor(
      () => sdk.entitlements.get(demo, 'feature-02-campaigns'),
      (e) => e.current_usage === 3,
      { what: 'campaigns 3 after aggregation', timeoutMs: 60_000 },
    );
  });

  it('report_event(usageEvents) → sdk.trackBatch: dimensions → properties, idempotencyKey → idempotency_key, timestamp', async () => {
    const key = uniqueId('227c1b73');
    const r = await sdk.trackBatch([
      {
        event_name: 'user_login',
        customer_id: demo,
        idempotency_key: key,
        properties: { user_id: 'user-01', user_email: 'a@example.com' },
        timestamp: new Date(),
      },
      {
        event_name: 'user_login',
        customer_id: demo,
        idempotency_key: key,
        properties: { user_id: 'user-01', user_email: 'a@example.com' },
      },
      { event_name: 'user_login', customer_id: demo, properties: { user_id: 'user-01' } },
      { event_name: 'user_login', customer_id: demo, properties: { user_id: 'user-02' } },
    ]);
    expect(r.results.map((x) => x.status)).toEqual(['accepted', 'duplicate', 'accepted', 'accepted']);
    const mau = await waitFor(
      () => sdk.entitlements.get(demo, 'feature-05-mau'),
      (e) => e.current_usage === 2,
      { what: '2 distinct users', timeoutMs: 60_000 },
    );
    expect(mau).toMatchObject({ usage_limit: 100, limit_type: 'soft', is_granted: true });
  });

  it('get_coupons → coupons.list', async () => {
    const l = await sdk.coupons.list();
    expect(l.data.find((c) => c.coupon_id === 'coupon-vip')).toMatchObject({
      name: 'VIP',
      percent_off: '20',
      duration: 'forever',
      times_redeemed: 2,
    });
  });

  it('grant_promotional_entitlements → promotions.grant (one call per feature): ONE_MONTH boolean, CUSTOM end date with usage_limit', async () => {
    const before = await sdk.entitlements.get(demo, 'feature-04-analytics');
    expect(before.is_granted).toBe(false);
    const g1 = await sdk.promotions.grant(demo, { feature_id: 'feature-04-analytics', period: 'one_month' });
    expect(g1).toMatchObject({ feature_id: 'feature-04-analytics', period: 'one_month', status: 'active' });
    const end = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const g2 = await sdk.promotions.grant(demo, {
      feature_id: 'feature-01-templates',
      period: 'custom',
      expires_at: end,
      usage_limit: 100,
    });
    expect(g2).toMatchObject({ usage_limit: 100, status: 'active' });
    expect(Date.parse(g2.expires_at!)).toBe(Date.parse(end));
    const analytics = await sdk.entitlements.get(demo, 'feature-04-analytics');
    expect(analytics).toMatchObject({ is_granted: true, source: 'promotional' });
    // the most generous grant wins: 100 templates instead of the plan's 3, so one more is allowed again
    const templates = await sdk.entitlements.get(demo, 'feature-01-templates');
    expect(templates).toMatchObject({ usage_limit: 100, source: 'promotional', is_granted: true });
  });

  it('revoke_promotional_entitlements → promotions.revoke', async () => {
    const r = await sdk.promotions.revoke(demo, 'feature-04-analytics');
    expect(r.status).toBe('revoked');
    expect((await sdk.entitlements.get(demo, 'feature-04-analytics')).is_granted).toBe(false);
    expect((await sdk.promotions.list(demo)).data.map((p) => p.feature_id)).toEqual(['feature-01-templates']);
    const again = await rejection(sdk.promotions.revoke(demo, 'feature-04-analytics'));
    expect(again.status).toBe(404);
  });

  it('estimate_subscription → subscriptions.preview: the first invoice, 20.00 in advance (nothing created)', async () => {
    const p = await sdk.subscriptions.preview({ customer_id: paid, plan_id: 'plan-revvenu-essentials' });
    // coupons and credits apply when an invoice is finalized, so the estimate is Stigg's sub_total
    expect(p.total).toBe('20.00');
    expect(p.line_items.find((l) => l.kind === 'flat_fee')).toMatchObject({ amount_minor: '2000' });
    expect((await sdk.subscriptions.list({ customer_id: paid, status: 'active' })).data).toEqual([]);
  });

  it('estimate_subscription_update → subscriptions.previewChange: the prorated charge for the rest of the period', async () => {
    const s = await sdk.subscriptions.get(basicSub);
    const ps = Date.parse(s.current_period_start);
    const pe = Date.parse(s.current_period_end);
    const t0 = Date.now();
    const p = await sdk.subscriptions.previewChange(basicSub, 'plan-revvenu-essentials');
    const t1 = Date.now();
    const charge = (at: number) => divRoundHalfEven(2000n * BigInt(pe - at), BigInt(pe - ps));
    const lines = p.line_items as { kind: string; amount_minor: number }[];
    const fee = lines.find((l) => l.amount_minor > 0);
    expect(fee, JSON.stringify(p)).toBeDefined();
    const minor = BigInt(fee!.amount_minor);
    expect(minor <= charge(t0) && minor >= charge(t1)).toBe(true);
    // and the change itself (Stigg: update_subscription / provision_subscription of another plan)
    const changed = await sdk.subscriptions.changePlan(basicSub, 'plan-revvenu-essentials');
    expect(changed.plan_id).toBe('plan-revvenu-essentials');
    expect((await sdk.entitlements.get(demo, 'feature-02-campaigns')).usage_limit).toBe(12);
  });
});
