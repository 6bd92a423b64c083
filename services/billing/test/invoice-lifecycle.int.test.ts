// The invoice lifecycle through the real pipeline (gateway -> Kafka -> aggregator -> ClickHouse ->
// billing), time moved with POST /admin/organizations/:id/billing_run {as_of}:
//   - a period's draft takes usage that arrives during the grace period, then is finalized and numbered;
//   - late usage after finalization is billed once, on the next invoice, as an adjustment line;
//   - an aggregator stall across the grace end makes the invoice wait instead of under-billing;
//   - finalize early, mark paid, void, uncollectible; finalized content is frozen (database trigger);
//   - two instances finalizing many drafts at once: one number each, no gaps.
// Expected amounts are the test's own arithmetic (per unit 0.10).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type Config, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { ADMIN_SECRET, client, createOrg, startTestBilling } from './helpers.ts';
import { startBilling, type BillingHandle } from '../src/index.ts';

const GRACE_S = 600;
const DAY = 86_400_000;

let a: BillingHandle;
let b: BillingHandle;
let config: Config;
let gateway: Gateway;
let aggregator: Aggregator | null = null;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;

const startAgg = async () => {
  aggregator = await startAggregator({
    ...config,
    aggregator: { ...config.aggregator, port: 0, groupId: `g_lifecycle_${config.kafka.eventsTopic}` },
  });
};

beforeAll(async () => {
  ({ billing: a, config } = await startTestBilling({ env: { GATEWAY_PORT: '0' } }));
  b = await startBilling(config, {}, { port: 0, renewalIntervalMs: 0 });
  pg = createPostgres(config.postgresUrl, { max: 4 });
  gateway = await startGateway(config, { pg });
  await startAgg();
  org = await createOrg(a.url);
  expect((await org.api.put('/v1/settings/invoicing', { grace_period_seconds: GRACE_S })).body).toEqual({ grace_period_seconds: GRACE_S });
  expect((await org.api.post('/v1/metrics', { metric_id: 'calls', event_name: 'call', aggregation: 'count' })).status).toBe(201);
  expect(
    (
      await org.api.post('/v1/plans', {
        plan_id: 'metered',
        name: 'Metered',
        interval: 'month',
        flat_fee: '0',
        components: [{ metric_id: 'calls', pricing: { model: 'per_unit', unit_price: '0.10' } }],
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

const admin = (url: string) => client(url, undefined, { 'x-admin-secret': ADMIN_SECRET });
const run = async (asOf: Date, url = a.url) => {
  const r = await admin(url).post(`/admin/organizations/${org.orgId}/billing_run`, { as_of: asOf.toISOString() });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as Record<string, number>;
};

async function send(customerId: string, n: number, at: Date) {
  const events = Array.from({ length: n }, () => ({
    customer_id: customerId,
    event_name: 'call',
    idempotency_id: uniqueId('e'),
    time_created: at.toISOString(),
  }));
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
    body: JSON.stringify(events),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

const usageTotal = async (customerId: string, from: Date, to: Date) =>
  (
    await org.api.get(
      `/v1/usage?customer_id=${customerId}&metric_id=calls&from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`,
    )
  ).body.total as number;

const waitUsage = (customerId: string, from: Date, to: Date, n: number) =>
  waitFor(
    () => usageTotal(customerId, from, to),
    (t) => t === n,
    { timeoutMs: 30_000, intervalMs: 50, what: `${n} calls visible for ${customerId}` },
  );

const invoicesOf = async (sub: string) => (await org.api.get(`/v1/invoices?subscription_id=${sub}&limit=100`)).body.data as any[];

/** A subscription whose first monthly period ended a minute ago (start_date a month and a minute back). */
async function subscriptionEndedAMinuteAgo(customerId: string) {
  const start = new Date(Date.now() - 60_000);
  start.setUTCMonth(start.getUTCMonth() - 1);
  expect((await org.api.post('/v1/customers', { customer_id: customerId })).status).toBe(201);
  const s = await org.api.post('/v1/subscriptions', { customer_id: customerId, plan_id: 'metered', start_date: start.toISOString() });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  const [close] = (await invoicesOf(s.body.subscription_id)).filter((i) => i.reason === 'period_close');
  return { sub: s.body.subscription_id as string, start, close };
}

describe('invoice lifecycle', () => {
  it('grace period, finalization, late usage billed once on the next invoice', async () => {
    const c = uniqueId('c');
    const { sub, start, close } = await subscriptionEndedAMinuteAgo(c);
    const periodEnd = new Date(close.period_end);
    expect(close).toMatchObject({ status: 'draft', number: null, total: '0.00' });
    expect(Date.parse(close.grace_until)).toBe(periodEnd.getTime() + GRACE_S * 1000);
    const inPeriod = new Date(periodEnd.getTime() - 3 * DAY);

    // usage arriving during the grace period is on the draft; a draft is not due
    await send(c, 3, inPeriod);
    await waitUsage(c, start, periodEnd, 3);
    // (a draft is refreshed every 5 min: run the worker 6 min on, still inside the 10 min grace)
    expect(await run(new Date(Date.now() + 6 * 60_000))).toMatchObject({ refreshed: 1, finalized: 0, failed: 0 });
    const draft = (await invoicesOf(sub)).find((i) => i.invoice_id === close.invoice_id);
    expect(draft).toMatchObject({ status: 'draft', total: '0.30' });
    expect(draft.line_items.find((l: any) => l.kind === 'usage')).toMatchObject({
      quantity: '3',
      amount_due: '0.30',
      period_start: start.toISOString(),
      period_end: periodEnd.toISOString(),
    });
    expect((await org.api.get(`/v1/customers/${c}`)).body.total_amount_due).toBe('0.00');

    // grace over: finalized with everything sent before, numbered, due
    await send(c, 2, inPeriod);
    await waitUsage(c, start, periodEnd, 5);
    const afterGrace = new Date(periodEnd.getTime() + GRACE_S * 1000 + 1_000);
    expect(await run(afterGrace)).toMatchObject({ finalized: 1, failed: 0 });
    const final = (await org.api.get(`/v1/invoices/${close.invoice_id}`)).body;
    expect(final).toMatchObject({ status: 'finalized', total: '0.50', grace_until: null });
    expect(final.number).toMatch(/^INV-\d{6}$/);
    expect((await org.api.get(`/v1/customers/${c}`)).body.total_amount_due).toBe('0.50');

    // late usage into the finalized period: never changes it; billed on the next invoice, once
    await send(c, 4, inPeriod);
    await waitUsage(c, start, periodEnd, 9);
    expect(await run(afterGrace)).toMatchObject({ finalized: 0, failed: 0 });
    expect((await org.api.get(`/v1/invoices/${close.invoice_id}`)).body).toEqual(final);
    const nextEnd = new Date(periodEnd);
    nextEnd.setUTCMonth(nextEnd.getUTCMonth() + 1);
    // the next period's invoice: 1 call in it (0.10) + the late 4 of the previous one (0.40)
    await send(c, 1, new Date(periodEnd.getTime() + 60_000));
    await waitUsage(c, periodEnd, nextEnd, 1);
    const afterNext = new Date(nextEnd.getTime() + GRACE_S * 1000 + 1_000);
    await run(afterNext);
    const next = (await invoicesOf(sub)).find((i) => i.reason === 'period_close' && i.period_start === periodEnd.toISOString());
    expect(next).toMatchObject({ status: 'finalized', total: '0.50' });
    const adj = next.line_items.filter((l: any) => l.kind === 'usage_adjustment');
    expect(adj).toHaveLength(1);
    expect(adj[0]).toMatchObject({
      quantity: '4',
      amount_due: '0.40',
      period_start: start.toISOString(),
      period_end: periodEnd.toISOString(),
    });
    expect(adj[0].description).toContain(final.number);
    // running again bills nothing twice
    expect(await run(afterNext)).toMatchObject({ advanced: 0, invoices: 0, finalized: 0, failed: 0 });
    expect((await invoicesOf(sub)).reduce((s, i) => s + Math.round(Number(i.total) * 100), 0)).toBe(100); // 10 calls × 0.10
    expect((await org.api.get(`/v1/customers/${c}`)).body.total_amount_due).toBe('1.00');
  }, 120_000);

  it('an aggregator stall across the end of the grace period makes the invoice wait, then bills everything', async () => {
    const c = uniqueId('c');
    const { close } = await subscriptionEndedAMinuteAgo(c);
    const periodEnd = new Date(close.period_end);
    await aggregator!.stop();
    aggregator = null;
    await send(c, 7, new Date(periodEnd.getTime() - DAY));
    const afterGrace = new Date(periodEnd.getTime() + GRACE_S * 1000 + 1_000);
    expect(await run(afterGrace)).toMatchObject({ finalized: 0, waiting: 1, failed: 0 });
    expect(await run(afterGrace)).toMatchObject({ finalized: 0, waiting: 1, failed: 0 });
    expect((await org.api.get(`/v1/invoices/${close.invoice_id}`)).body).toMatchObject({ status: 'draft', total: '0.00' });
    await startAgg();
    const done = await waitFor(
      () => run(afterGrace),
      (r) => r.finalized === 1,
      { timeoutMs: 60_000, intervalMs: 200, what: 'the draft finalized once the aggregator caught up' },
    );
    expect(done.failed).toBe(0);
    expect((await org.api.get(`/v1/invoices/${close.invoice_id}`)).body).toMatchObject({ status: 'finalized', total: '0.70' });
  }, 120_000);

  it('finalize early, mark paid, void, uncollectible; finalized content is frozen', async () => {
    const c = uniqueId('c');
    const { close } = await subscriptionEndedAMinuteAgo(c);
    const post = (id: string, action: string) => org.api.post(`/v1/invoices/${id}/${action}`, {});
    expect((await post(close.invoice_id, 'mark_paid')).status).toBe(409); // a draft cannot be paid
    const early = await post(close.invoice_id, 'finalize');
    expect(early.status, JSON.stringify(early.body)).toBe(200);
    // nothing is owed: a zero invoice is finalized as paid
    expect(early.body).toMatchObject({ status: 'paid', total: '0.00' });
    expect((await post(close.invoice_id, 'finalize')).body.error.code).toBe('conflict');
    expect((await post(close.invoice_id, 'void')).status).toBe(409); // paid is final
    await expect(
      pg.query(`UPDATE invoices SET total_minor = 1 WHERE organization_id = $1 AND invoice_id = $2`, [org.orgId, close.invoice_id]),
    ).rejects.toMatchObject({ code: '23514' });

    const c2 = uniqueId('c');
    const s2 = await subscriptionEndedAMinuteAgo(c2);
    await send(c2, 2, new Date(Date.parse(s2.close.period_end) - DAY));
    await waitUsage(c2, s2.start, new Date(s2.close.period_end), 2);
    expect((await post(s2.close.invoice_id, 'finalize')).body).toMatchObject({ status: 'finalized', total: '0.20' });
    expect((await org.api.get(`/v1/customers/${c2}`)).body.total_amount_due).toBe('0.20');
    expect((await post(s2.close.invoice_id, 'mark_uncollectible')).body.status).toBe('uncollectible');
    expect((await org.api.get(`/v1/customers/${c2}`)).body.total_amount_due).toBe('0.00');
    const paid = (await post(s2.close.invoice_id, 'mark_paid')).body;
    expect(paid.status).toBe('paid');
    expect(Date.parse(paid.paid_at)).toBeGreaterThan(0);
    expect((await post('inv_nope', 'void')).status).toBe(404);
  }, 60_000);

  it('two instances finalizing 20 drafts at once: one number each, no gap', async () => {
    const subs = [];
    for (let i = 0; i < 20; i++) subs.push(await subscriptionEndedAMinuteAgo(uniqueId('n')));
    const afterGrace = new Date(Date.parse(subs[0]!.close.period_end) + GRACE_S * 1000 + 120_000);
    const [ra, rb] = await Promise.all([run(afterGrace, a.url), run(afterGrace, b.url)]);
    expect((ra.finalized ?? 0) + (rb.finalized ?? 0)).toBe(20);
    const all = (await org.api.get('/v1/invoices?limit=200')).body.data as any[];
    const numbers = all
      .filter((i) => i.number)
      .map((i) => Number(i.number.slice(4)))
      .sort((x, y) => x - y);
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
    expect(all.filter((i) => i.status === 'draft')).toEqual([]);
    // the status filter
    const finalized = (await org.api.get('/v1/invoices?status=finalized&limit=200')).body.data as any[];
    expect(finalized.length).toBe(all.filter((i) => i.status === 'finalized').length);
    expect(finalized.every((i) => i.status === 'finalized')).toBe(true);
    expect((await org.api.get('/v1/invoices?status=issued')).status).toBe(400);
  }, 120_000);

  it('late usage of an ended subscription becomes an adjustment invoice of its own, once', async () => {
    const c = uniqueId('c');
    const { sub, start, close } = await subscriptionEndedAMinuteAgo(c);
    const periodEnd = new Date(close.period_end);
    const ended = await org.api.post(`/v1/subscriptions/${sub}/cancel`, { type: 'end_current_subscription_and_dont_bill' });
    expect(ended.body.status).toBe('ended');
    const inPeriod = new Date(periodEnd.getTime() - DAY);
    await send(c, 2, inPeriod);
    await waitUsage(c, start, periodEnd, 2);
    const afterGrace = new Date(periodEnd.getTime() + GRACE_S * 1000 + 1_000);
    expect(await run(afterGrace)).toMatchObject({ finalized: 1, failed: 0 });
    expect((await org.api.get(`/v1/invoices/${close.invoice_id}`)).body).toMatchObject({ status: 'finalized', total: '0.20' });

    await send(c, 3, inPeriod);
    await waitUsage(c, start, periodEnd, 5);
    const later = new Date(afterGrace.getTime() + 2 * 3_600_000);
    expect(await run(later)).toMatchObject({ invoices: 1, finalized: 1, failed: 0 });
    const adj = (await invoicesOf(sub)).find((i) => i.reason === 'usage_adjustment');
    expect(adj).toMatchObject({ status: 'finalized', total: '0.30' });
    expect(adj.line_items).toHaveLength(1);
    expect(adj.line_items[0]).toMatchObject({ kind: 'usage_adjustment', quantity: '3', period_start: start.toISOString() });
    // checked again later: nothing more to bill
    expect(await run(new Date(later.getTime() + 2 * 3_600_000))).toMatchObject({ invoices: 0, failed: 0 });
    expect((await invoicesOf(sub)).filter((i) => i.reason === 'usage_adjustment')).toHaveLength(1);
    expect((await org.api.get(`/v1/customers/${c}`)).body.total_amount_due).toBe('0.50');
  }, 120_000);
});
