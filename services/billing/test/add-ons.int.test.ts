// Add-ons (issue #15 item 3): plans with plan_type add_on attached to a subscription with a quantity,
// priced per unit (prorated like the plan) and entitled per unit (limit x quantity added to the plan's).
// Billing runs with a controlled clock (deps.now) and closes periods with the admin billing run; the
// expected amounts are computed here with decimal.js (fee x quantity x covered ms / period ms, rounded
// half-even to cents once), independently of the service's pricing code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimal as D } from 'decimal.js';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import type { Config } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { ADMIN_SECRET, client, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

const X = D.clone({ precision: 100 });
const DAY = 86_400_000;
const WEEK = 7 * DAY;
/** fee x quantity x covered/period, half-even to cents, as the API prints it */
const expected = (fee: string, qty: number, coveredMs: number, periodMs = WEEK) =>
  new X(fee).times(qty).times(coveredMs).div(periodMs).toDecimalPlaces(2, D.ROUND_HALF_EVEN).toFixed(2);

let billing: BillingHandle;
let config: Config;
let aggregator: Aggregator;
let org: Awaited<ReturnType<typeof createOrg>>;
let clock = Math.floor(Date.now() / 60_000) * 60_000;

const run = async (at: number) => {
  clock = at;
  const r = await client(billing.url, undefined, { 'x-admin-secret': ADMIN_SECRET }).post(`/admin/organizations/${org.orgId}/billing_run`, {
    as_of: new Date(at).toISOString(),
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
};
const invoicesOf = async (sub: string) => (await org.api.get(`/v1/invoices?subscription_id=${sub}`)).body.data as any[];
const addOnLines = (inv: any) => inv.line_items.filter((l: any) => l.kind === 'add_on');

beforeAll(async () => {
  ({ billing, config } = await startTestBilling({ deps: { now: () => new Date(clock) } }));
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_addon_agg') } });
  org = await createOrg(billing.url);
  const api = org.api;
  expect((await api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' })).status).toBe(201);
  expect((await api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' })).status).toBe(201);
  expect((await api.post('/v1/features', { feature_id: 'priority', type: 'boolean' })).status).toBe(201);
  for (const p of [
    {
      plan_id: 'pro',
      name: 'Pro',
      interval: 'week',
      flat_fee: '20.00',
      flat_fee_timing: 'in_arrears',
      entitlements: [{ feature_id: 'api', limit: 10, limit_type: 'hard' }],
    },
    {
      plan_id: 'extra',
      plan_type: 'add_on',
      name: 'Extra calls',
      interval: 'week',
      flat_fee: '7.35',
      flat_fee_timing: 'in_arrears',
      entitlements: [{ feature_id: 'api', limit: 5 }, { feature_id: 'priority' }],
    },
    { plan_id: 'pack', plan_type: 'add_on', name: 'Pack', interval: 'week', flat_fee: '7.50', flat_fee_timing: 'in_arrears' },
    { plan_id: 'boost', plan_type: 'add_on', name: 'Boost', interval: 'week', flat_fee: '10.00', flat_fee_timing: 'in_advance' },
    { plan_id: 'monthly_addon', plan_type: 'add_on', name: 'Monthly', interval: 'month', flat_fee: '1' },
  ]) {
    const r = await api.post('/v1/plans', p);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.plan_type).toBe(p.plan_type ?? 'base');
  }
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await aggregator?.stop();
});

async function subscription(start: number) {
  clock = start;
  const c = uniqueId('c');
  expect((await org.api.post('/v1/customers', { customer_id: c })).status).toBe(201);
  const s = await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: 'pro', start_date: new Date(start).toISOString() });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  return { c, sub: s.body.subscription_id as string };
}

describe('add-ons', () => {
  it('quantity 3: 3x the limit added to the plan (hard limit holds) and 3x the price on the closed invoice', async () => {
    const S = Math.floor(Date.now() / 60_000) * 60_000;
    const { c, sub } = await subscription(S);
    const a = await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'extra', quantity: 3 });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body).toMatchObject({ plan_id: 'extra', quantity: 3, unit_price: '7.35', invoice_id: null });
    expect((await org.api.get(`/v1/subscriptions/${sub}/add_ons`)).body.data.map((x: any) => [x.plan_id, x.quantity])).toEqual([
      ['extra', 3],
    ]);

    const ent = (await org.api.get(`/v1/customers/${c}/entitlements/api`)).body;
    expect(ent).toMatchObject({ usage_limit: 10 + 5 * 3, source: 'plan', subscription_id: sub });
    expect(ent.grants.map((g: any) => [g.source, g.plan_id, g.quantity, g.usage_limit])).toEqual([
      ['plan', 'pro', null, 10],
      ['add_on', 'extra', 3, 15],
    ]);
    // a boolean feature only the add-on has: granted, source add_on
    expect((await org.api.get(`/v1/customers/${c}/entitlements/priority`)).body).toMatchObject({ is_granted: true, source: 'add_on' });
    const used = await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 25, send_event: true });
    expect(used.body.allowed, JSON.stringify(used.body)).toBe(true);
    const over = await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', send_event: true });
    expect(over.body.allowed).toBe(false);
    expect(over.body.entitlement.access_denied_reason).toBe('usage_limit_exceeded');

    // the upcoming invoice already shows the add-on line
    const up = (await org.api.get(`/v1/subscriptions/${sub}/upcoming_invoice`)).body;
    expect(addOnLines(up).map((l: any) => [l.quantity, l.amount_due])).toEqual([['3', expected('7.35', 3, WEEK)]]);

    await run(S + WEEK);
    const close = (await invoicesOf(sub)).find((i) => i.reason === 'period_close');
    expect(close, JSON.stringify(await invoicesOf(sub))).toBeDefined();
    const lines = addOnLines(close);
    expect(lines.map((l: any) => [l.add_on_id, l.quantity, l.unit_price, l.amount_due])).toEqual([['extra', '3', '7.35', '22.05']]);
    expect(expected('7.35', 3, WEEK)).toBe('22.05');
    const fee = close.line_items.find((l: any) => l.kind === 'flat_fee');
    expect(fee.amount_due).toBe('20.00');
    expect(close.total).toBe(new X('20.00').plus('22.05').toFixed(2));
    // finalizing recomputes the usage lines and keeps the add-on line
    const fin = await org.api.post(`/v1/invoices/${close.invoice_id}/finalize`);
    expect(fin.status, JSON.stringify(fin.body)).toBe(200);
    const after = (await org.api.get(`/v1/invoices/${close.invoice_id}`)).body;
    expect(after.status === 'finalized' || after.status === 'paid').toBe(true);
    expect(after.total).toBe('42.05');
    expect(addOnLines(after).length).toBe(1);
    // the add-on renews with the subscription: its quantity still counts in the next period
    expect((await org.api.get(`/v1/customers/${c}/entitlements/api`)).body.usage_limit).toBe(25);
  });

  it('attached mid-period, quantity changed, then removed: each segment prorated; the limit follows the quantity', async () => {
    const S = Math.floor(Date.now() / 60_000) * 60_000 - 8 * DAY;
    const { c, sub } = await subscription(S);
    clock = S + 2 * DAY;
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'pack', quantity: 2 })).status).toBe(201);
    clock = S + 5 * DAY;
    const p = await org.api.patch(`/v1/subscriptions/${sub}/add_ons/pack`, { quantity: 1 });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    expect(p.body).toMatchObject({ quantity: 1, started_at: new Date(S + 5 * DAY).toISOString() });
    clock = S + 6 * DAY;
    const d = await org.api.del(`/v1/subscriptions/${sub}/add_ons/pack`);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(d.body.ended_at).toBe(new Date(S + 6 * DAY).toISOString());
    expect((await org.api.get(`/v1/subscriptions/${sub}/add_ons`)).body.data).toEqual([]);
    expect((await org.api.del(`/v1/subscriptions/${sub}/add_ons/pack`)).status).toBe(404);
    expect((await org.api.get(`/v1/customers/${c}/entitlements/api`)).body.usage_limit).toBe(10);

    await run(S + WEEK);
    const close = (await invoicesOf(sub)).find((i) => i.reason === 'period_close');
    const lines = addOnLines(close).map((l: any) => [l.quantity, l.period_start, l.period_end, l.amount_due]);
    expect(lines).toEqual([
      ['2', new Date(S + 2 * DAY).toISOString(), new Date(S + 5 * DAY).toISOString(), expected('7.50', 2, 3 * DAY)],
      ['1', new Date(S + 5 * DAY).toISOString(), new Date(S + 6 * DAY).toISOString(), expected('7.50', 1, DAY)],
    ]);
    expect(expected('7.50', 2, 3 * DAY)).toBe('6.43'); // 45/7 = 6.428571...
    expect(expected('7.50', 1, DAY)).toBe('1.07');
    expect(close.total).toBe(new X('20.00').plus('6.43').plus('1.07').toFixed(2));
  });

  it('in advance: attaching mid-period bills the rest of the period at once; renewal bills the next period; lowering credits', async () => {
    const S = Math.floor(Date.now() / 60_000) * 60_000 - 9 * DAY;
    const { c, sub } = await subscription(S);
    clock = S + DAY;
    const a = await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'boost', quantity: 3 });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.invoice_id).toEqual(expect.any(String));
    const now = (await org.api.get(`/v1/invoices/${a.body.invoice_id}`)).body;
    expect(now.reason).toBe('add_on_change');
    expect(now.status === 'finalized' || now.status === 'paid').toBe(true);
    expect(addOnLines(now).map((l: any) => [l.quantity, l.amount_due])).toEqual([['3', expected('10.00', 3, 6 * DAY)]]);
    expect(expected('10.00', 3, 6 * DAY)).toBe('25.71'); // 180/7
    expect(now.total).toBe('25.71');

    clock = S + 3 * DAY;
    const up = (await org.api.get(`/v1/subscriptions/${sub}/upcoming_invoice`)).body;
    expect(addOnLines(up).map((l: any) => [l.quantity, l.period_start, l.amount_due])).toEqual([
      ['3', new Date(S + WEEK).toISOString(), '30.00'],
    ]);

    await run(S + WEEK);
    const close = (await invoicesOf(sub)).find((i) => i.reason === 'period_close');
    expect(addOnLines(close).map((l: any) => [l.quantity, l.period_start, l.period_end, l.amount_due])).toEqual([
      ['3', new Date(S + WEEK).toISOString(), new Date(S + 2 * WEEK).toISOString(), '30.00'],
    ]);
    expect(close.total).toBe('50.00'); // 20.00 in-arrears plan fee + 3 x 10.00 for the next period

    clock = S + WEEK + DAY;
    const low = await org.api.patch(`/v1/subscriptions/${sub}/add_ons/boost`, { quantity: 1 });
    expect(low.status, JSON.stringify(low.body)).toBe(200);
    const credit = (await org.api.get(`/v1/invoices/${low.body.invoice_id}`)).body;
    const want = `-${expected('10.00', 2, 6 * DAY)}`; // -120/7 = -17.142857...
    expect(want).toBe('-17.14');
    expect(addOnLines(credit).map((l: any) => [l.quantity, l.amount_due])).toEqual([['-2', want]]);
    expect(credit.total).toBe(want);
    expect((await org.api.get(`/v1/customers/${c}/entitlements/api`)).body.usage_limit).toBe(10); // boost grants no feature
  });

  it('ending the subscription early bills in-arrears add-ons until then and credits in-advance ones; their segments end', async () => {
    const S = Math.floor(Date.now() / 60_000) * 60_000 - 5 * DAY;
    const { c, sub } = await subscription(S);
    clock = S + DAY;
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'pack', quantity: 2 })).status).toBe(201);
    const boost = await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'boost', quantity: 1 });
    expect((await org.api.get(`/v1/invoices/${boost.body.invoice_id}`)).body.total).toBe(expected('10.00', 1, 6 * DAY));
    clock = S + 4 * DAY;
    const e = await org.api.patch(`/v1/subscriptions/${sub}`, { replace_immediately_type: 'end_current_subscription_and_bill' });
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    const cancel = (await invoicesOf(sub)).find((i) => i.reason === 'cancel');
    expect(cancel, JSON.stringify(await invoicesOf(sub))).toBeDefined();
    expect(addOnLines(cancel).map((l: any) => [l.add_on_id, l.quantity, l.amount_due])).toEqual([
      ['pack', '2', expected('7.50', 2, 3 * DAY)], // 45/7 -> 6.43
      ['boost', '-1', `-${expected('10.00', 1, 3 * DAY)}`], // 30/7 -> -4.29
    ]);
    const fee = expected('20.00', 1, 4 * DAY); // the plan's in-arrears fee until the end: 80/7 -> 11.43
    expect(cancel.total).toBe(
      new X(fee)
        .plus(expected('7.50', 2, 3 * DAY))
        .minus(expected('10.00', 1, 3 * DAY))
        .toFixed(2),
    );
    expect((await org.api.get(`/v1/subscriptions/${sub}/add_ons`)).body.data).toEqual([]);
    expect((await org.api.get(`/v1/customers/${c}/entitlements/api`)).body.is_granted).toBe(false);
  });

  it('a subscription not started yet: an in-advance add-on is billed once for its first period (at attach); a prorated cancel credits at most that', async () => {
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const S = now + 2 * DAY; // starts in two days
    clock = now;
    const c = uniqueId('c');
    expect((await org.api.post('/v1/customers', { customer_id: c })).status).toBe(201);
    const created = await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: 'pro', start_date: new Date(S).toISOString() });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.status).toBe('not_started');
    const sub = created.body.subscription_id as string;

    const a = await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'boost', quantity: 2 });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body).toMatchObject({ quantity: 2, started_at: new Date(S).toISOString() });
    // like the plan's own in-advance fee of a subscription not started (its subscription_start invoice at
    // creation): an add_on_change invoice for the whole first period, dated at the start
    expect(a.body.invoice_id, 'the in-advance add-on of a not-started subscription is billed').toEqual(expect.any(String));
    const charged = expected('10.00', 2, WEEK);
    expect(charged).toBe('20.00');
    const inv = (await org.api.get(`/v1/invoices/${a.body.invoice_id}`)).body;
    expect(inv).toMatchObject({ reason: 'add_on_change', period_start: new Date(S).toISOString(), total: charged });

    // the start, then a day into the first period: nothing bills the add-on a second time
    await run(S + DAY);
    expect((await org.api.get(`/v1/subscriptions/${sub}`)).body.status).toBe('active');
    const charges = (await invoicesOf(sub))
      .flatMap((i) => addOnLines(i).map((l: any) => ({ ...l, reason: i.reason })))
      .filter((l: any) => new X(l.amount_due).gt(0));
    expect(charges.map((l: any) => [l.reason, l.add_on_id, l.quantity, l.period_start, l.period_end, l.amount_due])).toEqual([
      ['add_on_change', 'boost', '2', new Date(S).toISOString(), new Date(S + WEEK).toISOString(), charged],
    ]);

    // cancel (prorated, not billed) 3 days into the first period: 4 of 7 days come back, never more than charged
    clock = S + 3 * DAY;
    const e = await org.api.patch(`/v1/subscriptions/${sub}`, { replace_immediately_type: 'end_current_subscription_and_dont_bill' });
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    const all = await invoicesOf(sub);
    const credit = all.find((i) => i.reason === 'cancel_credit');
    expect(credit, JSON.stringify(all)).toBeDefined();
    const want = `-${expected('10.00', 2, 4 * DAY)}`; // -80/7 = -11.428571...
    expect(want).toBe('-11.43');
    expect(addOnLines(credit).map((l: any) => [l.add_on_id, l.quantity, l.amount_due])).toEqual([['boost', '-2', want]]);
    expect(credit.total).toBe(want);
    const net = all.flatMap(addOnLines).reduce((sum: D, l: any) => sum.plus(l.amount_due), new X(0));
    expect(net.toFixed(2)).toBe(new X(charged).plus(want).toFixed(2)); // 8.57: the 3 days used
    expect(net.gte(0)).toBe(true);
  });

  it('cancelled before its start: the in-advance plan fee and in-advance add-ons billed up front are credited in full', async () => {
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    const S = now + 2 * DAY;
    clock = now;
    const plan = await org.api.post('/v1/plans', {
      plan_id: uniqueId('adv'),
      name: 'Advance',
      interval: 'week',
      flat_fee: '30.00',
      flat_fee_timing: 'in_advance',
    });
    expect(plan.status, JSON.stringify(plan.body)).toBe(201);
    const c = uniqueId('c');
    expect((await org.api.post('/v1/customers', { customer_id: c })).status).toBe(201);
    const created = await org.api.post('/v1/subscriptions', {
      customer_id: c,
      plan_id: plan.body.plan_id,
      start_date: new Date(S).toISOString(),
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.status).toBe('not_started');
    const sub = created.body.subscription_id as string;
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'boost', quantity: 1 })).status).toBe(201);
    const charged = (await invoicesOf(sub)).reduce((sum: D, i: any) => sum.plus(i.total), new X(0));
    expect(charged.toFixed(2)).toBe(new X('30.00').plus(expected('10.00', 1, WEEK)).toFixed(2)); // 40.00 billed up front

    const e = await org.api.post(`/v1/subscriptions/${sub}/cancel`, { type: 'end_current_subscription_and_dont_bill' });
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    expect(e.body.status).toBe('ended');
    const all = await invoicesOf(sub);
    const credit = all.find((i) => i.reason === 'cancel_credit');
    expect(credit, JSON.stringify(all.map((i) => [i.reason, i.total]))).toBeDefined();
    expect(credit.total).toBe(`-${charged.toFixed(2)}`);
    const net = all.reduce((sum: D, i: any) => sum.plus(i.total), new X(0));
    expect(net.toFixed(2)).toBe('0.00');
  });

  it('an add-on plan is not subscribed to as a base plan (create, plan change, replacement)', async () => {
    const S = Math.floor(Date.now() / 60_000) * 60_000;
    const { c, sub } = await subscription(S);
    const direct = await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: 'boost' });
    expect(direct.status, JSON.stringify(direct.body)).toBe(400);
    expect(JSON.stringify(direct.body)).toContain('plan_type add_on');
    const change = await org.api.patch(`/v1/subscriptions/${sub}`, {
      replace_immediately_type: 'change_subscription_plan',
      plan_id: 'boost',
    });
    expect(change.status, JSON.stringify(change.body)).toBe(400);
    const replace = await org.api.patch(`/v1/subscriptions/${sub}`, {
      replace_immediately_type: 'end_current_subscription_and_bill',
      plan_id: 'boost',
    });
    expect(replace.status, JSON.stringify(replace.body)).toBe(400);
    // refused before anything changed: still live on pro
    expect((await org.api.get(`/v1/subscriptions/${sub}`)).body).toMatchObject({ plan_id: 'pro', status: 'active' });
    expect((await org.api.get(`/v1/subscriptions?customer_id=${c}`)).body.data.length).toBe(1);
  });

  it('refuses what is not an add-on, a second attach, another billing interval, other organizations', async () => {
    const S = Math.floor(Date.now() / 60_000) * 60_000;
    const { sub } = await subscription(S);
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'pro' })).status).toBe(400);
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'monthly_addon' })).status).toBe(400);
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'nope' })).status).toBe(404);
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'pack', quantity: 0 })).status).toBe(400);
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'pack' })).status).toBe(201);
    expect((await org.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'pack' })).status).toBe(409);
    expect((await org.api.patch(`/v1/subscriptions/${sub}/add_ons/extra`, { quantity: 2 })).status).toBe(404);
    const other = await createOrg(billing.url);
    expect((await other.api.post(`/v1/subscriptions/${sub}/add_ons`, { plan_id: 'pack' })).status).toBe(404);
    expect((await other.api.get(`/v1/subscriptions/${sub}/add_ons`)).status).toBe(404);
    expect((await other.api.del(`/v1/subscriptions/${sub}/add_ons/pack`)).status).toBe(404);
    // an add-on is priced by its flat fee per unit: no usage components
    const comp = await org.api.post('/v1/plans', {
      plan_id: 'metered_addon',
      plan_type: 'add_on',
      name: 'x',
      interval: 'week',
      components: [{ metric_id: 'api_calls', pricing: { model: 'per_unit', unit_price: '1' } }],
    });
    expect(comp.status).toBe(400);
  });
});
