// Entitlements, check + send_event, customer_access, set/report usage and the usage query, through
// the real pipeline: gateway (HTTP) or billing's own producer -> Kafka -> aggregator -> ClickHouse.
// Also the concurrency bar (100 concurrent consuming checks with 10 units left allow exactly 10)
// and measured freshness. Check latency under load is a benchmark (bench/lib/entitlement.ts), not a test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync, mkdirSync } from 'node:fs';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type Config, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let config: Config;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;
const measured: Record<string, unknown> = {};

async function sendViaGateway(apiKey: string, events: object[]): Promise<number> {
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(events),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return performance.now();
}

beforeAll(async () => {
  ({ billing, config } = await startTestBilling({ env: { GATEWAY_PORT: '0' } }));
  pg = createPostgres(config.postgresUrl, { max: 4 });
  gateway = await startGateway(config, { pg });
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_bill_agg') } });
  org = await createOrg(billing.url);
  const api = org.api;
  for (const m of [
    { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' },
    { metric_id: 'seat_count', event_name: 'seats', aggregation: 'latest', property: 'seats' },
    {
      metric_id: 'tokens',
      event_name: 'llm',
      aggregation: 'sum',
      property: 'tokens',
      filters: [{ property: 'model', operator: 'equals', value: 'big' }],
    },
  ])
    expect((await api.post('/v1/metrics', m)).status).toBe(201);
  for (const f of [
    { feature_id: 'slack_integration', type: 'boolean' },
    { feature_id: 'sso', type: 'boolean' },
    { feature_id: 'api', type: 'metered', metric_id: 'api_calls' },
    { feature_id: 'seats', type: 'metered', metric_id: 'seat_count' },
    { feature_id: 'llm_tokens', type: 'metered', metric_id: 'tokens' },
  ])
    expect((await api.post('/v1/features', f)).status).toBe(201);
  expect(
    (
      await api.post('/v1/plans', {
        plan_id: 'pro',
        name: 'Pro',
        interval: 'month',
        flat_fee: '10',
        components: [{ metric_id: 'api_calls', free_units: 5, pricing: { model: 'per_unit', unit_price: '0.01' } }],
        entitlements: [
          { feature_id: 'slack_integration' },
          { feature_id: 'api', limit: 10, limit_type: 'hard' },
          { feature_id: 'seats', limit: 5 },
          { feature_id: 'llm_tokens', limit: 1000, limit_type: 'soft', reset_period: 'day' },
        ],
      })
    ).status,
  ).toBe(201);
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
  if (Object.keys(measured).length) {
    mkdirSync(new URL('../../../.cache/billing/', import.meta.url), { recursive: true });
    writeFileSync(new URL('../../../.cache/billing/entitlements-latest.json', import.meta.url), JSON.stringify(measured, null, 2) + '\n');
    console.log('[billing measurements]', JSON.stringify(measured));
  }
});

async function subscribed(customerId: string) {
  expect((await org.api.post('/v1/customers', { customer_id: customerId })).status).toBe(201);
  expect((await org.api.post('/v1/subscriptions', { customer_id: customerId, plan_id: 'pro' })).status).toBe(201);
}

describe('entitlements', () => {
  it('answers boolean, missing, unsubscribed and unknown cases precisely', async () => {
    const c = uniqueId('c');
    await subscribed(c);
    const all = await org.api.get(`/v1/customers/${c}/entitlements`);
    expect(all.status).toBe(200);
    expect(all.body.data.map((e: any) => e.feature_id)).toEqual(['api', 'llm_tokens', 'seats', 'slack_integration']);
    const slack = all.body.data.find((e: any) => e.feature_id === 'slack_integration');
    expect(slack).toMatchObject({ is_granted: true, feature_type: 'boolean', access_denied_reason: null });
    const api = await org.api.get(`/v1/customers/${c}/entitlements/api`);
    expect(api.body).toMatchObject({
      is_granted: true,
      usage_limit: 10,
      current_usage: 0,
      requested_usage: 1,
      has_unlimited_usage: false,
      reset_period: 'billing_period',
      limit_type: 'hard',
    });
    expect(api.body.usage_period_start).toBeTruthy();
    expect(api.body.usage_period_end).toBeTruthy();
    const tokens = await org.api.get(`/v1/customers/${c}/entitlements/llm_tokens`);
    expect(tokens.body).toMatchObject({ reset_period: 'day', limit_type: 'soft' });
    expect(Date.parse(tokens.body.usage_period_end) - Date.parse(tokens.body.usage_period_start)).toBe(86_400_000);
    expect((await org.api.get(`/v1/customers/${c}/entitlements/sso`)).body).toMatchObject({
      is_granted: false,
      access_denied_reason: 'feature_not_in_plan',
    });
    expect((await org.api.get(`/v1/customers/${c}/entitlements/nope`)).status).toBe(404);
    expect((await org.api.get('/v1/customers/nobody/entitlements')).status).toBe(404);
    const lone = uniqueId('c');
    await org.api.post('/v1/customers', { customer_id: lone });
    expect((await org.api.get(`/v1/customers/${lone}/entitlements/slack_integration`)).body).toMatchObject({
      is_granted: false,
      access_denied_reason: 'no_active_subscription',
    });
    expect((await org.api.get(`/v1/customer_access?customer_id=${c}&feature_name=slack_integration`)).body).toMatchObject({ access: true });
    expect((await org.api.get(`/v1/customer_access?customer_id=${c}&feature_name=sso`)).body).toMatchObject({
      access: false,
      access_denied_reason: 'feature_not_in_plan',
    });
    expect((await org.api.get(`/v1/customer_access?customer_id=${c}`)).status).toBe(400);
    expect((await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: -1 })).status).toBe(400);
    expect((await org.api.post('/v1/check', { customer_id: c, feature_id: 'slack_integration' })).body).toMatchObject({
      allowed: true,
      unlimited: true,
    });
  });

  it('sees events the gateway accepted moments ago (freshness measured), customer_access by event_name free/total', async () => {
    const c = uniqueId('c');
    await subscribed(c);
    const fresh: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = (await org.api.get(`/v1/customers/${c}/entitlements/api`)).body.current_usage;
      const acceptedAt = await sendViaGateway(org.apiKey, [
        { customer_id: c, event_name: 'api_call', idempotency_id: uniqueId('e'), properties: {} },
      ]);
      await waitFor(
        () => org.api.get(`/v1/customers/${c}/entitlements/api`),
        (r) => r.body.current_usage === before + 1,
        { intervalMs: 20, timeoutMs: 30_000, what: 'usage visible to entitlement checks' },
      );
      fresh.push(performance.now() - acceptedAt);
    }
    measured.freshness_ms = { samples: fresh.map((x) => Math.round(x)), max: Math.round(Math.max(...fresh)) };
    expect((await org.api.get(`/v1/customer_access?customer_id=${c}&event_name=api_call&event_limit_type=free`)).body).toMatchObject({
      access: true,
      usage_per_component: [expect.objectContaining({ usage: 4, free_units: 5, total_limit: 10 })],
    });
    await sendViaGateway(org.apiKey, [{ customer_id: c, event_name: 'api_call', idempotency_id: uniqueId('e') }]);
    await waitFor(
      () => org.api.get(`/v1/customer_access?customer_id=${c}&event_name=api_call&event_limit_type=free`),
      (r) => r.body.access === false,
      { intervalMs: 50, what: 'free units used' },
    );
    expect((await org.api.get(`/v1/customer_access?customer_id=${c}&event_name=api_call&event_limit_type=total`)).body).toMatchObject({
      access: true,
    });
    expect((await org.api.get(`/v1/customer_access?customer_id=${c}&event_name=unknown_event`)).body).toMatchObject({
      access: false,
      access_denied_reason: 'event_not_in_plan',
    });
  });

  it('check with send_event consumes through the pipeline; a hard limit denies when reached', async () => {
    const c = uniqueId('c');
    await subscribed(c);
    const r = await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 3, send_event: true });
    expect(r.body).toMatchObject({ allowed: true, usage: 3, balance: 7, events_recorded: 3 });
    const over = await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 8, send_event: true });
    expect(over.body).toMatchObject({ allowed: false, events_recorded: 0 });
    expect(over.body.entitlement.access_denied_reason).toBe('requested_usage_exceeds_limit');
    // the consumed units arrive in ClickHouse through Kafka and the aggregator
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const from = new Date(Date.now() - 3_600_000).toISOString();
    await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=${from}&to=${to}`),
      (u) => u.body.total === 3,
      { what: 'consumed units in ClickHouse' },
    );
    expect(
      (await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 7, send_event: true })).body,
    ).toMatchObject({ allowed: true, usage: 10, balance: 0 });
    const denied = await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', send_event: true });
    expect(denied.body.allowed).toBe(false);
    expect(denied.body.entitlement.access_denied_reason).toBe('usage_limit_exceeded');
    await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=${from}&to=${to}`),
      (u) => u.body.total === 10,
      { what: 'all consumed units in ClickHouse' },
    );
    // soft limits report but never deny
    const soft = await org.api.post('/v1/check', { customer_id: c, feature_id: 'llm_tokens', required_balance: 1500, send_event: true });
    expect(soft.body).toMatchObject({ allowed: true, usage: 1500, events_recorded: 1 });
    // the recorded event satisfies the metric's filter (model = big), so the aggregates count it
    await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&feature_id=llm_tokens&from=${from}&to=${to}`),
      (u) => u.body.total === 1500,
      { what: 'tokens in ClickHouse' },
    );
  });

  it('100 concurrent check + send_event with 10 units left allow exactly 10', async () => {
    const c = uniqueId('c');
    await subscribed(c);
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: 100 }, () => org.api.post('/v1/check', { customer_id: c, feature_id: 'api', send_event: true })),
    );
    measured.concurrent_100_checks_ms = Math.round(performance.now() - t0);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.body.allowed).length).toBe(10);
    expect(results.filter((r) => r.body.allowed).reduce((s, r) => s + r.body.events_recorded, 0)).toBe(10);
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    // exactly 10 events reach the aggregates, and afterwards the answer stays "no"
    await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=${from}&to=${to}`),
      (u) => u.body.total === 10,
      { what: '10 events in ClickHouse' },
    );
    expect((await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', send_event: true })).body.allowed).toBe(false);
    expect((await org.api.get(`/v1/customers/${c}/entitlements/api`)).body).toMatchObject({
      current_usage: 10,
      is_granted: false,
      access_denied_reason: 'usage_limit_exceeded',
    });
  });

  it('set_usage (SET) for gauges like seats and report_usage (DELTA)', async () => {
    const c = uniqueId('c');
    await subscribed(c);
    const s = await org.api.post('/v1/usage', { customer_id: c, feature_id: 'seats', value: 3, update_behavior: 'set' });
    expect(s.body).toMatchObject({ previous_usage: 0, current_usage: 3, events_recorded: 1 });
    expect((await org.api.get(`/v1/customers/${c}/entitlements/seats`)).body.current_usage).toBe(3); // immediately, before ClickHouse
    expect((await org.api.post('/v1/check', { customer_id: c, feature_id: 'seats', required_balance: 3 })).body.allowed).toBe(false);
    expect((await org.api.post('/v1/check', { customer_id: c, feature_id: 'seats', required_balance: 2 })).body.allowed).toBe(true);
    expect(
      (await org.api.post('/v1/usage', { customer_id: c, feature_id: 'seats', value: 1, update_behavior: 'set' })).body.current_usage,
    ).toBe(1);
    expect((await org.api.get(`/v1/customers/${c}/entitlements/seats`)).body.current_usage).toBe(1);
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&feature_id=seats&from=${from}&to=${to}`),
      (u) => u.body.total === 1,
      { what: 'latest seats in ClickHouse' },
    );
    const d = await org.api.post('/v1/usage', { customer_id: c, feature_id: 'api', value: 2 });
    expect(d.body).toMatchObject({ update_behavior: 'delta', current_usage: 2, events_recorded: 2 });
    await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=${from}&to=${to}`),
      (u) => u.body.total === 2,
      { what: 'reported api calls in ClickHouse' },
    );
    expect((await org.api.post('/v1/usage', { customer_id: c, feature_id: 'slack_integration', value: 1 })).status).toBe(400);
    expect((await org.api.post('/v1/usage', { customer_id: c, feature_id: 'api', value: 2, update_behavior: 'set' })).status).toBe(400);
  });

  it('usage query per hour and day for dashboards, with precise 400s', async () => {
    const c = uniqueId('c');
    await subscribed(c);
    const hourAgo = Date.now() - 3_600_000;
    await sendViaGateway(org.apiKey, [
      { customer_id: c, event_name: 'api_call', idempotency_id: uniqueId('e'), time_created: new Date(hourAgo).toISOString() },
      { customer_id: c, event_name: 'api_call', idempotency_id: uniqueId('e'), time_created: new Date(hourAgo).toISOString() },
      { customer_id: c, event_name: 'api_call', idempotency_id: uniqueId('e') },
    ]);
    const from = new Date(Date.now() - 4 * 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const hourly = await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&metric_id=api_calls&from=${from}&to=${to}&window=hour`),
      (u) => u.body.total === 3,
      { what: 'hourly usage' },
    );
    expect(hourly.body.data.map((d: any) => d.value)).toEqual([2, 1]);
    expect(hourly.body.data.every((d: any) => Date.parse(d.window_start) % 3_600_000 === 0)).toBe(true);
    expect(hourly.body.metric_version).toBe(1);
    // the aggregator's backfill of the metric version (core's metricVersionStatus) finishes and billing reports it
    await waitFor(
      () => org.api.get(`/v1/usage?customer_id=${c}&metric_id=api_calls&from=${from}&to=${to}`),
      (u) => u.body.metric_version_status === 'ready',
      { what: 'metric version ready' },
    );
    const daily = await org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=${from}&to=${to}&window=day`);
    expect(daily.body.data.reduce((s: number, d: any) => s + d.value, 0)).toBe(3);
    expect((await org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=${to}&to=${from}`)).status).toBe(400);
    expect((await org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&metric_id=api_calls&from=${from}&to=${to}`)).status).toBe(400);
    expect((await org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=${from}&to=${to}&window=week`)).status).toBe(400);
    expect((await org.api.get(`/v1/usage?customer_id=${c}&feature_id=api&from=yesterday&to=${to}`)).status).toBe(400);
  });
});
