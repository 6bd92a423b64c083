// Issue #17 item 4 through the real pipeline: events posted to the gateway with decimal properties ->
// Kafka -> aggregator (exact Decimal(38, 12) rollups) -> billing's invoice. Also a prorated share
// rounded once. Billing runs with a controlled clock; expected amounts are computed in the test with
// its own decimal arithmetic.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimal as D } from 'decimal.js';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type Config, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

const X = D.clone({ precision: 200 });
const halfEvenMinor = (v: D) => new X(v).toDecimalPlaces(2, D.ROUND_HALF_EVEN).toFixed(2);

let billing: BillingHandle;
let config: Config;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let clock = Math.floor(Date.now() / 60_000) * 60_000;

async function send(apiKey: string, events: object[]): Promise<void> {
  // the body text is sent as written: JSON numbers 0.1 and 0.2, exactly what a client sends
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(events),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}

beforeAll(async () => {
  ({ billing, config } = await startTestBilling({ env: { GATEWAY_PORT: '0' }, deps: { now: () => new Date(clock) } }));
  pg = createPostgres(config.postgresUrl, { max: 2 });
  gateway = await startGateway(config, { pg });
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_exact_agg') } });
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
});

const detail = async (api: Awaited<ReturnType<typeof createOrg>>['api'], sub: string) => (await api.get(`/v1/subscriptions/${sub}`)).body;
const invoicesOf = async (api: Awaited<ReturnType<typeof createOrg>>['api'], sub: string) =>
  (await api.get(`/v1/invoices?subscription_id=${sub}`)).body.data as any[];

describe('exact quantities end to end', () => {
  it('gb 0.1 + 0.2 on a per-unit 0.15 component: quantity "0.3", amount 0.045 -> 0.04 (half-even)', async () => {
    clock = Math.floor(Date.now() / 60_000) * 60_000;
    const { api, apiKey } = await createOrg(billing.url);
    expect((await api.post('/v1/metrics', { metric_id: 'storage', event_name: 'store', aggregation: 'sum', property: 'gb' })).status).toBe(
      201,
    );
    expect(
      (
        await api.post('/v1/plans', {
          plan_id: 'gb',
          name: 'GB',
          interval: 'week',
          flat_fee: '0',
          flat_fee_timing: 'in_arrears',
          components: [{ metric_id: 'storage', pricing: { model: 'per_unit', unit_price: '0.15' } }],
        })
      ).status,
    ).toBe(201);
    expect((await api.post('/v1/customers', { customer_id: 'c1' })).status).toBe(201);
    const start = new Date(clock - 3_600_000);
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'gb', start_date: start.toISOString() });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const t = new Date(clock - 30 * 60_000 - 1234).toISOString(); // a partial minute: raw-edge path too
    await send(apiKey, [
      { customer_id: 'c1', event_name: 'store', idempotency_id: uniqueId('e'), time_created: t, properties: { gb: 0.1 } },
      { customer_id: 'c1', event_name: 'store', idempotency_id: uniqueId('e'), time_created: t, properties: { gb: 0.2 } },
    ]);
    const usage = await waitFor(
      () => detail(api, s.body.subscription_id),
      (d) => d.usage?.[0]?.quantity !== undefined && d.usage[0].quantity !== '0',
      { timeoutMs: 60_000, what: 'usage of the two events' },
    );
    expect(usage.usage[0].quantity).toBe(new X('0.1').plus('0.2').toFixed()); // "0.3", not 0.30000000000000004
    const e = await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
      replace_immediately_type: 'end_current_subscription_and_bill',
    });
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    const inv = await invoicesOf(api, s.body.subscription_id);
    const line = inv.flatMap((i) => i.line_items).find((l: any) => l.kind === 'usage');
    expect(line, JSON.stringify(inv)).toBeDefined();
    expect(line.quantity).toBe('0.3');
    const expected = halfEvenMinor(new X('0.1').plus('0.2').times('0.15')); // 0.045 -> 0.04
    expect(expected).toBe('0.04');
    expect(line.amount_due).toBe(expected);
  });

  it('a flat fee of 0.03 in arrears over 1/6 of a week is 0.005 -> 0.00 (rounded once, not 0.01)', async () => {
    const week = 7 * 86_400_000;
    const start = Math.floor(Date.now() / 86_400_000) * 86_400_000 - week;
    clock = start + week / 6;
    const { api } = await createOrg(billing.url);
    expect(
      (await api.post('/v1/plans', { plan_id: 'tiny', name: 'Tiny', interval: 'week', flat_fee: '0.03', flat_fee_timing: 'in_arrears' }))
        .status,
    ).toBe(201);
    expect((await api.post('/v1/customers', { customer_id: 'c1' })).status).toBe(201);
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'tiny', start_date: new Date(start).toISOString() });
    expect(s.status).toBe(201);
    const e = await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
      replace_immediately_type: 'end_current_subscription_and_bill',
    });
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    expect(e.body.ended_at).toBe(new Date(start + week / 6).toISOString());
    const expected = halfEvenMinor(new X('0.03').times(week / 6).div(week)); // 0.005 -> 0.00
    expect(expected).toBe('0.00');
    const inv = await invoicesOf(api, s.body.subscription_id);
    const owed = inv.flatMap((i) => i.line_items).filter((l: any) => l.kind === 'flat_fee');
    // a zero flat-fee line is dropped; whatever is issued owes the exactly-once rounding: nothing
    expect(owed.map((l: any) => l.amount_due).filter((a: string) => a !== expected)).toEqual([]);
    expect(inv.map((i) => i.total).filter((x: string) => x !== '0.00')).toEqual([]);

    // and a share that is not zero: 0.045 over 1/3 of a week = 0.015 -> 0.02 (a 20-digit 1/3 gave 0.01)
    expect(
      (await api.post('/v1/plans', { plan_id: 'third', name: 'Third', interval: 'week', flat_fee: '0.045', flat_fee_timing: 'in_arrears' }))
        .status,
    ).toBe(201);
    expect((await api.post('/v1/customers', { customer_id: 'c2' })).status).toBe(201);
    const s2 = await api.post('/v1/subscriptions', { customer_id: 'c2', plan_id: 'third', start_date: new Date(start).toISOString() });
    clock = start + week / 3;
    const e2 = await api.patch(`/v1/subscriptions/${s2.body.subscription_id}`, {
      replace_immediately_type: 'end_current_subscription_and_bill',
    });
    expect(e2.status, JSON.stringify(e2.body)).toBe(200);
    const inv2 = await invoicesOf(api, s2.body.subscription_id);
    const expected2 = halfEvenMinor(new X('0.045').times(week / 3).div(week));
    expect(expected2).toBe('0.02');
    expect(inv2.map((i) => [i.reason, i.total])).toEqual([['cancel', expected2]]);
    expect(inv2[0].line_items.map((l: any) => [l.kind, l.amount_due])).toEqual([['flat_fee', expected2]]);
  });
});
