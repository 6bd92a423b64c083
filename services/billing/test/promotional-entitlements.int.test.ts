// Promotional entitlements (issue #15 item 2) through the real pipeline: consuming checks produce to
// Kafka, the aggregator counts into ClickHouse, the usage ledger holds hard limits in between. Billing
// runs with a controlled clock (deps.now), so expiry is tested to the millisecond: the check at
// expires_at - 1 ms grants, the check at expires_at does not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import type { Config } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let config: Config;
let aggregator: Aggregator;
let org: Awaited<ReturnType<typeof createOrg>>;
let clock = Date.now();

beforeAll(async () => {
  ({ billing, config } = await startTestBilling({ deps: { now: () => new Date(clock) } }));
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_promo_agg') } });
  org = await createOrg(billing.url);
  const api = org.api;
  expect((await api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' })).status).toBe(201);
  for (const f of [
    { feature_id: 'api', type: 'metered', metric_id: 'api_calls' },
    { feature_id: 'sso', type: 'boolean' },
  ])
    expect((await api.post('/v1/features', f)).status).toBe(201);
  expect(
    (
      await api.post('/v1/plans', {
        plan_id: 'basic',
        name: 'Basic',
        interval: 'month',
        entitlements: [{ feature_id: 'api', limit: 5, limit_type: 'hard' }],
      })
    ).status,
  ).toBe(201);
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await aggregator?.stop();
});

async function customer(subscribed = false) {
  const c = uniqueId('c');
  expect((await org.api.post('/v1/customers', { customer_id: c })).status).toBe(201);
  if (subscribed) expect((await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: 'basic' })).status).toBe(201);
  return c;
}
const check = (c: string, feature: string, body: Record<string, unknown> = {}) =>
  org.api.post('/v1/check', { customer_id: c, feature_id: feature, ...body });

describe('promotional entitlements', () => {
  it('a customer without any plan passes consuming checks up to the promotional limit and not beyond; source promotional', async () => {
    clock = Date.now();
    const c = await customer();
    const before = await check(c, 'api');
    expect(before.body.allowed).toBe(false);
    expect(before.body.entitlement.access_denied_reason).toBe('no_active_subscription');

    const expires = new Date(clock + 3_600_000).toISOString();
    const g = await org.api.post(`/v1/customers/${c}/promotional_entitlements`, { feature_id: 'api', usage_limit: 3, expires_at: expires });
    expect(g.status, JSON.stringify(g.body)).toBe(201);
    expect(g.body).toMatchObject({
      feature_id: 'api',
      usage_limit: 3,
      has_unlimited_usage: false,
      period: 'custom',
      expires_at: expires,
      status: 'active',
    });

    for (let i = 0; i < 3; i++) {
      const r = await check(c, 'api', { send_event: true });
      expect(r.body.allowed, JSON.stringify(r.body)).toBe(true);
    }
    const over = await check(c, 'api', { send_event: true });
    expect(over.body.allowed).toBe(false);
    expect(over.body.entitlement).toMatchObject({
      access_denied_reason: 'usage_limit_exceeded',
      usage_limit: 3,
      current_usage: 3,
      source: 'promotional',
      expires_at: expires,
      subscription_id: null,
    });
    // the customer's entitlements list and customer_access show it with its source
    const all = await org.api.get(`/v1/customers/${c}/entitlements`);
    expect(all.body.data.map((e: any) => [e.feature_id, e.source, e.usage_limit])).toEqual([['api', 'promotional', 3]]);
    const access = await org.api.get(`/v1/customer_access?customer_id=${c}&feature_name=api`);
    expect(access.body).toMatchObject({ access: false, entitlement: { source: 'promotional' } });
    // the aggregator counts exactly the 3 granted units (nothing consumed by the denied check)
    const counted = await waitFor(
      () =>
        org.api.get(
          `/v1/usage?customer_id=${c}&metric_id=api_calls&from=${new Date(clock - 60_000).toISOString()}&to=${new Date(clock + 60_000).toISOString()}`,
        ),
      (r) => r.body.total === 3,
      { timeoutMs: 60_000, what: 'the aggregator counting 3 units' },
    );
    expect(counted.body.total).toBe(3);
  });

  it('a hard promotional limit holds under 12 concurrent consuming checks: exactly 4 pass', async () => {
    clock = Date.now();
    const c = await customer();
    expect(
      (await org.api.post(`/v1/customers/${c}/promotional_entitlements`, { feature_id: 'api', usage_limit: 4, period: 'one_month' }))
        .status,
    ).toBe(201);
    const rs = await Promise.all(Array.from({ length: 12 }, () => check(c, 'api', { send_event: true })));
    expect(rs.filter((r) => r.body.allowed).length).toBe(4);
    expect(rs.every((r) => r.status === 200)).toBe(true);
  });

  it('expires exactly at expires_at (read time, no job): granted 1 ms before, denied at the instant; listed as expired', async () => {
    const t0 = Date.now();
    clock = t0;
    const c = await customer();
    const expiresAt = t0 + 60_000;
    const g = await org.api.post(`/v1/customers/${c}/promotional_entitlements`, {
      feature_id: 'sso',
      expires_at: new Date(expiresAt).toISOString(),
    });
    expect(g.status, JSON.stringify(g.body)).toBe(201);
    expect((await check(c, 'sso')).body).toMatchObject({
      allowed: true,
      entitlement: { source: 'promotional', has_unlimited_usage: true },
    });
    clock = expiresAt - 1;
    expect((await check(c, 'sso')).body.allowed).toBe(true); // the snapshot is cached: still exact
    clock = expiresAt;
    const after = await check(c, 'sso');
    expect(after.body.allowed).toBe(false);
    expect(after.body.entitlement.access_denied_reason).toBe('no_active_subscription');
    expect((await org.api.get(`/v1/customers/${c}/entitlements`)).body.data).toEqual([]);
    expect((await org.api.get(`/v1/customers/${c}/promotional_entitlements`)).body.data).toEqual([]);
    const inactive = await org.api.get(`/v1/customers/${c}/promotional_entitlements?include_inactive=true`);
    expect(inactive.body.data.map((p: any) => [p.feature_id, p.status])).toEqual([['sso', 'expired']]);
  });

  it('combines with the plan: the most generous grant wins (promotion above the plan: promotional; below: plan)', async () => {
    clock = Date.now();
    const c = await customer(true); // basic: api limit 5
    expect((await org.api.get(`/v1/customers/${c}/entitlements/api`)).body).toMatchObject({ usage_limit: 5, source: 'plan' });
    await org.api.post(`/v1/customers/${c}/promotional_entitlements`, { feature_id: 'api', usage_limit: 2, period: 'one_week' });
    const lower = (await org.api.get(`/v1/customers/${c}/entitlements/api`)).body;
    expect(lower).toMatchObject({ usage_limit: 5, source: 'plan' });
    expect(lower.grants.map((g: any) => [g.source, g.usage_limit])).toEqual([
      ['plan', 5],
      ['promotional', 2],
    ]);
    // granting again replaces the promotion: now unlimited
    const up = await org.api.post(`/v1/customers/${c}/promotional_entitlements`, {
      feature_id: 'api',
      unlimited: true,
      period: 'one_week',
    });
    expect(up.body).toMatchObject({ has_unlimited_usage: true, usage_limit: null });
    expect(Date.parse(up.body.expires_at) - Date.parse(up.body.granted_at)).toBe(7 * 86_400_000);
    const higher = (await org.api.get(`/v1/customers/${c}/entitlements/api`)).body;
    expect(higher).toMatchObject({ has_unlimited_usage: true, usage_limit: null, source: 'promotional', subscription_id: null });
    const big = await check(c, 'api', { send_event: true, required_balance: 50 });
    expect(big.body.allowed).toBe(true);
    // revoked: the plan's limit of 5 is back, and 50 units are already used
    expect((await org.api.del(`/v1/customers/${c}/promotional_entitlements/api`)).status).toBe(200);
    const back = await check(c, 'api');
    expect(back.body).toMatchObject({ allowed: false, entitlement: { usage_limit: 5, source: 'plan' } });
  });

  it('revoke takes effect on the next check; a second revoke and other organizations get 404', async () => {
    clock = Date.now();
    const c = await customer();
    const g = await org.api.post(`/v1/customers/${c}/promotional_entitlements`, { feature_id: 'sso', period: 'lifetime' });
    expect(g.body).toMatchObject({ period: 'lifetime', expires_at: null, status: 'active' });
    expect((await check(c, 'sso')).body.allowed).toBe(true);
    const other = await createOrg(billing.url);
    expect((await other.api.del(`/v1/customers/${c}/promotional_entitlements/sso`)).status).toBe(404);
    expect((await other.api.get(`/v1/customers/${c}/promotional_entitlements`)).status).toBe(404);
    expect((await check(c, 'sso')).body.allowed).toBe(true);
    const r = await org.api.del(`/v1/customers/${c}/promotional_entitlements/sso`);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('revoked');
    expect((await check(c, 'sso')).body.allowed).toBe(false);
    expect((await org.api.del(`/v1/customers/${c}/promotional_entitlements/sso`)).status).toBe(404);
  });

  it('grant and revoke write entitlement.granted / entitlement.revoked webhook events (pending deliveries)', async () => {
    clock = Date.now();
    const o = await createOrg(billing.url);
    expect((await o.api.post('/v1/features', { feature_id: 'beta', type: 'boolean' })).status).toBe(201);
    expect((await o.api.post('/v1/customers', { customer_id: 'w1' })).status).toBe(201);
    const ep = await o.api.post('/v1/webhook_endpoints', {
      url: 'http://127.0.0.1:9/hook',
      event_types: ['entitlement.granted', 'entitlement.revoked'],
    });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    expect((await o.api.post('/v1/customers/w1/promotional_entitlements', { feature_id: 'beta', period: 'one_month' })).status).toBe(201);
    expect((await o.api.del('/v1/customers/w1/promotional_entitlements/beta')).status).toBe(200);
    const d = await o.api.get(`/v1/webhook_endpoints/${ep.body.endpoint_id}/deliveries`);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(d.body.data.map((x: any) => x.event_type).sort()).toEqual(['entitlement.granted', 'entitlement.revoked']);
  });

  it('rejects grants that do not fit the feature with precise 400s', async () => {
    clock = Date.now();
    const c = await customer();
    const bad = async (body: object) => (await org.api.post(`/v1/customers/${c}/promotional_entitlements`, body)).status;
    expect(await bad({ feature_id: 'api', period: 'one_week' })).toBe(400); // metered: limit or unlimited
    expect(await bad({ feature_id: 'api', usage_limit: 3, unlimited: true, period: 'one_week' })).toBe(400);
    expect(await bad({ feature_id: 'sso', usage_limit: 3, period: 'one_week' })).toBe(400); // boolean: no limit
    expect(await bad({ feature_id: 'sso' })).toBe(400); // no expiry given
    expect(await bad({ feature_id: 'sso', expires_at: new Date(clock - 1000).toISOString() })).toBe(400);
    expect(await bad({ feature_id: 'sso', period: 'forever' })).toBe(400);
    expect((await org.api.post(`/v1/customers/${c}/promotional_entitlements`, { feature_id: 'nope', period: 'one_week' })).status).toBe(
      404,
    );
    expect((await org.api.post('/v1/customers/nobody/promotional_entitlements', { feature_id: 'sso', period: 'one_week' })).status).toBe(
      404,
    );
  });
});
