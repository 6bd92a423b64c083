// The SDK against the real services started in-process: gateway → Kafka → aggregator → ClickHouse,
// and billing (catalog, check with send_event, usage query).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createClickHouse,
  createKafka,
  createPostgres,
  ensureTopics,
  sqlString,
  type ClickHouseClient,
  type PgPool,
} from '@meterline/core';
import { startGateway } from '@meterline/gateway';
import { startAggregator } from '@meterline/aggregator';
import { startBilling, type BillingHandle } from '@meterline/billing';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { Meterline, MeterlineError } from '../src/index.ts';

const run = uniqueId('sdk');
const cfg = testConfig({
  KAFKA_EVENTS_TOPIC: `${run}.events`,
  KAFKA_DEAD_LETTER_TOPIC: `${run}.dlq`,
  AGGREGATOR_GROUP_ID: `${run}.aggregator`,
  GATEWAY_PORT: '0',
  BILLING_PORT: '0',
  AGGREGATOR_PORT: '0',
});

let pool: PgPool;
let ch: ClickHouseClient;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let aggregator: Awaited<ReturnType<typeof startAggregator>>;
let billing: BillingHandle;
let org: { organizationId: string; apiKey: string };
let sdk: Meterline;

beforeAll(async () => {
  const admin = createKafka(cfg.kafka).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, cfg.kafka);
  } finally {
    await admin.disconnect();
  }
  pool = createPostgres(cfg.postgresUrl);
  ch = createClickHouse(cfg.clickhouse);
  org = await createTestOrganization(pool);
  gateway = await startGateway(cfg);
  aggregator = await startAggregator(cfg);
  billing = await startBilling(cfg, {}, { renewalIntervalMs: 0 });
  sdk = new Meterline({ apiKey: org.apiKey, ingestUrl: gateway.url, billingUrl: billing.url, timeoutMs: 15_000, flushIntervalMs: 0 });

  // Catalog through the SDK's generic request(): metrics, a metered feature, a plan, a subscription.
  await sdk.request('POST', '/v1/metrics', { metric_id: 'tokens', event_name: 'llm', aggregation: 'sum', property: 'tokens' });
  await sdk.request('POST', '/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' });
  await sdk.request('POST', '/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' });
  await sdk.request('POST', '/v1/plans', {
    plan_id: 'pro',
    name: 'Pro',
    interval: 'month',
    flat_fee: '0',
    components: [],
    entitlements: [{ feature_id: 'api', limit: 10, limit_type: 'hard' }],
  });
}, 180_000);

afterAll(async () => {
  await sdk?.close().catch(() => undefined);
  await gateway?.stop();
  await billing?.stop();
  await aggregator?.stop();
  await ch?.close();
  await pool?.end();
});

const rawEvents = async (customerId: string) =>
  (
    await ch.query({
      query: `SELECT event_name, idempotency_id, properties FROM events FINAL
           WHERE organization_id = ${sqlString(org.organizationId)} AND customer_id = ${sqlString(customerId)}
           ORDER BY idempotency_id`,
      format: 'JSONEachRow',
    })
  ).json<{ event_name: string; idempotency_id: string; properties: string }>();

describe('@meterline/sdk against the real services', () => {
  it('track / trackBatch / enqueue land in ClickHouse once each, and the usage query sums them', async () => {
    const customer = uniqueId('cust');
    const from = new Date(Date.now() - 3_600_000);
    const one = await sdk.track({ event_name: 'llm', customer_id: customer, properties: { tokens: 40 } });
    expect(one.status).toBe('accepted');
    expect(one.idempotency_id).toMatch(/^[0-9a-f-]{36}$/);

    const batch = await sdk.trackBatch([
      { event_name: 'llm', customer_id: customer, idempotency_id: `${run}-a`, properties: { tokens: 2 } },
      { event_name: 'llm', customer_id: customer, idempotency_id: `${run}-a`, properties: { tokens: 2 } },
      { event_name: 'llm', customer_id: customer, time_created: new Date(Date.now() + 3 * 86_400_000), properties: { tokens: 1000 } },
    ]);
    expect(batch.results.map((r) => r.status)).toEqual(['accepted', 'duplicate', 'rejected']);
    expect(batch.results[1]!.duplicate_of).toBe(0);
    expect(batch.results[2]!.errors![0]!.reason).toBe('too_far_in_future');

    // A resend of an accepted id is a duplicate (the SDK's retries rely on this).
    const again = await sdk.track({ event_name: 'llm', customer_id: customer, idempotency_id: `${run}-a`, properties: { tokens: 2 } });
    expect(again.status).toBe('duplicate');

    const queuedIds = [5, 7].map((tokens) => sdk.enqueue({ event_name: 'llm', customer_id: customer, properties: { tokens } }));
    const flushed = await sdk.flush();
    expect(flushed.results.map((r) => [r.status, r.idempotency_id])).toEqual(queuedIds.map((id) => ['accepted', id]));

    const rows = await waitFor(
      () => rawEvents(customer),
      (r) => r.length >= 4,
      { what: 'SDK events in ClickHouse', timeoutMs: 60_000 },
    );
    expect(rows.map((r) => r.idempotency_id).sort()).toEqual([one.idempotency_id!, `${run}-a`, ...queuedIds].sort());

    const usage = await waitFor(
      () => sdk.usage({ customer_id: customer, metric_id: 'tokens', from, to: new Date(Date.now() + 3_600_000) }),
      (u) => u.total === 54,
      { what: 'usage total 54 (40 + 2 + 5 + 7)', timeoutMs: 60_000 },
    );
    expect(usage).toMatchObject({ customer_id: customer, metric_id: 'tokens', aggregation: 'sum', total: 54 });
  });

  it('a rejected event is a typed error; a bad API key is a 401 MeterlineError', async () => {
    const err = await sdk.track({ event_name: '', customer_id: 'c' }).catch((e) => e);
    expect(err).toBeInstanceOf(MeterlineError);
    expect(err).toMatchObject({ status: 400, code: 'events_rejected' });
    expect(err.eventErrors[0].errors[0]).toMatchObject({ field: 'event_name', reason: 'empty' });

    const bad = new Meterline({ apiKey: 'mk_nope', ingestUrl: gateway.url, billingUrl: billing.url });
    const e401 = await bad.track({ event_name: 'x', customer_id: 'c' }).catch((e) => e);
    expect(e401).toMatchObject({ status: 401, code: 'invalid_api_key' });
    const e401b = await bad.customers.list().catch((e) => e);
    expect(e401b).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('customers, entitlements and a consuming check (send_event) that reaches ClickHouse', async () => {
    const customer = uniqueId('cust');
    const created = await sdk.customers.create({ customer_id: customer, email: 'ops@example.com' });
    expect(created).toMatchObject({ customer_id: customer, email: 'ops@example.com' });
    expect(await sdk.customers.create({ customer_id: customer, email: 'ops@example.com' })).toMatchObject({ customer_id: customer });
    const conflict = await sdk.customers.create({ customer_id: customer, email: 'other@example.com' }).catch((e) => e);
    expect(conflict).toMatchObject({ status: 409, code: 'conflict' });
    await sdk.request('POST', '/v1/subscriptions', { customer_id: customer, plan_id: 'pro' });

    expect((await sdk.customers.get(customer)).subscriptions).toHaveLength(1);
    const listed = await sdk.customers.list({ email: 'ops@example.com' });
    expect(listed.data.map((c) => c.customer_id)).toContain(customer);

    // 3 calls through the gateway, then a consuming check for 2 more.
    const sent = await sdk.trackBatch([1, 2, 3].map(() => ({ event_name: 'api_call', customer_id: customer })));
    expect(sent.accepted).toBe(3);
    await waitFor(
      () => sdk.entitlement(customer, 'api'),
      (e) => e.current_usage === 3,
      { what: 'usage 3 seen by billing', timeoutMs: 60_000 },
    );

    const check = await sdk.check({ customer_id: customer, feature_id: 'api', required_balance: 2, send_event: true });
    expect(check).toMatchObject({ allowed: true, usage: 5, balance: 5, usage_limit: 10, event_recorded: true });

    const denied = await sdk.check({ customer_id: customer, feature_id: 'api', required_balance: 6 });
    expect(denied.allowed).toBe(false);
    expect(denied.entitlement.access_denied_reason).toBe('requested_usage_exceeds_limit');

    const ents = await sdk.entitlements(customer);
    expect(ents.data.find((e) => e.feature_id === 'api')).toMatchObject({ is_granted: true, usage_limit: 10, current_usage: 5 });
    const access = await sdk.customerAccess({ customer_id: customer, event_name: 'api_call' });
    expect(access.access).toBe(true);

    // The consumed units are real events: ClickHouse converges to 5.
    const usage = await waitFor(
      () =>
        sdk.usage({
          customer_id: customer,
          feature_id: 'api',
          from: new Date(Date.now() - 3_600_000),
          to: new Date(Date.now() + 3_600_000),
        }),
      (u) => u.total === 5,
      { what: 'usage total 5 in ClickHouse', timeoutMs: 60_000 },
    );
    expect(usage.total).toBe(5);
    expect((await rawEvents(customer)).length).toBe(5);
  });

  it('invoices: settings, a draft finalized and paid through the typed calls', async () => {
    expect(await sdk.invoicingSettings({ grace_period_seconds: 120 })).toEqual({ grace_period_seconds: 120 });
    expect(await sdk.invoicingSettings()).toEqual({ grace_period_seconds: 120 });
    await sdk.request('POST', '/v1/plans', {
      plan_id: 'flat',
      name: 'Flat',
      interval: 'month',
      flat_fee: '12.50',
      flat_fee_timing: 'in_arrears',
    });
    const customer = uniqueId('cust');
    await sdk.customers.create({ customer_id: customer });
    const start = new Date(Date.now() - 60_000);
    start.setUTCMonth(start.getUTCMonth() - 1);
    const sub = await sdk.request<{ subscription_id: string }>('POST', '/v1/subscriptions', {
      customer_id: customer,
      plan_id: 'flat',
      start_date: start.toISOString(),
    });
    const upcoming = await sdk.upcomingInvoice(sub.subscription_id);
    expect(upcoming).toMatchObject({ subscription_id: sub.subscription_id, reason: 'period_close' });
    expect((await sdk.previewSubscription({ customer_id: customer, plan_id: 'flat' })).total).toBe('0.00'); // in arrears: nothing at start
    const page = await sdk.invoices({ subscription_id: sub.subscription_id });
    const draft = page.data.find((i) => i.reason === 'period_close')!;
    expect(draft).toMatchObject({ status: 'draft', number: null, total: '12.50' });
    const finalized = await sdk.invoiceAction(draft.invoice_id, 'finalize');
    expect(finalized).toMatchObject({ status: 'finalized', total: '12.50' });
    expect(finalized.number).toMatch(/^INV-\d{6}$/);
    expect((await sdk.customers.get(customer)).total_amount_due).toBe('12.50');
    expect(await sdk.invoiceAction(draft.invoice_id, 'mark_paid')).toMatchObject({ status: 'paid' });
    expect((await sdk.invoice(draft.invoice_id)).paid_at).not.toBeNull();
    expect((await sdk.customers.get(customer)).total_amount_due).toBe('0.00');
    const grant = await sdk.credits.grant(customer, { amount: '5.00' });
    expect((await sdk.credits.topUp(grant.grant_id, '1.50')).remaining).toBe('6.50');
    expect((await sdk.credits.balance(customer)).balance).toEqual({ USD: '6.50' });
    expect((await sdk.credits.history(customer)).data).toHaveLength(2);
    expect((await sdk.credits.void(grant.grant_id)).status).toBe('void');
    const code = uniqueId('cpn');
    await sdk.coupons.create({ coupon_id: code, name: 'Ten', percent_off: '10', duration: 'once', max_redemptions: 1 });
    expect((await sdk.coupons.redeem(customer, code)).coupon_id).toBe(code);
    expect((await sdk.coupons.get(code)).times_redeemed).toBe(1);
    expect(await sdk.coupons.redeem(customer, code).catch((e) => e)).toMatchObject({ status: 409 });
    const again = await sdk.invoiceAction(draft.invoice_id, 'void').catch((e) => e);
    expect(again).toMatchObject({ status: 409 });
  });
});
