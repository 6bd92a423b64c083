// docs/migrating-from-lotus.md, walked with @meterline/sdk through the real services (gateway → Kafka →
// aggregator → ClickHouse, billing on Postgres). First the Node library's calls in its reference order
// (track_event, get_customers, create_customer, get_current_usage, get_plans, get_subscriptions,
// create_subscription, cancel_subscription, get_customer_access), then the Python library's extra ones
// (get_customer_detail, create_customer with balance, create_subscription with subscription_id,
// get_subscription_detail, change_subscription_plan, cancel with turn_off_auto_renew /
// replace_immediately_type, get_customer_access by event_name). Every call is the guide's mapping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeterlineError, type Meterline } from '@meterline/sdk';
import { uniqueId } from '../support/fixtures.ts';
import { waitFor } from '../support/wait.ts';
import { rejection, startMigrationStack, todayUtc, type MigrationStack } from './migrate-support.ts';

let stack: MigrationStack;
let sdk: Meterline;
const customerId = uniqueId('lotus_cust');
const py = uniqueId('lotus_py');
const start = todayUtc();
let subscriptionId = '';

// In Lotus the catalog is made in the app; in Meterline it is API calls (the guide's "Before you start").
beforeAll(async () => {
  stack = await startMigrationStack('mig_lotus');
  sdk = stack.sdk;
  await sdk.metrics.create({ metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' });
  await sdk.metrics.create({ metric_id: 'mb_used', event_name: 'api_call', aggregation: 'sum', property: 'mb_used' });
  await sdk.features.create({ feature_id: 'api', name: 'API calls', type: 'metered', metric_id: 'api_calls' });
  await sdk.features.create({ feature_id: 'slack', name: 'slack_integration', type: 'boolean' });
  // 2 calls free, then 0.25 each; 10 calls a period at most (hard)
  await sdk.plans.create({
    plan_id: 'billing_plan_5',
    name: 'Starter',
    interval: 'month',
    flat_fee: '0',
    components: [{ metric_id: 'api_calls', free_units: 2, pricing: { model: 'per_unit', unit_price: '0.25' } }],
    entitlements: [{ feature_id: 'api', limit: 10, limit_type: 'hard' }, { feature_id: 'slack' }],
  });
  await sdk.plans.create({
    plan_id: 'premium_plan_7ui9op',
    name: 'Premium',
    interval: 'month',
    flat_fee: '0',
    components: [{ metric_id: 'api_calls', free_units: 100, pricing: { model: 'per_unit', unit_price: '0.10' } }],
    entitlements: [{ feature_id: 'api', limit: 1000, limit_type: 'hard' }, { feature_id: 'slack' }],
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe('Lotus Node library, in reference order', () => {
  it('trackEvent → sdk.track: accepted once per idempotency_id (a resend is a duplicate, never counted twice)', async () => {
    const first = await sdk.track({
      idempotency_id: `${customerId}-234234`,
      event_name: 'api_call',
      time_created: new Date(),
      customer_id: customerId,
      properties: { test: 'test', numericQuantity: 2.5, mb_used: 150 },
    });
    expect(first.status).toBe('accepted');
    const again = await sdk.track({
      idempotency_id: `${customerId}-234234`,
      event_name: 'api_call',
      customer_id: customerId,
      properties: { mb_used: 150 },
    });
    expect(again.status).toBe('duplicate');
    // without an idempotency_id the SDK generates one (a UUID), as Lotus does
    const batch = await sdk.trackBatch(
      [1, 2, 3, 4].map((i) => ({ event_name: 'api_call', customer_id: customerId, properties: { mb_used: i } })),
    );
    expect(batch.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    expect(batch.results[0]!.idempotency_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('getCustomers → customers.list: events do not create customers (the customer is not listed yet)', async () => {
    const page = await sdk.customers.list({ limit: 200 });
    expect(page.data.map((c) => c.customer_id)).not.toContain(customerId);
  });

  it('createCustomer → customers.create: customer_name is refused naming "name"; payment_provider_id goes to metadata', async () => {
    const e = await rejection(
      sdk.request('POST', '/v1/customers', { customer_id: customerId, customer_name: 'Test Customer', currency: 'USD' }),
    );
    expect(e).toBeInstanceOf(MeterlineError);
    expect(e.status).toBe(400);
    expect(e.message).toContain('did you mean "name"');
    const c = await sdk.customers.create({
      customer_id: customerId,
      name: 'Test Customer',
      currency: 'USD',
      metadata: { payment_provider_id: 'cus_123' },
    });
    expect(c).toMatchObject({
      customer_id: customerId,
      name: 'Test Customer',
      currency: 'USD',
      balance: '0.00',
      metadata: { payment_provider_id: 'cus_123' },
    });
    // the same call again (a retry) answers the same customer instead of failing
    const again = await sdk.customers.create({
      customer_id: customerId,
      name: 'Test Customer',
      currency: 'USD',
      metadata: { payment_provider_id: 'cus_123' },
    });
    expect(again.customer_id).toBe(customerId);
    const page = await sdk.customers.list({ limit: 200 });
    expect(page.data.find((x) => x.customer_id === customerId)).toMatchObject({ name: 'Test Customer', balance: '0.00' });
  });

  it('getCurrentUsage → subscriptions.list({customer_id, status: active}): nothing before a subscription', async () => {
    const subs = await sdk.subscriptions.list({ customer_id: customerId, status: 'active' });
    expect(subs.data).toEqual([]);
  });

  it('getPlans → plans.list', async () => {
    const plans = await sdk.plans.list();
    expect(plans.data.map((p) => p.plan_id).sort()).toEqual(['billing_plan_5', 'premium_plan_7ui9op']);
  });

  it('getSubscriptions → subscriptions.list: none yet', async () => {
    expect((await sdk.subscriptions.list()).data).toEqual([]);
  });

  it('createSubscription → subscriptions.create: billing_plan_id is refused naming plan_id; start_date YYYY-MM-DD is that UTC midnight', async () => {
    const e = await rejection(
      sdk.request('POST', '/v1/subscriptions', { customer_id: customerId, billing_plan_id: 'billing_plan_5', start_date: start }),
    );
    expect(e.status).toBe(400);
    expect(e.message).toContain('did you mean "plan_id"');
    const sub = await sdk.subscriptions.create({ customer_id: customerId, plan_id: 'billing_plan_5', start_date: start });
    subscriptionId = sub.subscription_id;
    expect(sub).toMatchObject({ customer_id: customerId, plan_id: 'billing_plan_5', status: 'active', auto_renew: true, end_date: null });
    expect(new Date(sub.start_date).toISOString()).toBe(`${start}T00:00:00.000Z`);
    expect(new Date(sub.current_period_start).toISOString()).toBe(`${start}T00:00:00.000Z`);
    expect((await sdk.subscriptions.list()).data.map((s) => s.subscription_id)).toEqual([subscriptionId]);
  });

  it('getCurrentUsage → subscriptions.get + upcomingInvoice: the 5 events of today, priced (5 − 2 free) × 0.25 = 0.75', async () => {
    // Lotus answered per active subscription: list them, then read each one
    const active = await sdk.subscriptions.list({ customer_id: customerId, status: 'active' });
    expect(active.data.map((s) => s.subscription_id)).toEqual([subscriptionId]);
    const detail = await waitFor(
      () => sdk.subscriptions.get(active.data[0]!.subscription_id),
      (d) => d.usage_amount_so_far === '0.75',
      { what: 'usage so far 0.75', timeoutMs: 60_000 },
    );
    expect(detail.customer_id).toBe(customerId);
    const upcoming = await sdk.subscriptions.upcomingInvoice(subscriptionId);
    expect(upcoming.total).toBe('0.75');
    const usageLine = upcoming.line_items.find((l) => l.metric_id === 'api_calls') as Record<string, unknown>;
    expect(usageLine).toMatchObject({ quantity: expect.anything() });
    expect(Number(usageLine.quantity)).toBe(5);
  });

  it('getCustomerAccess (feature_name) → entitlements.access: by the feature NAME, usage 5 of 10', async () => {
    // a read that grants nothing may be served a usage reading up to BILLING_USAGE_READ_STALE_MS (5 s) old
    // (billing README, "Usage state"): gateway events show up there within that bound
    const byName = await waitFor(
      () => sdk.entitlements.access({ customer_id: customerId, feature_name: 'API calls' }),
      (r) => r.entitlement?.current_usage === 5,
      { what: 'customer_access usage 5', timeoutMs: 30_000 },
    );
    expect(byName).toMatchObject({ customer_id: customerId, access: true, access_denied_reason: null });
    expect(byName.entitlement).toMatchObject({ feature_id: 'api', current_usage: 5, usage_limit: 10, is_granted: true });
    const bool = await sdk.entitlements.access({ customer_id: customerId, feature_name: 'slack_integration' });
    expect(bool.access).toBe(true);
    // event_name + event_limit_type: free units (2) are used up, the total limit (10) is not
    const free = await sdk.entitlements.access({ customer_id: customerId, event_name: 'api_call', event_limit_type: 'free' });
    expect(free.access).toBe(false);
    const total = await sdk.entitlements.access({ customer_id: customerId, event_name: 'api_call', event_limit_type: 'total' });
    expect(total.access).toBe(true);
  });

  it('cancelSubscription (bill_now, revoke_access) → subscriptions.cancel: ends now, a cancel invoice of 0.75, access revoked', async () => {
    const ended = await sdk.subscriptions.cancel(subscriptionId, { bill_now: true, revoke_access: true });
    expect(ended.status).toBe('ended');
    expect(ended.ended_at).not.toBeNull();
    const invoices = await sdk.invoices.list({ subscription_id: subscriptionId });
    const cancel = invoices.data.find((i) => i.reason === 'cancel');
    expect(cancel, JSON.stringify(invoices.data)).toBeDefined();
    expect(cancel!.total).toBe('0.75');
    const access = await sdk.entitlements.access({ customer_id: customerId, feature_name: 'API calls' });
    expect(access).toMatchObject({ access: false, access_denied_reason: 'no_active_subscription' });
    // bill_now: true with revoke_access: false is refused, as in Lotus
    const e = await rejection(sdk.subscriptions.cancel(subscriptionId, { bill_now: true, revoke_access: false }));
    expect(e.status).toBe(400);
  });
});

describe('Lotus Python library: the calls the Node one does not have', () => {
  it('create_customer(balance=500) → customers.create({balance: "500"}); get_customer_detail → customers.get', async () => {
    await sdk.customers.create({ customer_id: py, name: 'Corporation Inc.', balance: '500' });
    const d = await sdk.customers.get(py);
    expect(d).toMatchObject({ customer_id: py, name: 'Corporation Inc.', balance: '500.00', subscriptions: [], invoices: [] });
    expect(d.total_amount_due).toMatch(/^0(\.00)?$/);
  });

  it('create_subscription(subscription_id=…) → subscriptions.create: the chosen id, and a retry answers the same subscription', async () => {
    const sid = `${py}_p_7ui9op_${start}`;
    const input = { customer_id: py, plan_id: 'billing_plan_5', start_date: start, subscription_id: sid };
    const s1 = await sdk.subscriptions.create(input);
    const s2 = await sdk.subscriptions.create(input);
    expect(s1.subscription_id).toBe(sid);
    expect(s2.subscription_id).toBe(sid);
    expect((await sdk.subscriptions.list({ customer_id: py })).data).toHaveLength(1);
  });

  it('get_subscription_detail → subscriptions.get; change_subscription_plan → subscriptions.changePlan (same subscription, same period)', async () => {
    const sid = `${py}_p_7ui9op_${start}`;
    const before = await sdk.subscriptions.get(sid);
    expect(before).toMatchObject({ plan_id: 'billing_plan_5', status: 'active' });
    const changed = await sdk.subscriptions.changePlan(sid, 'premium_plan_7ui9op');
    expect(changed).toMatchObject({ subscription_id: sid, plan_id: 'premium_plan_7ui9op', status: 'active' });
    expect(changed.current_period_start).toBe(before.current_period_start);
    const ent = await sdk.entitlements.get(py, 'api');
    expect(ent.usage_limit).toBe(1000);
  });

  it('cancel_subscription(turn_off_auto_renew=True) → subscriptions.cancel({turn_off_auto_renew: true}): runs to period end', async () => {
    const sid = `${py}_p_7ui9op_${start}`;
    const s = await sdk.subscriptions.cancel(sid, { turn_off_auto_renew: true });
    expect(s).toMatchObject({ status: 'active', auto_renew: false });
    expect((await sdk.entitlements.access({ customer_id: py, feature_name: 'API calls' })).access).toBe(true);
  });

  it('cancel_subscription(replace_immediately_type=end_current_subscription_and_dont_bill) → ends now, nothing billed', async () => {
    const sid = `${py}_p_7ui9op_${start}`;
    await sdk.track({ event_name: 'api_call', customer_id: py });
    await waitFor(
      () => sdk.entitlements.get(py, 'api'),
      (e) => e.current_usage === 1,
      { what: 'the Python customer’s event counted', timeoutMs: 60_000 },
    );
    const s = await sdk.subscriptions.cancel(sid, { replace_immediately_type: 'end_current_subscription_and_dont_bill' });
    expect(s.status).toBe('ended');
    const invoices = await sdk.invoices.list({ subscription_id: sid });
    for (const inv of invoices.data)
      expect(inv.line_items.filter((l) => l.metric_id === 'api_calls' && Number(l.amount ?? 0) > 0)).toEqual([]);
  });

  it('get_all_subscriptions → subscriptions.list({status: "active"}); get_all_plans → plans.list', async () => {
    const active = await sdk.subscriptions.list({ status: 'active' });
    // both subscriptions have ended (the Node walk's and the Python one's)
    expect(active.data).toEqual([]);
    expect((await sdk.subscriptions.list({ status: 'ended' })).data).toHaveLength(2);
    expect((await sdk.plans.list()).data).toHaveLength(2);
  });

  it("event ingestion API: Lotus's own body at Lotus's path (POST /api/track) is accepted and counted once", async () => {
    const cust = uniqueId('lotus_http');
    const event = {
      event_name: 'api_call',
      idempotency_id: `${cust}-1`,
      properties: { mb_used: 7 },
      customer_id: cust,
      time_created: new Date().toISOString(),
    };
    const post = () =>
      fetch(`${stack.gatewayUrl}/api/track`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': stack.org.apiKey },
        body: JSON.stringify({ batch: [event] }),
      });
    const r1 = await post();
    expect(r1.status).toBeLessThan(300);
    await post(); // a resend
    const from = new Date(Date.now() - 3_600_000);
    const u = await waitFor(
      () => sdk.usage.query({ customer_id: cust, metric_id: 'mb_used', from, to: new Date(Date.now() + 3_600_000) }),
      (x) => x.total === 7,
      { what: 'mb_used 7 (once)', timeoutMs: 60_000 },
    );
    expect(u.total).toBe(7);
  });

  it('get_customer_access(event_name, event_limit_type) after the end → no access', async () => {
    const r = await sdk.entitlements.access({ customer_id: py, event_name: 'api_call', event_limit_type: 'total' });
    expect(r.access).toBe(false);
  });
});
