// Subscription lifecycle against real Postgres, with a controlled clock and a fixed usage reader
// (usage itself is exercised through the real pipeline in entitlements.int.test.ts): renewals,
// turn_off_auto_renew, end_current_subscription_and_bill / _dont_bill (with and without a new plan),
// change_subscription_plan with proration, plan versioning, trials, invoices and amount due.
// Reads never close periods (pure-reads.int.test.ts): where a period ends, the test runs the scheduler
// (runDueSubscriptions, scoped to its own organization) as the renewal loop would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle, UsageQuery, UsageReader } from '../src/index.ts';
import { runDueSubscriptions } from '../src/invoices/scheduler.ts';

let billing: BillingHandle;
let url: string;
let clock = Date.parse('2026-03-15T00:00:00Z');
let apiCallsPerQuery = 3500;
const queries: UsageQuery[] = [];
const usage: UsageReader = {
  async versionStatus() {
    return 'ready';
  },
  async query(q) {
    queries.push(q);
    return q.metric.metricId === 'api_calls' ? [{ customerId: q.customerId!, windowStart: null, groups: {}, value: apiCallsPerQuery }] : [];
  },
};

beforeAll(async () => {
  ({ billing } = await startTestBilling({ deps: { usage, now: () => new Date(clock) } }));
  url = billing.url;
});
afterAll(async () => {
  await billing?.stop();
});

const PRO = {
  plan_id: 'pro',
  name: 'Pro',
  interval: 'month',
  flat_fee: '49.00',
  flat_fee_timing: 'in_advance',
  components: [{ metric_id: 'api_calls', free_units: 1000, pricing: { model: 'per_unit', unit_price: '0.0004' } }],
  entitlements: [{ feature_id: 'api', limit: 5000 }],
};
const SCALE = {
  plan_id: 'scale',
  name: 'Scale',
  interval: 'month',
  flat_fee: '99.00',
  flat_fee_timing: 'in_advance',
  components: [{ metric_id: 'api_calls', free_units: 0, pricing: { model: 'package', package_size: 1000, package_price: '1.00' } }],
  entitlements: [{ feature_id: 'api', limit: null }],
};
const ARREARS = {
  plan_id: 'arrears',
  name: 'Arrears',
  interval: 'month',
  flat_fee: '30.00',
  flat_fee_timing: 'in_arrears',
  components: [],
};

async function setup() {
  const o = await createOrg(url);
  await o.api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' });
  await o.api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' });
  for (const p of [PRO, SCALE, ARREARS]) expect((await o.api.post('/v1/plans', p)).status).toBe(201);
  expect((await o.api.post('/v1/customers', { customer_id: 'c1' })).status).toBe(201);
  return o;
}
const runScheduler = (orgId: string) => runDueSubscriptions(billing.deps, new Date(clock), { organizationId: orgId });
const invoicesOf = async (api: Awaited<ReturnType<typeof setup>>['api'], sub: string) =>
  (await api.get(`/v1/invoices?subscription_id=${sub}`)).body.data as any[];

describe('subscriptions', () => {
  it('validates and is idempotent on subscription_id', async () => {
    clock = Date.parse('2026-03-15T00:00:00Z');
    const { api } = await setup();
    expect((await api.post('/v1/subscriptions', { customer_id: 'ghost', plan_id: 'pro' })).status).toBe(404);
    expect((await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'ghost' })).status).toBe(404);
    expect((await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro', start_date: 'yesterday' })).status).toBe(400);
    expect(
      (
        await api.post('/v1/subscriptions', {
          customer_id: 'c1',
          plan_id: 'pro',
          start_date: '2026-03-15T00:00:00Z',
          end_date: '2026-03-01T00:00:00Z',
        })
      ).status,
    ).toBe(400);
    const body = { customer_id: 'c1', plan_id: 'pro', subscription_id: 'sub_fixed', start_date: '2026-03-15T00:00:00Z' };
    const s = await api.post('/v1/subscriptions', body);
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({
      subscription_id: 'sub_fixed',
      status: 'active',
      plan_version: 1,
      auto_renew: true,
      current_period_end: '2026-04-15T00:00:00.000Z',
    });
    expect((await api.post('/v1/subscriptions', body)).status).toBe(200);
    expect((await api.post('/v1/subscriptions', { ...body, auto_renew: false })).status).toBe(409);
    expect((await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro' })).status).toBe(409); // one live sub per plan
    const list = await api.get('/v1/subscriptions?customer_id=c1&status=active');
    expect(list.body.data.map((x: any) => x.subscription_id)).toEqual(['sub_fixed']);
    expect((await api.get('/v1/subscriptions?status=ended')).body.data).toEqual([]);
    expect((await api.get('/v1/subscriptions?status=bogus')).status).toBe(400);
    // a start in the future is not_started until then
    const later = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'scale', start_date: '2026-04-01T00:00:00Z' });
    expect(later.body.status).toBe('not_started');
    clock = Date.parse('2026-04-02T00:00:00Z');
    expect((await api.get(`/v1/subscriptions/${later.body.subscription_id}`)).body.status).toBe('active');
  });

  it('renews each period with an invoice (usage in arrears + next flat fee in advance); detail shows usage so far', async () => {
    clock = Date.parse('2026-03-15T00:00:00Z');
    apiCallsPerQuery = 3500;
    const { api, orgId } = await setup();
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro', start_date: '2026-01-01T00:00:00Z' });
    expect(s.status).toBe(201);
    expect(s.body).toMatchObject({
      status: 'active',
      current_period_start: '2026-03-01T00:00:00.000Z',
      current_period_end: '2026-04-01T00:00:00.000Z',
    });
    const inv = await invoicesOf(api, s.body.subscription_id);
    expect(inv.map((i) => [i.reason, i.period_start.slice(0, 10), i.total])).toEqual([
      ['subscription_start', '2026-01-01', '49.00'],
      // 3500 calls - 1000 included = 2500 * 0.0004 = 1.00, + next month's 49.00
      ['period_close', '2026-01-01', '50.00'],
      ['period_close', '2026-02-01', '50.00'],
    ]);
    expect(inv[1].line_items.map((l: any) => [l.kind, l.amount_due])).toEqual([
      ['usage', '1.00'],
      ['flat_fee', '49.00'],
    ]);
    const detail = await api.get(`/v1/subscriptions/${s.body.subscription_id}`);
    expect(detail.body.current_period).toMatchObject({ start: '2026-03-01T00:00:00.000Z', end: '2026-04-01T00:00:00.000Z' });
    expect(detail.body.usage).toEqual([{ metric_id: 'api_calls', group: null, quantity: '3500', amount: '1.00' }]);
    expect(detail.body.usage_amount_so_far).toBe('1.00');
    const q = queries[queries.length - 1]!;
    expect(q.from.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    // crossing the boundary: reads already show April, the scheduler closes March
    clock = Date.parse('2026-04-01T00:00:01Z');
    expect((await api.get(`/v1/subscriptions/${s.body.subscription_id}`)).body.current_period_start).toBe('2026-04-01T00:00:00.000Z');
    expect((await invoicesOf(api, s.body.subscription_id)).length).toBe(3);
    expect(await runScheduler(orgId)).toMatchObject({ advanced: 1, invoices: 1, failed: 0 });
    expect((await invoicesOf(api, s.body.subscription_id)).length).toBe(4);
    expect((await api.get(`/v1/subscriptions/${s.body.subscription_id}`)).body.current_period_start).toBe('2026-04-01T00:00:00.000Z');
    // March's invoice is a draft for the grace period (1 h by default): not yet due
    expect((await api.get('/v1/customers/c1')).body.total_amount_due).toBe('149.00');
    clock = Date.parse('2026-04-01T01:00:01Z');
    expect(await runScheduler(orgId)).toMatchObject({ advanced: 0, finalized: 1, failed: 0 });
    const cust = await api.get('/v1/customers/c1');
    expect(cust.body.total_amount_due).toBe('199.00');
    expect(cust.body.invoices).toHaveLength(4);
    // numbered per organization, gapless, in finalization order
    expect(cust.body.invoices.map((i: any) => [i.status, i.number]).sort()).toEqual([
      ['finalized', 'INV-000001'],
      ['finalized', 'INV-000002'],
      ['finalized', 'INV-000003'],
      ['finalized', 'INV-000004'],
    ]);
    expect(cust.body.subscriptions).toHaveLength(1);
  });

  it('turn_off_auto_renew ends the subscription at period end', async () => {
    clock = Date.parse('2026-03-10T00:00:00Z');
    const { api, orgId } = await setup();
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro', start_date: '2026-03-01T00:00:00Z' });
    const c = await api.post(`/v1/subscriptions/${s.body.subscription_id}/cancel`, { type: 'turn_off_auto_renew' });
    expect(c.body).toMatchObject({ status: 'active', auto_renew: false });
    clock = Date.parse('2026-04-01T00:00:00Z');
    const after = await api.get(`/v1/subscriptions/${s.body.subscription_id}`);
    expect(after.body).toMatchObject({ status: 'ended', ended_at: '2026-04-01T00:00:00.000Z', end_reason: 'auto_renew_off' });
    expect((await api.get('/v1/subscriptions?status=active')).body.data).toEqual([]); // the list filters on the status as of now
    expect((await api.get('/v1/subscriptions?status=ended')).body.data).toHaveLength(1);
    expect(await runScheduler(orgId)).toMatchObject({ advanced: 1, invoices: 1 });
    expect((await api.get(`/v1/subscriptions/${s.body.subscription_id}`)).body).toEqual(after.body);
    const inv = await invoicesOf(api, s.body.subscription_id);
    expect(inv.map((i) => [i.reason, i.total])).toEqual([
      ['subscription_start', '49.00'],
      ['period_close', '1.00'],
    ]); // no next-period fee
    expect((await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, { turn_off_auto_renew: true })).status).toBe(409);
  });

  it('end_current_subscription_and_bill ends now and bills usage and prorated arrears fee', async () => {
    clock = Date.parse('2026-03-16T00:00:00Z');
    apiCallsPerQuery = 3500;
    const { api } = await setup();
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'arrears', start_date: '2026-03-01T00:00:00Z' });
    expect(await invoicesOf(api, s.body.subscription_id)).toEqual([]); // nothing in advance
    const e = await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
      replace_immediately_type: 'end_current_subscription_and_bill',
    });
    expect(e.status).toBe(200);
    expect(e.body).toMatchObject({ status: 'ended', ended_at: '2026-03-16T00:00:00.000Z', end_reason: 'canceled_and_billed' });
    const inv = await invoicesOf(api, s.body.subscription_id);
    expect(inv).toHaveLength(1);
    // 15 of 31 days of 30.00 = 14.516… -> 14.52
    expect(inv[0]).toMatchObject({ reason: 'cancel', total: '14.52', period_end: '2026-03-16T00:00:00.000Z' });
  });

  it('end_current_subscription_and_dont_bill with plan_id ends the old one unbilled and starts the new plan', async () => {
    clock = Date.parse('2026-03-16T00:00:00Z');
    const { api } = await setup();
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro', start_date: '2026-03-01T00:00:00Z' });
    const e = await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
      replace_immediately_type: 'end_current_subscription_and_dont_bill',
      plan_id: 'scale',
    });
    expect(e.status).toBe(200);
    expect(e.body).toMatchObject({ status: 'ended', end_reason: 'canceled_not_billed' });
    expect(e.body.replaced_by).toBeTruthy();
    expect(e.body.replacement).toMatchObject({
      plan_id: 'scale',
      status: 'active',
      start_date: '2026-03-16T00:00:00.000Z',
      current_period_end: '2026-04-16T00:00:00.000Z',
    });
    // the unused 16 of March's 31 days of the 49.00 paid in advance come back: 49 × 16/31 = 25.290… → 25.29
    expect((await invoicesOf(api, s.body.subscription_id)).map((i) => [i.reason, i.status, i.total])).toEqual([
      ['subscription_start', 'finalized', '49.00'],
      ['cancel_credit', 'finalized', '-25.29'],
    ]);
    expect((await invoicesOf(api, e.body.replaced_by)).map((i) => [i.reason, i.total])).toEqual([['subscription_start', '99.00']]);
    const subs = (await api.get('/v1/subscriptions?customer_id=c1')).body.data;
    expect(subs.map((x: any) => [x.plan_id, x.status])).toEqual([
      ['pro', 'ended'],
      ['scale', 'active'],
    ]);
    // end_current_subscription_and_bill with plan_id: same, but bills the old one
    const b = await api.patch(`/v1/subscriptions/${e.body.replaced_by}`, {
      replace_immediately_type: 'end_current_subscription_and_bill',
      plan_id: 'pro',
    });
    expect(b.body.replacement.plan_id).toBe('pro');
    // scale (99.00 in advance, from 03-16) ended the same instant it started: all of it is unused
    const scaleInvoices = await invoicesOf(api, e.body.replaced_by);
    expect(scaleInvoices.map((i) => i.reason)).toEqual(['subscription_start', 'cancel']);
    expect(scaleInvoices[1].line_items.map((l: any) => [l.kind, l.amount_due])).toContainEqual(['proration_credit', '-99.00']);

    // prorate: false keeps the in-advance fee
    clock = Date.parse('2026-03-20T00:00:00Z');
    const kept = await api.post(`/v1/subscriptions/${b.body.replaced_by}/cancel`, {
      type: 'end_current_subscription_and_dont_bill',
      prorate: false,
    });
    expect(kept.status).toBe(200);
    expect((await invoicesOf(api, b.body.replaced_by)).map((i) => i.reason)).toEqual(['subscription_start']);
  });

  it('change_subscription_plan switches mid-period with proration; usage at close uses the new plan', async () => {
    clock = Date.parse('2026-04-16T00:00:00Z'); // half of April (30 days)
    apiCallsPerQuery = 3500;
    const { api, orgId } = await setup();
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro', start_date: '2026-04-01T00:00:00Z' });
    expect((await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, { plan_id: 'scale' })).status).toBe(400);
    expect(
      (await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, { replace_immediately_type: 'change_subscription_plan' })).status,
    ).toBe(400);
    const c = await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
      replace_immediately_type: 'change_subscription_plan',
      plan_id: 'scale',
    });
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({
      subscription_id: s.body.subscription_id,
      plan_id: 'scale',
      status: 'active',
      current_period_start: '2026-04-01T00:00:00.000Z',
      plan_started_at: '2026-04-16T00:00:00.000Z',
    });
    const inv = await invoicesOf(api, s.body.subscription_id);
    const change = inv.find((i) => i.reason === 'plan_change');
    expect(change.line_items.map((l: any) => [l.kind, l.amount_due])).toEqual([
      ['proration_credit', '-24.50'],
      ['proration_charge', '49.50'],
    ]);
    expect(change.total).toBe('25.00');
    // the usage until the change is priced by pro (the plan in force then): (3500 - 1000) × 0.0004 = 1.00
    const before = inv.find((i) => i.reason === 'plan_change_usage');
    expect(before).toMatchObject({ status: 'draft', period_start: '2026-04-01T00:00:00.000Z', period_end: '2026-04-16T00:00:00.000Z' });
    expect(before.line_items.map((l: any) => [l.kind, l.amount_due, l.period_start])).toEqual([
      ['usage', '1.00', '2026-04-01T00:00:00.000Z'],
    ]);
    const q = queries[queries.length - 1]!;
    expect([q.from.toISOString(), q.to.toISOString()]).toEqual(['2026-04-01T00:00:00.000Z', '2026-04-16T00:00:00.000Z']);
    clock = Date.parse('2026-05-01T00:00:00Z');
    expect((await api.get(`/v1/subscriptions/${s.body.subscription_id}`)).body.current_period_start).toBe('2026-05-01T00:00:00.000Z');
    await runScheduler(orgId);
    const close = (await invoicesOf(api, s.body.subscription_id)).find((i) => i.reason === 'period_close');
    // the rest of April on scale (the fake reader answers 3500 calls for any range): 4 packages of 1000 =
    // 4.00, + May's scale fee 99.00; the invoice covers the usage it prices, from the change
    expect(close.line_items.map((l: any) => [l.kind, l.amount_due])).toEqual([
      ['usage', '4.00'],
      ['flat_fee', '99.00'],
    ]);
    expect(close.period_start).toBe('2026-04-16T00:00:00.000Z');
    expect(
      queries.some((x) => x.from.toISOString() === '2026-04-16T00:00:00.000Z' && x.to.toISOString() === '2026-05-01T00:00:00.000Z'),
    ).toBe(true);
    // the arrears plan has the same interval, but a weekly plan would not
    await api.post('/v1/plans', { plan_id: 'weekly', name: 'W', interval: 'week', flat_fee: '1' });
    expect(
      (
        await api.patch(`/v1/subscriptions/${s.body.subscription_id}`, {
          replace_immediately_type: 'change_subscription_plan',
          plan_id: 'weekly',
        })
      ).status,
    ).toBe(400);
  });

  it('editing a plan creates a version; existing subscriptions keep theirs, new ones get the new one', async () => {
    clock = Date.parse('2026-03-10T00:00:00Z');
    const { api, orgId } = await setup();
    const old = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro', start_date: '2026-03-01T00:00:00Z' });
    const v2 = await api.patch('/v1/plans/pro', { flat_fee: '59.00', entitlements: [{ feature_id: 'api', limit: 9000 }] });
    expect(v2.body.version).toBe(2);
    await api.post('/v1/customers', { customer_id: 'c2' });
    const fresh = await api.post('/v1/subscriptions', { customer_id: 'c2', plan_id: 'pro', start_date: '2026-03-10T00:00:00Z' });
    expect(fresh.body.plan_version).toBe(2);
    clock = Date.parse('2026-04-02T00:00:00Z');
    const d = await api.get(`/v1/subscriptions/${old.body.subscription_id}`);
    expect(d.body.plan_version).toBe(1);
    expect(d.body.plan.flat_fee).toBe('49.00');
    await runScheduler(orgId);
    const renewal = (await invoicesOf(api, old.body.subscription_id)).find((i) => i.reason === 'period_close');
    expect(renewal.line_items.find((l: any) => l.kind === 'flat_fee').amount_due).toBe('49.00');
    expect((await api.get('/v1/customers/c1/entitlements/api')).body.usage_limit).toBe(5000);
    expect((await api.get('/v1/customers/c2/entitlements/api')).body.usage_limit).toBe(9000);
    expect((await api.get('/v1/plans/pro')).body.versions).toEqual([
      expect.objectContaining({ version: 1, active_subscriptions: 1 }),
      expect.objectContaining({ version: 2, active_subscriptions: 1 }),
    ]);
  });

  it('a trial waives the flat fee of periods that start inside it', async () => {
    clock = Date.parse('2026-03-01T00:00:00Z');
    const { api, orgId } = await setup();
    await api.post('/v1/plans', { plan_id: 'trial', name: 'T', interval: 'week', flat_fee: '10.00', trial_days: 10 });
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'trial', start_date: '2026-03-01T00:00:00Z' });
    expect(s.body.trial_end).toBe('2026-03-11T00:00:00.000Z');
    expect(await invoicesOf(api, s.body.subscription_id)).toEqual([]);
    clock = Date.parse('2026-03-16T00:00:00Z'); // weeks: 03-01 (trial), 03-08 (trial), 03-15 (paid)
    expect((await api.get(`/v1/subscriptions/${s.body.subscription_id}`)).body.current_period_start).toBe('2026-03-15T00:00:00.000Z');
    expect(await runScheduler(orgId)).toMatchObject({ advanced: 1, invoices: 1 }); // two closes, one of them with no line
    const inv = await invoicesOf(api, s.body.subscription_id);
    // closing 03-01 bills nothing (next period 03-08 starts in the trial); closing 03-08 bills 03-15's fee
    expect(inv.map((i) => [i.period_start.slice(0, 10), i.line_items.map((l: any) => l.amount_due)])).toEqual([['2026-03-08', ['10.00']]]);
  });

  it('archiving a customer refuses while a subscription is live; an archived customer gets no new subscription', async () => {
    clock = Date.parse('2026-03-10T00:00:00Z');
    const { api } = await setup();
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro' });
    expect(s.status).toBe(201);
    const refused = await api.del('/v1/customers/c1');
    expect(refused.status).toBe(409);
    expect(refused.body.error.details).toEqual({ subscription_ids: [s.body.subscription_id] });
    expect((await api.get('/v1/customers/c1')).body.archived_at).toBeNull();
    expect(
      (await api.post(`/v1/subscriptions/${s.body.subscription_id}/cancel`, { type: 'end_current_subscription_and_dont_bill' })).status,
    ).toBe(200);
    const archived = await api.del('/v1/customers/c1');
    expect(archived.status).toBe(200);
    expect(archived.body.archived_at).not.toBeNull();
    const again = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'scale' });
    expect(again.status).toBe(404); // archived customers are not found for new subscriptions
  });

  it('estimates: upcoming invoice, a new subscription, a plan change — computed, never written', async () => {
    clock = Date.parse('2026-04-16T00:00:00Z'); // half of April (30 days)
    apiCallsPerQuery = 3500;
    const { api } = await setup();
    const s = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'pro', start_date: '2026-04-01T00:00:00Z' });
    const before = await invoicesOf(api, s.body.subscription_id);
    const up = await api.get(`/v1/subscriptions/${s.body.subscription_id}/upcoming_invoice`);
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    // usage so far (3500 - 1000 free) × 0.0004 = 1.00, + May's 49.00 in advance
    expect(up.body).toMatchObject({ reason: 'period_close', total: '50.00', period_end: '2026-05-01T00:00:00.000Z' });
    expect(up.body.line_items.map((l: any) => [l.kind, l.amount_due])).toEqual([
      ['usage', '1.00'],
      ['flat_fee', '49.00'],
    ]);
    const pv = await api.post('/v1/subscriptions/preview', { customer_id: 'c1', plan_id: 'scale' });
    expect(pv.body).toMatchObject({ subscription_id: null, reason: 'subscription_start', total: '99.00' });
    const ch = await api.post(`/v1/subscriptions/${s.body.subscription_id}/preview_change`, { plan_id: 'scale' });
    // half of pro's 49.00 back, half of scale's 99.00 charged, usage so far on pro 1.00
    expect(ch.body).toMatchObject({ proration_credit: '-24.50', proration_charge: '49.50', usage_so_far: '1.00', total: '26.00' });
    expect((await api.post(`/v1/subscriptions/${s.body.subscription_id}/preview_change`, { plan_id: 'weekly_nope' })).status).toBe(404);
    expect(await invoicesOf(api, s.body.subscription_id)).toEqual(before);
    expect((await api.get(`/v1/subscriptions/${s.body.subscription_id}`)).body.plan_id).toBe('pro');
  });
});
