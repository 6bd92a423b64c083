// The guarantee of a consuming check (services/billing/README.md, "Usage state"), through the real
// pipeline — gateway -> Kafka -> aggregator -> ClickHouse, two billing instances sharing Redis:
//
//   every unit granted by a check, and every gateway event visible in ClickHouse at least `maxAge`
//   before the check, is counted; a hard limit is never exceeded by them.
//
// 1. The scenario from issue #11: an idle cached usage, then usage arriving through the gateway
//    between checks: the next consuming check must not grant past the limit.
// 2. A sweep of random interleavings (BILLING_GUARANTEE_OPS, default 1,000; seed
//    BILLING_GUARANTEE_SEED) of gateway batches, consuming checks on either instance, gauge SETs read
//    by the other instance at once, and waits that age the caches (instance A's consuming checks may
//    use readings 250 ms old, B's 1 s, the default). Expected values are the test's own bookkeeping.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type Config, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { client, createOrg, startTestBilling } from './helpers.ts';
import { startBilling, type BillingHandle } from '../src/index.ts';

const LIMIT = 60;
const SEATS_LIMIT = 10;
const MAX_AGE = { a: 250, b: 1_000 } as const;
const OPS = Number(process.env.BILLING_GUARANTEE_OPS ?? 1_000);
const SEED = Number(process.env.BILLING_GUARANTEE_SEED ?? Date.now() % 1_000_000);

let a: BillingHandle;
let b: BillingHandle;
let config: Config;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;
let apiB: ReturnType<typeof client>;

beforeAll(async () => {
  ({ billing: a, config } = await startTestBilling({ env: { GATEWAY_PORT: '0' }, usageTtlMs: MAX_AGE.a }));
  b = await startBilling(config, {}, { port: 0, renewalIntervalMs: 0, usageTtlMs: MAX_AGE.b });
  pg = createPostgres(config.postgresUrl, { max: 4 });
  gateway = await startGateway(config, { pg });
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_guarantee') } });
  org = await createOrg(a.url);
  apiB = client(b.url, org.apiKey);
  for (const m of [
    { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' },
    { metric_id: 'seat_count', event_name: 'seats', aggregation: 'latest', property: 'seats' },
  ])
    expect((await org.api.post('/v1/metrics', m)).status).toBe(201);
  for (const f of [
    { feature_id: 'api', type: 'metered', metric_id: 'api_calls' },
    { feature_id: 'seats', type: 'metered', metric_id: 'seat_count' },
  ])
    expect((await org.api.post('/v1/features', f)).status).toBe(201);
  for (const [plan_id, limit] of [
    ['basic', 20],
    ['sweep', LIMIT],
  ] as const)
    expect(
      (
        await org.api.post('/v1/plans', {
          plan_id,
          name: plan_id,
          interval: 'month',
          flat_fee: '0',
          entitlements: [
            { feature_id: 'api', limit, limit_type: 'hard' },
            { feature_id: 'seats', limit: SEATS_LIMIT },
          ],
        })
      ).status,
    ).toBe(201);
}, 180_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
});

async function subscribe(customerId: string, plan: string) {
  expect((await org.api.post('/v1/customers', { customer_id: customerId })).status).toBe(201);
  expect((await org.api.post('/v1/subscriptions', { customer_id: customerId, plan_id: plan })).status).toBe(201);
}

async function gatewayEvents(customerId: string, n: number): Promise<void> {
  const events = Array.from({ length: n }, () => ({ customer_id: customerId, event_name: 'api_call', idempotency_id: uniqueId('e') }));
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
    body: JSON.stringify(events),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** ClickHouse's own total for the customer this period (GET /v1/usage reads the aggregates, uncached). */
async function clickhouseTotal(customerId: string): Promise<number> {
  const from = encodeURIComponent(new Date(Date.now() - 40 * 86_400_000).toISOString());
  const to = encodeURIComponent(new Date(Date.now() + 86_400_000).toISOString());
  const r = await org.api.get(`/v1/usage?customer_id=${customerId}&feature_id=api&from=${from}&to=${to}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.total as number;
}

const waitVisible = (customerId: string, atLeast: number) =>
  waitFor(
    () => clickhouseTotal(customerId),
    (t) => t >= atLeast,
    { timeoutMs: 30_000, intervalMs: 25, what: `ClickHouse shows ${atLeast} for ${customerId}` },
  );

/** The documented bound: a reading used by a check is at most maxAge old, so wait it out once. */
const outlive = (ms: number) => new Promise((r) => setTimeout(r, ms + 10));

const consume = (api: ReturnType<typeof client>, customer_id: string, required_balance: number) =>
  api.post('/v1/check', { customer_id, feature_id: 'api', required_balance, send_event: true });

describe('usage guarantee of consuming checks', () => {
  it('issue #11 scenario: usage through the gateway after an idle cached check never over-grants', async () => {
    const c = uniqueId('c');
    await subscribe(c, 'basic');
    // a check caches usage 0 on both instances
    for (const api of [org.api, apiB]) expect((await api.post('/v1/check', { customer_id: c, feature_id: 'api' })).body.usage).toBe(0);
    await gatewayEvents(c, 20);
    await waitVisible(c, 20);
    await outlive(MAX_AGE.b);
    for (const api of [org.api, apiB]) {
      const r = await consume(api, c, 20);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ allowed: false, usage: 20, events_recorded: 0 });
      expect(r.body.entitlement.access_denied_reason).toBe('usage_limit_exceeded');
    }

    // usage arriving between consuming checks: 5 granted, 10 through the gateway, then 6 is too many
    const c2 = uniqueId('c');
    await subscribe(c2, 'basic');
    expect((await consume(org.api, c2, 5)).body).toMatchObject({ allowed: true, usage: 5, events_recorded: 5 });
    await gatewayEvents(c2, 10);
    await waitVisible(c2, 15);
    await outlive(MAX_AGE.b);
    expect((await consume(apiB, c2, 6)).body).toMatchObject({ allowed: false, usage: 15 });
    expect((await consume(org.api, c2, 5)).body).toMatchObject({ allowed: true, usage: 20 });
    expect((await consume(apiB, c2, 1)).body).toMatchObject({ allowed: false, usage: 20 });
    await waitVisible(c2, 20);
    expect(await clickhouseTotal(c2)).toBe(20);
  }, 90_000);

  it(`${OPS} random interleavings across two instances keep the guarantee (seed ${SEED})`, async () => {
    let seed = SEED >>> 0;
    const rand = () => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    interface Book {
      granted: number;
      gatewaySent: number;
      /** gateway units known visible in ClickHouse, with when they were seen */
      visible: { units: number; at: number }[];
      /** gateway units sent and the ClickHouse total that proves them visible */
      unconfirmed: { units: number; threshold: number }[];
    }
    const customers = Array.from({ length: 10 }, () => uniqueId('sw'));
    for (const c of customers) await subscribe(c, 'sweep');
    const book = new Map<string, Book>(customers.map((c) => [c, { granted: 0, gatewaySent: 0, visible: [], unconfirmed: [] }]));
    const instances = [
      { name: 'a', api: org.api, maxAge: MAX_AGE.a },
      { name: 'b', api: apiB, maxAge: MAX_AGE.b },
    ];
    const tally = { checks: 0, granted: 0, denied: 0, gateway: 0, sets: 0, waits: 0, asserted: 0 };
    const lowerBound = (bk: Book, sentAt: number, maxAge: number) =>
      bk.granted + bk.visible.filter((v) => v.at <= sentAt - maxAge).reduce((s, v) => s + v.units, 0);

    for (let i = 0; i < OPS; i++) {
      const c = customers[int(0, customers.length - 1)]!;
      const bk = book.get(c)!;
      const inst = instances[int(0, 1)]!;
      const other = instances.find((x) => x !== inst)!;
      const roll = rand();
      if (roll < 0.28) {
        const n = int(1, 3);
        await gatewayEvents(c, n);
        bk.gatewaySent += n;
        tally.gateway++;
        // every earlier event of this customer (granted or sent) is ahead of it on the same partition
        bk.unconfirmed.push({ units: n, threshold: bk.granted + bk.gatewaySent });
        if (rand() < 0.5) {
          const total = await waitVisible(c, bk.granted + bk.gatewaySent);
          const at = Date.now();
          for (const u of bk.unconfirmed.splice(0)) if (u.threshold <= total) bk.visible.push({ units: u.units, at });
        }
      } else if (roll < 0.8) {
        const required = int(1, 4);
        const sentAt = Date.now();
        const bound = lowerBound(bk, sentAt, inst.maxAge);
        const r = await consume(inst.api, c, required);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        tally.checks++;
        const ctx = `op ${i} seed ${SEED} ${inst.name} ${c} required ${required} bound ${bound} ${JSON.stringify(r.body)}`;
        // the check counted at least every granted unit and every gateway unit visible maxAge ago
        expect(r.body.usage - (r.body.allowed ? required : 0), ctx).toBeGreaterThanOrEqual(bound);
        if (r.body.allowed) {
          expect(bound + required, `over-grant: ${ctx}`).toBeLessThanOrEqual(LIMIT);
          expect(r.body.events_recorded, ctx).toBe(required);
          bk.granted += required;
          tally.granted++;
        } else {
          expect(r.body.usage + required, ctx).toBeGreaterThan(LIMIT);
          tally.denied++;
        }
        tally.asserted++;
      } else if (roll < 0.95) {
        // a gauge SET through one instance is the next check's usage on the other, at once
        const v = int(0, SEATS_LIMIT);
        const set = await inst.api.post('/v1/usage', { customer_id: c, feature_id: 'seats', value: v, update_behavior: 'set' });
        expect(set.status, JSON.stringify(set.body)).toBe(200);
        const seen = await other.api.get(`/v1/customers/${c}/entitlements/seats`);
        expect(seen.body, `op ${i} seed ${SEED}: SET ${v} on ${inst.name}`).toMatchObject({ current_usage: v });
        const over = await other.api.post('/v1/check', { customer_id: c, feature_id: 'seats', required_balance: SEATS_LIMIT - v + 1 });
        expect(over.body.allowed, `op ${i} seed ${SEED}`).toBe(false);
        tally.sets++;
      } else {
        await outlive(int(0, 800));
        tally.waits++;
      }
    }

    // Quiescent: ClickHouse holds exactly every granted unit plus every gateway unit (none lost, none
    // doubled), and both instances then answer exactly that.
    for (const [c, bk] of book) {
      const expected = bk.granted + bk.gatewaySent;
      await waitVisible(c, expected);
      expect(await clickhouseTotal(c), c).toBe(expected);
    }
    // (reads may be served a reading up to BILLING_USAGE_READ_STALE_MS old while it refreshes: poll,
    // and never see more than was used)
    for (const [c, bk] of book)
      for (const inst of instances)
        await waitFor(
          async () => (await inst.api.get(`/v1/customers/${c}/entitlements/api`)).body.current_usage as number,
          (u) => {
            expect(u, `${inst.name} ${c}`).toBeLessThanOrEqual(bk.granted + bk.gatewaySent);
            return u === bk.granted + bk.gatewaySent;
          },
          { timeoutMs: 15_000, intervalMs: 100, what: `${inst.name} answers ${c}'s usage exactly` },
        );
    console.log('[usage guarantee sweep]', JSON.stringify({ seed: SEED, ops: OPS, ...tally }));
    expect(tally.granted).toBeGreaterThan(0);
    expect(tally.denied).toBeGreaterThan(0);
  }, 600_000);
});
