// Every pricing model closing a real period through the real pipeline (gateway -> Kafka -> aggregator
// -> ClickHouse -> billing worker), on a subscription anchored on October 31 (so periods end on the last
// day of a 30-day and a 31-day month). Expected amounts are computed here with decimal.js from the
// events the test sent, never by the code under test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimal } from 'decimal.js';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { ADMIN_SECRET, client, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;

const START = '2026-10-31T00:00:00.000Z';
const END_1 = '2026-11-30T00:00:00.000Z'; // 30-day November
const END_2 = '2026-12-31T00:00:00.000Z'; // 31-day December
const CALLS = 17;
const GB = ['0.1', '0.2', '3.5', '2.45'];

beforeAll(async () => {
  const started = await startTestBilling({ env: { GATEWAY_PORT: '0' } });
  billing = started.billing;
  const config = started.config;
  pg = createPostgres(config.postgresUrl, { max: 4 });
  gateway = await startGateway(config, { pg });
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_pricing') } });
  org = await createOrg(billing.url);
  const api = org.api;
  expect((await api.put('/v1/settings/invoicing', { grace_period_seconds: 0 })).status).toBe(200);
  expect((await api.post('/v1/metrics', { metric_id: 'calls', event_name: 'call', aggregation: 'count' })).status).toBe(201);
  expect((await api.post('/v1/metrics', { metric_id: 'gb', event_name: 'storage', aggregation: 'sum', property: 'gb' })).status).toBe(201);
  const plans = [
    {
      plan_id: 'tiers',
      name: 'Tiers',
      interval: 'month',
      flat_fee: '0',
      components: [
        {
          metric_id: 'calls',
          free_units: 2,
          pricing: {
            model: 'graduated',
            tiers: [
              { up_to: 10, unit_price: '0.10' },
              { up_to: null, unit_price: '0.05' },
            ],
          },
        },
        {
          metric_id: 'gb',
          pricing: {
            model: 'volume',
            tiers: [
              { up_to: 5, unit_price: '1.00' },
              { up_to: null, unit_price: '0.80' },
            ],
          },
        },
      ],
    },
    {
      plan_id: 'packs',
      name: 'Packs',
      interval: 'month',
      flat_fee: '0',
      components: [
        { metric_id: 'calls', pricing: { model: 'package', package_size: 10, package_price: '3.00' } },
        { metric_id: 'gb', pricing: { model: 'per_unit', unit_price: '0.15' } },
      ],
    },
  ];
  for (const p of plans) expect((await api.post('/v1/plans', p)).status).toBe(201);
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
});

async function send(customerId: string, at = '2026-11-15T12:00:00.000Z') {
  const events = [
    ...Array.from({ length: CALLS }, () => ({
      customer_id: customerId,
      event_name: 'call',
      idempotency_id: uniqueId('e'),
      time_created: at,
    })),
    ...GB.map((gb) => ({
      customer_id: customerId,
      event_name: 'storage',
      idempotency_id: uniqueId('e'),
      time_created: at,
      properties: { gb },
    })),
  ];
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
    body: JSON.stringify(events),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

const half = (d: Decimal) => d.toDecimalPlaces(2, Decimal.ROUND_HALF_EVEN).toFixed(2);

describe('pricing models at period close', () => {
  it('graduated + free units, volume, package, per unit: amounts on the invoice; periods end on month ends', async () => {
    for (const plan of ['tiers', 'packs']) {
      const c = uniqueId(plan);
      await org.api.post('/v1/customers', { customer_id: c });
      const s = await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: plan, start_date: START });
      expect(s.status, JSON.stringify(s.body)).toBe(201);
      await send(c);
      await waitFor(
        async () =>
          (await org.api.get(`/v1/usage?customer_id=${c}&metric_id=calls&from=${START}&to=${END_1}`)).body.total === CALLS &&
          (await org.api.get(`/v1/usage?customer_id=${c}&metric_id=gb&from=${START}&to=${END_1}`)).body.total > 6,
        (ok) => ok,
        { timeoutMs: 30_000, intervalMs: 50, what: `usage visible for ${c}` },
      );
      // the subscription was created with its first period already over: a draft; the worker finalizes it
      const run = await client(billing.url, undefined, { 'x-admin-secret': ADMIN_SECRET }).post(
        `/admin/organizations/${org.orgId}/billing_run`,
        {},
      );
      expect(run.status).toBe(200);
      const inv = ((await org.api.get(`/v1/invoices?subscription_id=${s.body.subscription_id}`)).body.data as any[]).find(
        (i) => i.reason === 'period_close',
      );
      expect(inv).toMatchObject({ status: 'finalized', period_start: START, period_end: END_1 });
      expect((await org.api.get(`/v1/subscriptions/${s.body.subscription_id}`)).body).toMatchObject({
        current_period_start: END_1,
        current_period_end: END_2,
      });
      const gb = GB.reduce((a, g) => a.plus(g), new Decimal(0)); // 6.25 exactly
      const lines = Object.fromEntries(inv.line_items.map((l: any) => [l.metric_id, l]));
      let calls: Decimal;
      let storage: Decimal;
      if (plan === 'tiers') {
        const billable = CALLS - 2; // free units first
        calls = new Decimal(Math.min(billable, 10)).times('0.10').plus(new Decimal(Math.max(0, billable - 10)).times('0.05'));
        storage = gb.times(gb.gt(5) ? '0.80' : '1.00'); // volume: one tier prices every unit
      } else {
        calls = new Decimal(Math.ceil(CALLS / 10)).times('3.00');
        storage = gb.times('0.15'); // 0.9375 -> 0.94
      }
      expect([lines.calls.quantity, lines.calls.amount_due]).toEqual([String(CALLS), half(calls)]);
      expect([lines.gb.quantity, lines.gb.amount_due]).toEqual([gb.toFixed(), half(storage)]);
      expect(inv.total).toBe(half(new Decimal(half(calls)).plus(half(storage))));
    }
  }, 120_000);

  it('an upgrade and a downgrade mid-period: each part of the usage is priced by the plan in force', async () => {
    const c = uniqueId('chg');
    await org.api.post('/v1/customers', { customer_id: c });
    const start = '2026-11-20T00:00:00.000Z';
    const end = '2026-12-20T00:00:00.000Z';
    const s = await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: 'tiers', start_date: start });
    const sub = s.body.subscription_id as string;
    const visible = (n: number) =>
      waitFor(
        async () => (await org.api.get(`/v1/usage?customer_id=${c}&metric_id=calls&from=${start}&to=${end}`)).body.total as number,
        (t) => t === n,
        { timeoutMs: 30_000, intervalMs: 50, what: `${n} calls for ${c}` },
      );
    const change = async (plan_id: string) => {
      const r = await org.api.patch(`/v1/subscriptions/${sub}`, { replace_immediately_type: 'change_subscription_plan', plan_id });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return Date.parse(r.body.plan_started_at);
    };
    // part 1 on tiers (before the upgrade), part 2 on packs, part 3 on tiers again (after the downgrade)
    await send(c, '2026-11-25T00:00:00.000Z');
    await visible(CALLS);
    const up = await change('packs');
    await send(c, new Date(up + 1).toISOString());
    await visible(2 * CALLS);
    const down = await change('tiers');
    expect(down).toBeGreaterThan(up);
    await send(c, new Date(down + 60_000).toISOString());
    await visible(3 * CALLS);
    const run = await client(billing.url, undefined, { 'x-admin-secret': ADMIN_SECRET }).post(
      `/admin/organizations/${org.orgId}/billing_run`,
      {
        as_of: new Date(Date.parse(end) + 1_000).toISOString(),
      },
    );
    expect(run.status).toBe(200);
    const invs = ((await org.api.get(`/v1/invoices?subscription_id=${sub}`)).body.data as any[]).filter((i) =>
      ['plan_change_usage', 'period_close'].includes(i.reason),
    );
    const byStart = Object.fromEntries(invs.map((i) => [i.period_start, i]));
    const gb = GB.reduce((a, g) => a.plus(g), new Decimal(0));
    const tiers = half(
      new Decimal(Math.min(CALLS - 2, 10))
        .times('0.10')
        .plus(new Decimal(Math.max(0, CALLS - 2 - 10)).times('0.05'))
        .toDecimalPlaces(2, Decimal.ROUND_HALF_EVEN)
        .plus(new Decimal(half(gb.times(gb.gt(5) ? '0.80' : '1.00')))),
    );
    const packs = half(new Decimal(Math.ceil(CALLS / 10)).times('3.00').plus(new Decimal(half(gb.times('0.15')))));
    expect(Object.keys(byStart).sort()).toEqual([start, new Date(up).toISOString(), new Date(down).toISOString()].sort());
    expect(byStart[start]).toMatchObject({
      reason: 'plan_change_usage',
      status: 'finalized',
      total: tiers,
      period_end: new Date(up).toISOString(),
    });
    expect(byStart[new Date(up).toISOString()]).toMatchObject({ reason: 'plan_change_usage', status: 'finalized', total: packs });
    expect(byStart[new Date(down).toISOString()]).toMatchObject({
      reason: 'period_close',
      status: 'finalized',
      total: tiers,
      period_end: end,
    });
  }, 120_000);
});
