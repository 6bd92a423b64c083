// Catalog cache across billing instances (cache.ts): two billing instances on the same Postgres, Redis
// and ClickHouse. A write through instance A must reach instance B's next check within milliseconds
// (pub/sub on redisKeys.billingCatalogChangedChannel), "not found" included; with B's subscriber
// connection killed, within the short unsubscribed TTL (1 s). Gauges: a SET through A is B's next
// answer, and stays so while the aggregator lags (it used to expire after 60 s and fall back to the
// older ClickHouse value).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { createRedis, redisKeys, type Config, type Redis } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling, type client } from './helpers.ts';
import { startBilling, type BillingHandle } from '../src/index.ts';
import { CatalogCache } from '../src/cache.ts';
import { UsageLedger } from '../src/usage/ledger.ts';

const LAG_OBSERVED_MS = 1_500; // how long the test watches B while the aggregator is not running
const RECONNECT_MS = 4_000; // B's subscriber stays down this long after a kill

let a: BillingHandle;
let b: BillingHandle;
let config: Config;
let redisA: Redis;
let redisB: Redis;
let cacheB: CatalogCache;
let aggregator: Aggregator | undefined;
let apiA: ReturnType<typeof client>;
let apiB: ReturnType<typeof client>;
let orgId: string;
const measured: Record<string, number> = {};

beforeAll(async () => {
  const base = await startTestBilling();
  config = base.config;
  await base.billing.stop();
  redisA = createRedis(config.redisUrl, { name: 'meterline-billing-test-a' });
  redisB = createRedis(config.redisUrl, { name: 'meterline-billing-test-b' });
  const cacheA = new CatalogCache().followChanges(redisA);
  cacheB = new CatalogCache().followChanges(redisB, { reconnectDelayMs: RECONNECT_MS });
  const opts = { port: 0, renewalIntervalMs: 0 };
  a = await startBilling(config, { redis: redisA, cache: cacheA, ledger: new UsageLedger(redisA) }, opts);
  b = await startBilling(config, { redis: redisB, cache: cacheB, ledger: new UsageLedger(redisB) }, opts);
  await waitFor(
    async () => cacheA.following && cacheB.following,
    (ok) => ok,
    { what: 'both instances subscribed', intervalMs: 20 },
  );
  const org = await createOrg(a.url);
  orgId = org.orgId;
  apiA = org.api;
  const { client: mk } = await import('./helpers.ts');
  apiB = mk(b.url, org.apiKey);
}, 120_000);

afterAll(async () => {
  await aggregator?.stop();
  await a?.stop();
  await b?.stop();
  await a?.deps.cache.close();
  await cacheB?.close();
  redisA?.disconnect();
  redisB?.disconnect();
  if (Object.keys(measured).length) console.log('[catalog cache: ms from A answering to B seeing it]', JSON.stringify(measured));
});

/** Polls B (no pause between probes) until `done`; returns ms since `since` (A's answer). */
async function msUntil<T>(probe: () => Promise<T>, done: (v: T) => boolean, since: number, what: string, timeoutMs = 3_000) {
  await waitFor(probe, done, { timeoutMs, intervalMs: 1, what });
  return Math.round(performance.now() - since);
}

const checkB = (customer_id: string, feature_id: string) => apiB.post('/v1/check', { customer_id, feature_id });
const entB = (customer: string, feature: string) => apiB.get(`/v1/customers/${customer}/entitlements/${feature}`);

describe('catalog cache across instances', () => {
  it('a cached "not found" on B is cleared by the creation through A', async () => {
    const c = uniqueId('c');
    expect((await apiA.post('/v1/customers', { customer_id: c })).status).toBe(201);
    const miss = await checkB(c, 'reports');
    expect(miss.status).toBe(404);
    expect(JSON.stringify(miss.body)).toContain('reports');
    expect((await checkB(c, 'reports')).status).toBe(404); // served from B's negative entry
    expect((await apiA.post('/v1/metrics', { metric_id: 'reports_run', event_name: 'report', aggregation: 'count' })).status).toBe(201);
    expect((await apiA.post('/v1/features', { feature_id: 'reports', type: 'boolean' })).status).toBe(201);
    const featureAt = performance.now();
    measured.feature_created = await msUntil(
      () => checkB(c, 'reports'),
      (r) => r.status === 200,
      featureAt,
      'B sees the feature',
    );
    expect((await checkB(c, 'reports')).body).toMatchObject({
      allowed: false,
      entitlement: { access_denied_reason: 'no_active_subscription' },
    });
    expect(
      (
        await apiA.post('/v1/plans', {
          plan_id: 'basic',
          name: 'Basic',
          interval: 'month',
          flat_fee: '0',
          entitlements: [{ feature_id: 'reports' }],
        })
      ).status,
    ).toBe(201);
    const c2 = uniqueId('c');
    expect((await checkB(c2, 'reports')).status).toBe(404); // customer does not exist yet
    expect((await apiA.post('/v1/customers', { customer_id: c2 })).status).toBe(201);
    expect((await apiA.post('/v1/subscriptions', { customer_id: c, plan_id: 'basic' })).status).toBe(201);
    const subAt = performance.now();
    measured.subscription_created = await msUntil(
      () => checkB(c, 'reports'),
      (r) => r.body?.allowed === true,
      subAt,
      'B sees the subscription',
    );
    expect((await checkB(c2, 'reports')).body).toMatchObject({ allowed: false });
    expect(measured.feature_created).toBeLessThan(250);
    expect(measured.subscription_created).toBeLessThan(250);
  });

  it("a limit changed through A (subscription change, feature archive) is B's next answer", async () => {
    expect((await apiA.post('/v1/metrics', { metric_id: 'exports_run', event_name: 'export', aggregation: 'count' })).status).toBe(201);
    expect((await apiA.post('/v1/features', { feature_id: 'exports', type: 'metered', metric_id: 'exports_run' })).status).toBe(201);
    expect((await apiA.post('/v1/features', { feature_id: 'audit', type: 'boolean' })).status).toBe(201);
    for (const [plan_id, limit] of [
      ['small', 10],
      ['tiny', 3],
    ] as const)
      expect(
        (
          await apiA.post('/v1/plans', {
            plan_id,
            name: plan_id,
            interval: 'month',
            flat_fee: '0',
            entitlements: [{ feature_id: 'exports', limit }, { feature_id: 'audit' }],
          })
        ).status,
      ).toBe(201);
    const c = uniqueId('c');
    expect((await apiA.post('/v1/customers', { customer_id: c })).status).toBe(201);
    const s = await apiA.post('/v1/subscriptions', { customer_id: c, plan_id: 'small' });
    expect(s.status).toBe(201);
    expect((await entB(c, 'exports')).body.usage_limit).toBe(10);
    expect((await entB(c, 'audit')).body.is_granted).toBe(true);
    const p = await apiA.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
      replace_immediately_type: 'change_subscription_plan',
      plan_id: 'tiny',
    });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    measured.plan_changed = await msUntil(
      () => entB(c, 'exports'),
      (r) => r.body?.usage_limit === 3,
      performance.now(),
      'B sees limit 3',
    );
    expect((await apiA.del('/v1/features/audit')).status).toBeLessThan(300);
    measured.feature_archived = await msUntil(
      () => entB(c, 'audit'),
      (r) => r.body?.access_denied_reason === 'feature_not_in_plan',
      performance.now(),
      'B sees the archive',
    );
    expect(measured.plan_changed).toBeLessThan(250);
    expect(measured.feature_archived).toBeLessThan(250);
  });

  it('a gauge SET through A is read by B at once, and stays while the aggregator lags', async () => {
    expect(
      (await apiA.post('/v1/metrics', { metric_id: 'seat_count', event_name: 'seats', aggregation: 'latest', property: 'seats' })).status,
    ).toBe(201);
    expect((await apiA.post('/v1/features', { feature_id: 'seats', type: 'metered', metric_id: 'seat_count' })).status).toBe(201);
    expect(
      (
        await apiA.post('/v1/plans', {
          plan_id: 'team',
          name: 'Team',
          interval: 'month',
          flat_fee: '0',
          entitlements: [{ feature_id: 'seats', limit: 10 }],
        })
      ).status,
    ).toBe(201);
    const c = uniqueId('c');
    expect((await apiA.post('/v1/customers', { customer_id: c })).status).toBe(201);
    expect((await apiA.post('/v1/subscriptions', { customer_id: c, plan_id: 'team' })).status).toBe(201);
    const usageB = async () => (await entB(c, 'seats')).body.current_usage as number;
    const ent0 = (await entB(c, 'seats')).body;
    expect(
      (await apiA.post('/v1/usage', { customer_id: c, feature_id: 'seats', value: 5, update_behavior: 'set' })).body.current_usage,
    ).toBe(5);
    expect(await usageB()).toBe(5);
    const set1 = await apiA.post('/v1/usage', { customer_id: c, feature_id: 'seats', value: 1, update_behavior: 'set' });
    expect(set1.body).toMatchObject({ previous_usage: 5, current_usage: 1 });
    expect(await usageB()).toBe(1); // the very next check on B
    expect((await apiB.post('/v1/check', { customer_id: c, feature_id: 'seats', required_balance: 9 })).body.allowed).toBe(true);
    expect((await apiB.post('/v1/check', { customer_id: c, feature_id: 'seats', required_balance: 10 })).body.allowed).toBe(false);
    const access = await apiB.get(`/v1/customer_access?customer_id=${c}&event_name=seats`);
    expect(access.body.usage_per_component?.[0]?.usage, JSON.stringify(access.body)).toBe(1);

    // No aggregator yet, i.e. the SET's event is not in ClickHouse (which says 0): B keeps answering 1
    // from the ledger, however long the aggregator lags.
    const until = Date.now() + LAG_OBSERVED_MS;
    while (Date.now() < until) expect(await usageB()).toBe(1);
    const key = redisKeys.billingUsage({ orgId, customerId: c, metricId: 'seat_count', metricVersion: 1 });
    expect(await redisA.zcard(key.grants)).toBeGreaterThan(0);

    // The aggregator catches up: ClickHouse shows 1 and its watermark passes the SET's offset, so the
    // ledger's entry is no longer counted; B keeps answering 1 (now from ClickHouse) throughout.
    aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_cat_agg') } });
    const from = encodeURIComponent(ent0.usage_period_start);
    const to = encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString());
    await waitFor(
      async () => ({
        usage: await usageB(),
        clickhouse: (await apiB.get(`/v1/usage?customer_id=${c}&feature_id=seats&from=${from}&to=${to}`)).body.total,
      }),
      (v) => {
        expect(v.usage).toBe(1);
        return v.clickhouse === 1;
      },
      { timeoutMs: 60_000, intervalMs: 50, what: 'ClickHouse shows the SET' },
    );
    expect(await usageB()).toBe(1);
  }, 90_000);

  it('with B unsubscribed (subscriber connection killed), changes still reach B within the short TTL', async () => {
    expect((await apiA.post('/v1/features', { feature_id: 'api_access', type: 'boolean' })).status).toBe(201);
    for (const plan_id of ['with_api', 'without_api'])
      expect(
        (
          await apiA.post('/v1/plans', {
            plan_id,
            name: plan_id,
            interval: 'month',
            flat_fee: '0',
            entitlements: plan_id === 'with_api' ? [{ feature_id: 'api_access' }] : [],
          })
        ).status,
      ).toBe(201);
    const c = uniqueId('c');
    expect((await apiA.post('/v1/customers', { customer_id: c })).status).toBe(201);
    const s = await apiA.post('/v1/subscriptions', { customer_id: c, plan_id: 'with_api' });
    expect((await checkB(c, 'api_access')).body.allowed).toBe(true);

    const name = cacheB.subscriberName!;
    const line = (String(await redisA.client('LIST')) ?? '').split('\n').find((l) => l.includes(` name=${name} `));
    expect(line, `subscriber ${name} in CLIENT LIST`).toBeTruthy();
    const id = /(?:^|\s)id=(\d+)/.exec(line!)![1]!;
    expect(await redisA.call('CLIENT', 'KILL', 'ID', id)).toBe(1);
    await waitFor(
      async () => cacheB.following,
      (f) => !f,
      { what: 'B notices the lost subscription', intervalMs: 5 },
    );

    expect((await checkB(c, 'api_access')).body.allowed).toBe(true); // cached again, now for at most 1 s
    const p = await apiA.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
      replace_immediately_type: 'change_subscription_plan',
      plan_id: 'without_api',
    });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    const at = performance.now();
    measured.unsubscribed_change = await msUntil(
      () => checkB(c, 'api_access'),
      (r) => r.body?.allowed === false,
      at,
      'B sees it via the TTL',
    );
    expect(cacheB.following).toBe(false); // seen through the short TTL, not a message
    expect(measured.unsubscribed_change).toBeLessThan(1_500);
    await waitFor(
      async () => cacheB.following,
      (f) => f,
      { timeoutMs: RECONNECT_MS + 10_000, what: 'B resubscribed', intervalMs: 20 },
    );
    // subscribed again: the next change is a message again
    const c3 = uniqueId('c');
    expect((await apiA.post('/v1/customers', { customer_id: c3 })).status).toBe(201);
    expect((await apiA.post('/v1/subscriptions', { customer_id: c3, plan_id: 'with_api' })).status).toBe(201);
    expect((await checkB(c3, 'api_access')).body.allowed).toBe(true);
    expect((await apiA.del('/v1/features/api_access')).status).toBeLessThan(300);
    const archivedAt = performance.now();
    measured.resubscribed_change = await msUntil(
      () => checkB(c3, 'api_access'),
      (r) => r.body?.allowed === false,
      archivedAt,
      'B sees it by message',
    );
    expect(measured.resubscribed_change).toBeLessThan(250);
  }, 60_000);
});
