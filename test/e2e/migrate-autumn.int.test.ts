// docs/migrating-from-autumn.md, walked with @meterline/sdk through the real services (gateway → Kafka →
// aggregator → ClickHouse, billing on Postgres). Autumn's operations in a customer's lifecycle order
// (the reference lists them alphabetically per class): products.create, customers.create, attach, check,
// check(send_event), track(value), track(event_name), entities.create/get + check(entity_id),
// features.set_usage, features.set_balances, query, products.get_referral_code / redeem_referral_code,
// customers.get_billing_portal, checkout, customers.get/list/update/pricing_table, products.get/list/update,
// attach of an add-on product, cancel (end of cycle, then immediately), entities.delete, products.delete.
// Every call is the guide's mapping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Meterline } from '@meterline/sdk';
import { uniqueId } from '../support/fixtures.ts';
import { waitFor } from '../support/wait.ts';
import { rejection, startMigrationStack, type MigrationStack } from './migrate-support.ts';

let stack: MigrationStack;
let sdk: Meterline;
const john = uniqueId('john_doe');
const jane = uniqueId('jane_doe');
let subscriptionId = '';
const from = new Date(Date.now() - 30 * 86_400_000); // Autumn query's default range: 30d

/** Half-even rounding of a non-negative rational a/b to an integer (how billing rounds a prorated fee). */
function divRoundHalfEven(a: bigint, b: bigint): bigint {
  const q = a / b;
  const r = a % b;
  if (r * 2n > b) return q + 1n;
  if (r * 2n < b) return q;
  return q % 2n === 0n ? q : q + 1n;
}

beforeAll(async () => {
  stack = await startMigrationStack('mig_autumn');
  sdk = stack.sdk;
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe('Autumn, mapped to @meterline/sdk', () => {
  it('products.create(items, is_add_on) → metrics.create + features.create + plans.create({plan_type})', async () => {
    await sdk.metrics.create({ metric_id: 'messages', event_name: 'message', aggregation: 'sum', property: 'count' });
    await sdk.metrics.create({ metric_id: 'ws_messages', event_name: 'ws_message', aggregation: 'sum', property: 'count' });
    await sdk.features.create({ feature_id: 'chat_messages', name: 'Chat messages', type: 'metered', metric_id: 'messages' });
    await sdk.features.create({ feature_id: 'workspace_messages', type: 'metered', metric_id: 'ws_messages' });
    await sdk.features.create({ feature_id: 'sso', type: 'boolean' });
    const pro = await sdk.plans.create({
      plan_id: 'pro',
      name: 'Pro',
      interval: 'month',
      currency: 'USD',
      flat_fee: '20.00',
      flat_fee_timing: 'in_advance',
      entitlements: [
        { feature_id: 'chat_messages', limit: 100, limit_type: 'hard' },
        { feature_id: 'workspace_messages', limit: 5, limit_type: 'hard', per_entity: true },
      ],
    });
    expect(pro).toMatchObject({ plan_id: 'pro', version: 1, plan_type: 'base', flat_fee: '20.00' });
    const addOn = await sdk.plans.create({
      plan_id: 'sso_add_on',
      name: 'SSO',
      interval: 'month',
      currency: 'USD',
      flat_fee: '5.00',
      flat_fee_timing: 'in_arrears',
      plan_type: 'add_on',
      entitlements: [{ feature_id: 'sso' }],
    });
    expect(addOn.plan_type).toBe('add_on');
  });

  it('customers.create(id, email, name, metadata) → customers.create', async () => {
    const c = await sdk.customers.create({ customer_id: john, name: 'John', email: 'john@example.com', metadata: { source: 'autumn' } });
    expect(c).toMatchObject({ customer_id: john, email: 'john@example.com', currency: 'USD' });
    await sdk.customers.create({ customer_id: jane, name: 'Jane', email: 'jane@example.com' });
  });

  it('attach(customer_id, product_id) → checkout.attach: manual provider subscribes at once; the in-advance fee is invoiced', async () => {
    const r = await sdk.checkout.attach({ customer_id: john, plan_id: 'pro' });
    expect(r.status).toBe('subscribed');
    expect(r.checkout_id).toBeNull();
    subscriptionId = r.subscription!.subscription_id;
    expect(r.subscription).toMatchObject({ customer_id: john, plan_id: 'pro', status: 'active' });
    const start = (await sdk.invoices.list({ subscription_id: subscriptionId })).data.find((i) => i.reason === 'subscription_start');
    expect(start?.total).toBe('20.00');
    // Autumn's product_id is refused naming plan_id (friendly inputs)
    const e = await rejection(sdk.request('POST', '/v1/attach', { customer_id: john, product_id: 'pro' }));
    expect(e.status).toBe(400);
    expect(e.message).toContain('plan_id');
  });

  it('check(feature_id, required_balance) → entitlements.check: allowed with balance 100; 101 is denied', async () => {
    const ok = await sdk.entitlements.check({ customer_id: john, feature_id: 'chat_messages' });
    expect(ok).toMatchObject({ allowed: true, balance: 100, usage: 0, usage_limit: 100, unlimited: false, event_recorded: false });
    const tooMuch = await sdk.entitlements.check({ customer_id: john, feature_id: 'chat_messages', required_balance: 101 });
    expect(tooMuch.allowed).toBe(false);
    expect(tooMuch.entitlement.access_denied_reason).toBe('requested_usage_exceeds_limit');
    // with_preview → subscriptions.preview: what subscribing Jane to pro would bill first (nothing is created)
    expect((await sdk.subscriptions.preview({ customer_id: jane, plan_id: 'pro' })).total).toBe('20.00');
    // a feature's name works too
    expect((await sdk.entitlements.check({ customer_id: john, feature_id: 'Chat messages' })).allowed).toBe(true);
  });

  it('check(send_event=True) → entitlements.check({send_event: true}): grant and consumption are one atomic step, retry-safe', async () => {
    const key = uniqueId('chk');
    const r = await sdk.entitlements.check({
      customer_id: john,
      feature_id: 'chat_messages',
      required_balance: 3,
      send_event: true,
      idempotency_key: key,
    });
    expect(r).toMatchObject({ allowed: true, event_recorded: true, usage: 3, balance: 97 });
    // the same key again replays the first answer and consumes nothing more
    const replay = await sdk.entitlements.check({
      customer_id: john,
      feature_id: 'chat_messages',
      required_balance: 3,
      send_event: true,
      idempotency_key: key,
    });
    expect(replay.usage).toBe(3);
  });

  it('track(feature_id, value) → usage.report: counted at once (7); track(event_name) → sdk.track, counted once aggregated (9)', async () => {
    const r = await sdk.usage.report({ customer_id: john, feature_id: 'chat_messages', value: 4 });
    expect(r).toMatchObject({ previous_usage: 3, current_usage: 7, usage_limit: 100, over_limit: false });
    const ev = await sdk.track({ event_name: 'message', customer_id: john, idempotency_key: uniqueId('trk'), properties: { count: 2 } });
    expect(ev.status).toBe('accepted');
    await waitFor(
      () => sdk.entitlements.get(john, 'chat_messages'),
      (e) => e.current_usage === 9,
      { what: 'usage 3 + 4 + 2 = 9', timeoutMs: 60_000 },
    );
  });

  it('entities.create / get + check(entity_id) → entities.create / get + entitlements.check({entity_id}): 5 per workspace', async () => {
    const ent = await sdk.entities.create(john, { entity_id: 'ws_1', feature_id: 'workspace_messages', name: 'Workspace 1' });
    expect(ent).toMatchObject({ customer_id: john, entity_id: 'ws_1', name: 'Workspace 1', deleted_at: null });
    await sdk.entities.create(john, { entity_id: 'ws_2', name: 'Workspace 2' });
    expect((await sdk.entities.get(john, 'ws_1')).entity_id).toBe('ws_1');
    const first = await sdk.entitlements.check({
      customer_id: john,
      feature_id: 'workspace_messages',
      entity_id: 'ws_1',
      required_balance: 5,
      send_event: true,
    });
    expect(first).toMatchObject({ allowed: true, usage: 5, balance: 0 });
    const denied = await sdk.entitlements.check({
      customer_id: john,
      feature_id: 'workspace_messages',
      entity_id: 'ws_1',
      send_event: true,
    });
    expect(denied.allowed).toBe(false);
    expect(denied.event_recorded).toBe(false);
    const other = await sdk.entitlements.check({ customer_id: john, feature_id: 'workspace_messages', entity_id: 'ws_2' });
    expect(other).toMatchObject({ allowed: true, balance: 5 });
    // an unknown entity is a 404, never a fresh balance
    const e = await rejection(sdk.entitlements.check({ customer_id: john, feature_id: 'workspace_messages', entity_id: 'ws_typo' }));
    expect(e.status).toBe(404);
    expect((await sdk.entities.list(john)).data.map((x) => x.entity_id)).toEqual(['ws_1', 'ws_2']);
    // track(event_name, entity_id): a raw event naming the entity (UsageEventInput has no entity_id field yet: a cast)
    const raw = { event_name: 'ws_message', customer_id: john, properties: { count: 2 }, entity_id: 'ws_2' };
    expect((await sdk.track(raw as Parameters<Meterline['track']>[0])).status).toBe('accepted');
    await waitFor(
      () => sdk.entitlements.check({ customer_id: john, feature_id: 'workspace_messages', entity_id: 'ws_2' }),
      (r) => r.usage === 2 && r.balance === 3,
      { what: 'ws_2 usage 2 of 5', timeoutMs: 60_000 },
    );
  });

  it('features.set_usage → usage.set: 50; features.set_balances(balance 30) → usage.set(limit − 30 = 70)', async () => {
    const s = await sdk.usage.set({ customer_id: john, feature_id: 'chat_messages', value: 50 });
    expect(s).toMatchObject({ update_behavior: 'set', previous_usage: 9, current_usage: 50 });
    const ent = await sdk.entitlements.get(john, 'chat_messages');
    const b = await sdk.usage.set({ customer_id: john, feature_id: 'chat_messages', value: ent.usage_limit! - 30 });
    expect(b.current_usage).toBe(70);
    expect((await sdk.entitlements.check({ customer_id: john, feature_id: 'chat_messages' })).balance).toBe(30);
  });

  it('query(customer_id, feature_id, range="30d") → usage.query({from, to, window: "day"}): total 70 through ClickHouse', async () => {
    const q = await waitFor(
      () => sdk.usage.query({ customer_id: john, feature_id: 'chat_messages', from, to: new Date(Date.now() + 3_600_000), window: 'day' }),
      (r) => r.total === 70,
      { what: 'usage query total 70', timeoutMs: 60_000 },
    );
    expect(q).toMatchObject({ customer_id: john, metric_id: 'messages', feature_id: 'chat_messages', window: 'day', aggregation: 'sum' });
    expect(q.data.reduce((s, p) => s + p.value, 0)).toBe(70);
  });

  it('products.get_referral_code / redeem_referral_code → referrals.code / referrals.redeem: both rewards granted once', async () => {
    await sdk.coupons.create({ coupon_id: 'ref10', name: '10% off', percent_off: '10', duration: 'once' });
    await sdk.referrals.createProgram({
      program_id: 'friends',
      name: 'Friends',
      referrer_reward: { coupon_id: 'ref10' },
      redeemer_reward: { credit_amount: '10.00', credit_currency: 'USD' },
    });
    const code = await sdk.referrals.code(john, 'friends');
    expect(code.code).toMatch(/^[A-Z2-9]{8}$/);
    expect((await sdk.referrals.code(john, 'friends')).code).toBe(code.code);
    const red = await sdk.referrals.redeem(code.code, jane);
    expect(red).toMatchObject({ referrer_id: john, customer_id: jane });
    expect(red.referrer_reward.coupon_redemption_id).not.toBeNull();
    expect(red.redeemer_reward.credit_grant_id).not.toBeNull();
    const again = await sdk.referrals.redeem(code.code, jane);
    expect(again.redemption_id).toBe(red.redemption_id);
    expect((await sdk.credits.balance(jane)).balance.USD).toBe('10.00');
    const self = await rejection(sdk.referrals.redeem(code.code, john));
    expect(self).toMatchObject({ status: 409, code: 'self_referral' });
  });

  it('customers.get_billing_portal → checkout.billingPortal: 409 not_supported with the manual provider', async () => {
    const e = await rejection(sdk.checkout.billingPortal(john, { return_url: 'https://example.com/account' }));
    expect(e).toMatchObject({ status: 409, code: 'not_supported' });
  });

  it('checkout(force_checkout) → checkout.attach({force_checkout: true}): 409 with the manual provider (a hosted provider gives payment_url)', async () => {
    const e = await rejection(
      sdk.checkout.attach({ customer_id: jane, plan_id: 'pro', force_checkout: true, success_url: 'https://example.com/ok' }),
    );
    expect(e).toMatchObject({ status: 409, code: 'not_supported' });
    expect((await sdk.subscriptions.list({ customer_id: jane })).data).toEqual([]);
  });

  it('customers.get / list / update / pricing_table → customers.get / list / update, plans.list + entitlements.list', async () => {
    const d = await sdk.customers.get(john);
    expect(d.subscriptions.map((s) => s.subscription_id)).toEqual([subscriptionId]);
    expect(d.invoices.length).toBeGreaterThanOrEqual(1);
    const list = await sdk.customers.list({ limit: 10, offset: 0 });
    expect(list.data.map((c) => c.customer_id).sort()).toEqual([jane, john].sort());
    const u = await sdk.customers.update(john, { name: 'John Doe', email: 'jd@example.com' });
    expect(u).toMatchObject({ name: 'John Doe', email: 'jd@example.com' });
    // a pricing table is the plans plus what the customer has now
    const plans = await sdk.plans.list();
    expect(plans.data.map((p) => p.plan_id).sort()).toEqual(['pro', 'sso_add_on']);
    // (right after a SET, a reading can count the set's delta twice until the aggregator's watermark passes
    // it: the ledger's documented conservative case, services/billing/README.md "Usage state")
    const ents = await waitFor(
      () => sdk.entitlements.list(john),
      (p) => p.data.find((e) => e.feature_id === 'chat_messages')?.current_usage === 70,
      { what: 'entitlements list usage 70', timeoutMs: 60_000 },
    );
    expect(ents.data.find((e) => e.feature_id === 'chat_messages')).toMatchObject({
      is_granted: true,
      usage_limit: 100,
      current_usage: 70,
    });
  });

  it('products.get / list(customer_id) / update → plans.get / subscriptions.list({customer_id}) / plans.update (a new version)', async () => {
    expect((await sdk.plans.get('pro')).name).toBe('Pro');
    const mine = await sdk.subscriptions.list({ customer_id: john, status: 'active' });
    expect(mine.data.map((s) => s.plan_id)).toEqual(['pro']);
    const v2 = await sdk.plans.update('pro', { name: 'Pro (2027)' });
    expect(v2).toMatchObject({ version: 2, name: 'Pro (2027)' });
    // the existing subscription keeps its version
    expect((await sdk.subscriptions.get(subscriptionId)).plan_version).toBe(1);
  });

  it('attach(product_id=<add-on>) → subscriptions.attachAddOn: quantity 2, SSO granted', async () => {
    const a = await sdk.subscriptions.attachAddOn(subscriptionId, { plan_id: 'sso_add_on', quantity: 2 });
    expect(a).toMatchObject({ plan_id: 'sso_add_on', quantity: 2, ended_at: null });
    expect((await sdk.entitlements.check({ customer_id: john, feature_id: 'sso' })).allowed).toBe(true);
    expect((await sdk.entitlements.check({ customer_id: jane, feature_id: 'sso' })).allowed).toBe(false);
  });

  it('cancel(cancel_immediately=False) → subscriptions.list({customer_id, plan_id, status}) → subscriptions.cancel(): runs to the end of the cycle', async () => {
    const found = await sdk.subscriptions.list({ customer_id: john, plan_id: 'pro', status: 'active' });
    expect(found.data.map((x) => x.subscription_id)).toEqual([subscriptionId]);
    const s = await sdk.subscriptions.cancel(found.data[0]!.subscription_id);
    expect(s).toMatchObject({ status: 'active', auto_renew: false });
  });

  it('cancel(cancel_immediately=True) → subscriptions.cancel({type: end_current_subscription_and_bill}): the unused fee is credited', async () => {
    const before = await sdk.subscriptions.get(subscriptionId);
    const s = await sdk.subscriptions.cancel(subscriptionId, { type: 'end_current_subscription_and_bill' });
    expect(s.status).toBe('ended');
    const periodStart = Date.parse(before.current_period_start);
    const periodEnd = Date.parse(before.current_period_end);
    const endedAt = Date.parse(s.ended_at!);
    // 20.00 in advance: the unused part [ended_at, period end) comes back, rounded half-even once
    const credit = divRoundHalfEven(2000n * BigInt(periodEnd - endedAt), BigInt(periodEnd - periodStart));
    const invoices = (await sdk.invoices.list({ subscription_id: subscriptionId })).data;
    const lines = invoices.flatMap((i) => i.line_items).filter((l) => l.kind === 'proration_credit');
    expect(lines, JSON.stringify(invoices)).toHaveLength(1);
    expect(BigInt(lines[0]!.amount_minor as number)).toBe(-credit);
    expect((await sdk.entitlements.check({ customer_id: john, feature_id: 'chat_messages' })).allowed).toBe(false);
  });

  it('entities.delete → entities.delete: checks naming it get 404; its usage still counts for the customer', async () => {
    const d = await sdk.entities.delete(john, 'ws_1');
    expect(d.deleted_at).not.toBeNull();
    const e = await rejection(sdk.usage.report({ customer_id: john, feature_id: 'workspace_messages', entity_id: 'ws_1', value: 1 }));
    expect(e.status).toBe(404);
    const ws1 = await waitFor(
      () =>
        sdk.usage.query({
          customer_id: john,
          feature_id: 'workspace_messages',
          entity_id: 'ws_1',
          from,
          to: new Date(Date.now() + 3_600_000),
        }),
      (r) => r.total === 5,
      { what: "the deleted entity's usage (5) is kept", timeoutMs: 60_000 },
    );
    expect(ws1.total).toBe(5);
  });

  it('products.delete → plans.archive: no new subscriptions', async () => {
    await sdk.plans.archive('sso_add_on');
    expect((await sdk.plans.get('sso_add_on')).archived_at).not.toBeNull();
    const e = await rejection(sdk.checkout.attach({ customer_id: jane, plan_id: 'sso_add_on' }));
    expect(e.status).toBeGreaterThanOrEqual(400);
  });
});
