// Prepaid credits and coupons, applied when invoices are finalized (invoices/settle.ts), against real
// Postgres with a controlled clock and no usage (flat fees only). Expected amounts are the test's own
// arithmetic in minor units.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres, type PgPool } from '@meterline/core';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle, UsageReader } from '../src/index.ts';
import { runDueSubscriptions } from '../src/invoices/scheduler.ts';

let billing: BillingHandle;
let pg: PgPool;
let clock = Date.parse('2026-03-01T00:00:00Z');
const usage: UsageReader = { versionStatus: async () => 'ready', query: async () => [] };

beforeAll(async () => {
  const started = await startTestBilling({ deps: { usage, now: () => new Date(clock) } });
  billing = started.billing;
  pg = createPostgres(started.config.postgresUrl, { max: 2 });
});
afterAll(async () => {
  await billing?.stop();
  await pg?.end();
});

async function setup() {
  clock = Date.parse('2026-03-01T00:00:00Z');
  const o = await createOrg(billing.url);
  expect((await o.api.put('/v1/settings/invoicing', { grace_period_seconds: 0 })).status).toBe(200);
  expect(
    (await o.api.post('/v1/plans', { plan_id: 'pro', name: 'Pro', interval: 'month', flat_fee: '49.00', flat_fee_timing: 'in_advance' }))
      .status,
  ).toBe(201);
  return o;
}
const invoices = async (api: Awaited<ReturnType<typeof setup>>['api'], customer: string) =>
  ((await api.get(`/v1/invoices?customer_id=${customer}&limit=100`)).body.data as any[]).filter((i) => i.status !== 'draft');
const cents = (s: string) => Math.round(Number(s) * 100);

describe('credits', () => {
  it('a grant larger than the invoice pays it (paid, remainder carried); a smaller one reduces it; history records both', async () => {
    const { api, orgId } = await setup();
    // an endpoint, so that events are kept in the outbox (no delivery worker in this test)
    expect((await api.post('/v1/webhook_endpoints', { url: 'http://127.0.0.1:9/hooks', event_types: ['credits.low'] })).status).toBe(201);
    await api.post('/v1/customers', { customer_id: 'big' });
    const g = await api.post('/v1/customers/big/credits', { amount: '100.00', description: 'welcome' });
    expect(g.status, JSON.stringify(g.body)).toBe(201);
    expect(g.body).toMatchObject({ amount: '100.00', remaining: '100.00', status: 'active', currency: 'USD' });
    expect((await api.post('/v1/subscriptions', { customer_id: 'big', plan_id: 'pro' })).status).toBe(201);
    const [start] = await invoices(api, 'big');
    expect(start).toMatchObject({ reason: 'subscription_start', status: 'paid', total: '0.00' });
    expect(start.line_items.map((l: any) => [l.kind, l.amount_due])).toEqual([
      ['flat_fee', '49.00'],
      ['credit', '-49.00'],
    ]);
    const bal = (await api.get('/v1/customers/big/credits')).body;
    // 100 → 51 left: not low yet (20 % = 20.00); the next period takes it to 2.00 (below), checked below
    expect(bal.balance).toEqual({ USD: '51.00' });
    expect((await api.get('/v1/customers/big')).body.total_amount_due).toBe('0.00');
    const hist = (await api.get('/v1/customers/big/credits/history')).body.data;
    expect(hist.map((t: any) => [t.kind, t.amount, t.invoice_id])).toEqual([
      ['grant', '100.00', null],
      ['applied', '-49.00', start.invoice_id],
    ]);

    // the next period: 49.00 again, 51.00 left → paid, 2.00 left
    clock = Date.parse('2026-04-01T00:00:01Z');
    await runDueSubscriptions(billing.deps, new Date(clock), { organizationId: orgId });
    expect((await api.get('/v1/customers/big/credits')).body.balance).toEqual({ USD: '2.00' });
    const low = await pg.query(`SELECT payload FROM webhook_events WHERE organization_id = $1 AND type = 'credits.low'`, [orgId]);
    expect(low.rows.map((r) => [r.payload.data.grant_id, r.payload.data.remaining])).toEqual([[g.body.grant_id, '2.00']]);

    await api.post('/v1/customers', { customer_id: 'small' });
    await api.post('/v1/customers/small/credits', { amount: '20.00' });
    await api.post('/v1/subscriptions', { customer_id: 'small', plan_id: 'pro' });
    const [s2] = await invoices(api, 'small');
    expect(s2).toMatchObject({ status: 'finalized', total: '29.00' });
    expect((await api.get('/v1/customers/small')).body.total_amount_due).toBe('29.00');
    expect((await api.get('/v1/customers/small/credits')).body.grants[0]).toMatchObject({ remaining: '0.00', status: 'depleted' });
  });

  it('priority, then expiry; pending, expired and voided grants are not used; top-up', async () => {
    const { api } = await setup();
    await api.post('/v1/customers', { customer_id: 'c' });
    const later = await api.post('/v1/customers/c/credits', { amount: '30.00', priority: 5 });
    const first = await api.post('/v1/customers/c/credits', { amount: '10.00', priority: 1 });
    await api.post('/v1/customers/c/credits', { amount: '500.00', effective_at: '2026-06-01T00:00:00Z' }); // pending
    await api.post('/v1/customers/c/credits', {
      amount: '500.00',
      effective_at: '2026-01-01T00:00:00Z',
      expires_at: '2026-02-01T00:00:00Z',
    }); // expired
    const voided = await api.post('/v1/customers/c/credits', { amount: '500.00' });
    expect((await api.post(`/v1/credits/${voided.body.grant_id}/void`, {})).body).toMatchObject({ status: 'void', remaining: '0.00' });
    expect((await api.post(`/v1/credits/${voided.body.grant_id}/void`, {})).status).toBe(409);
    expect((await api.post(`/v1/credits/${later.body.grant_id}/top_up`, { amount: '5.00' })).body).toMatchObject({
      amount: '35.00',
      remaining: '35.00',
    });
    await api.post('/v1/subscriptions', { customer_id: 'c', plan_id: 'pro' });
    const [inv] = await invoices(api, 'c');
    // 49.00 = 10.00 (priority 1) + 35.00 (priority 5) → 4.00 due
    expect(inv.total).toBe('4.00');
    expect(inv.line_items.filter((l: any) => l.kind === 'credit').map((l: any) => [l.grant_id, l.amount_due])).toEqual([
      [first.body.grant_id, '-10.00'],
      [later.body.grant_id, '-35.00'],
    ]);
    expect((await api.post('/v1/customers/c/credits', { amount: '0' })).status).toBe(400);
    expect((await api.post('/v1/customers/c/credits', { amount: '1.005' })).status).toBe(400);
    expect((await api.post('/v1/customers/nobody/credits', { amount: '1' })).status).toBe(404);
  });
});

describe('coupons', () => {
  const runPeriods = async (api: Awaited<ReturnType<typeof setup>>['api'], orgId: string, n: number) => {
    for (let m = 1; m <= n; m++) {
      clock = Date.UTC(2026, 2 + m, 1, 0, 0, 1);
      await runDueSubscriptions(billing.deps, new Date(clock), { organizationId: orgId });
      await runDueSubscriptions(billing.deps, new Date(clock), { organizationId: orgId });
    }
    return api;
  };

  it('once / repeating / forever, percent and amount, each shown as a discount line', async () => {
    const { api, orgId } = await setup();
    for (const c of [
      { coupon_id: 'once20', name: 'Launch', percent_off: '20', duration: 'once' },
      { coupon_id: 'rep5', name: 'Five off', amount_off: '5.00', currency: 'USD', duration: 'repeating', duration_periods: 2 },
      { coupon_id: 'ever10', name: 'Partner', percent_off: '12.5', duration: 'forever' },
    ])
      expect((await api.post('/v1/coupons', c)).status).toBe(201);
    for (const [cust, coupon] of [
      ['a', 'once20'],
      ['b', 'rep5'],
      ['c', 'ever10'],
    ] as const) {
      await api.post('/v1/customers', { customer_id: cust });
      expect((await api.post(`/v1/customers/${cust}/coupons`, { coupon_id: coupon })).status).toBe(201);
      await api.post('/v1/subscriptions', { customer_id: cust, plan_id: 'pro' });
    }
    await runPeriods(api, orgId, 3); // April, May, June renewals: 4 invoices each
    const totals = async (c: string) => (await invoices(api, c)).map((i) => cents(i.total));
    // once 20 %: 49.00 - 9.80 = 39.20, then 49.00
    expect(await totals('a')).toEqual([3920, 4900, 4900, 4900]);
    // 5.00 off for 2 invoices
    expect(await totals('b')).toEqual([4400, 4400, 4900, 4900]);
    // 12.5 % forever: 49.00 × 0.125 = 6.125 → 6.12 (half-even) off → 42.88
    expect(await totals('c')).toEqual([4288, 4288, 4288, 4288]);
    const line = (await invoices(api, 'c'))[0].line_items.find((l: any) => l.kind === 'discount');
    expect(line).toMatchObject({ coupon_id: 'ever10', amount_due: '-6.12' });
    expect(line.description).toContain('12.5 % off');
  });

  it('max redemptions, redeem_by, archive, validation', async () => {
    const { api } = await setup();
    await api.post('/v1/customers', { customer_id: 'x' });
    await api.post('/v1/customers', { customer_id: 'y' });
    expect(
      (await api.post('/v1/coupons', { coupon_id: 'one', name: 'One', percent_off: '10', duration: 'once', max_redemptions: 1 })).status,
    ).toBe(201);
    expect((await api.post('/v1/coupons', { coupon_id: 'one', name: 'One', percent_off: '10', duration: 'once' })).status).toBe(409);
    expect((await api.post('/v1/customers/x/coupons', { coupon_id: 'one' })).status).toBe(201);
    const second = await api.post('/v1/customers/y/coupons', { coupon_id: 'one' });
    expect(second.status).toBe(409);
    expect(second.body.error.message).toContain('1 redemptions');
    await api.post('/v1/coupons', {
      coupon_id: 'old',
      name: 'Old',
      percent_off: '10',
      duration: 'once',
      redeem_by: '2026-02-01T00:00:00Z',
    });
    expect((await api.post('/v1/customers/y/coupons', { coupon_id: 'old' })).status).toBe(409);
    await api.post('/v1/coupons', { coupon_id: 'gone', name: 'Gone', percent_off: '10', duration: 'forever' });
    expect((await api.del('/v1/coupons/gone')).body.archived_at).not.toBeNull();
    expect((await api.post('/v1/customers/y/coupons', { coupon_id: 'gone' })).status).toBe(409);
    for (const bad of [
      { coupon_id: 'b1', name: 'B', duration: 'once' },
      { coupon_id: 'b2', name: 'B', percent_off: '10', amount_off: '1', currency: 'USD', duration: 'once' },
      { coupon_id: 'b3', name: 'B', amount_off: '1', duration: 'once' },
      { coupon_id: 'b4', name: 'B', percent_off: '101', duration: 'once' },
      { coupon_id: 'b5', name: 'B', percent_off: '10', duration: 'repeating' },
      { coupon_id: 'b6', name: 'B', percent_off: '0', duration: 'once' },
    ])
      expect([bad.coupon_id, (await api.post('/v1/coupons', bad)).status]).toEqual([bad.coupon_id, 400]);
    expect((await api.get('/v1/coupons/one')).body.times_redeemed).toBe(1);
  });
});
