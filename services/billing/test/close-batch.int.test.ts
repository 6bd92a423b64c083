// Batched, parallel period closes (invoices/scheduler.ts closeDueSubscriptions) against real Postgres and
// ClickHouse: usage rows are written straight into metric_usage (the aggregator's rollup table, one row
// per customer and minute bucket, as the aggregator writes them), then one run closes many subscriptions
// of several plans and period lengths at once. Every invoice amount is the test's own arithmetic.
// A subscription that cannot close (its plan row altered in SQL to an out-of-range flat fee) is set
// aside with its error while the healthy ones close, is visible through the API and a metric, and is
// retried with backoff until it closes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlNumber, sqlString } from '@meterline/core';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';
import { closeDueSubscriptions } from '../src/invoices/scheduler.ts';

let billing: BillingHandle;
let clock = Date.parse('2026-03-15T00:00:00Z');
let org: Awaited<ReturnType<typeof createOrg>>;

const MONTHLY = 24; // per plan
const WEEKLY = 12;

beforeAll(async () => {
  ({ billing } = await startTestBilling({ deps: { now: () => new Date(clock) } }));
  org = await createOrg(billing.url);
  const api = org.api;
  for (const m of [
    { metric_id: 'calls', event_name: 'call', aggregation: 'count' },
    { metric_id: 'gb', event_name: 'upload', aggregation: 'sum', property: 'gb' },
  ])
    expect((await api.post('/v1/metrics', m)).status).toBe(201);
  const plans = [
    {
      plan_id: 'a',
      name: 'A',
      interval: 'month',
      flat_fee: '10.00',
      flat_fee_timing: 'in_advance',
      components: [
        { metric_id: 'calls', free_units: 10, pricing: { model: 'per_unit', unit_price: '0.05' } },
        { metric_id: 'gb', pricing: { model: 'per_unit', unit_price: '1.00' } },
      ],
    },
    {
      plan_id: 'b',
      name: 'B',
      interval: 'month',
      flat_fee: '0',
      components: [{ metric_id: 'calls', pricing: { model: 'package', package_size: 100, package_price: '2.00' } }],
    },
    {
      plan_id: 'w',
      name: 'W',
      interval: 'week',
      flat_fee: '3.00',
      flat_fee_timing: 'in_arrears',
      components: [{ metric_id: 'calls', pricing: { model: 'per_unit', unit_price: '0.01' } }],
    },
    { plan_id: 'huge', name: 'Huge', interval: 'month', flat_fee: '1.00', flat_fee_timing: 'in_advance', components: [] },
  ];
  for (const p of plans) expect((await api.post('/v1/plans', p)).status, p.plan_id).toBe(201);
}, 60_000);

afterAll(async () => {
  await billing?.stop();
});

const calls = (i: number) => 7 * i + 3;

/** Rollup rows as the aggregator writes them (count: event_count; sum: sum_decimal), for one customer. */
function rows(customer: string, i: number) {
  const at = (iso: string) => Date.parse(iso) / 1000;
  // calls: part in March 10 (monthly periods only), part in March 25 (monthly and the week 23..30),
  // part on April 1 00:00 (after every closed period)
  const c = calls(i);
  return [
    ['calls', at('2026-03-10T12:00:00Z'), c - 2, '0'],
    ['calls', at('2026-03-25T12:00:00Z'), 2, '0'],
    ['calls', at('2026-04-01T00:00:00Z'), 1000, '0'],
    ['gb', at('2026-03-10T12:00:00Z'), 1, (i / 10).toFixed(1)],
    ['gb', at('2026-03-25T12:01:00Z'), 1, '0.2'],
  ].map(
    ([metric, bucket, count, dec], k) =>
      `(${sqlString(org.orgId)}, ${sqlString(String(metric))}, 1, ${sqlString(customer)}, toDateTime(${sqlNumber(Number(bucket))}), '', '', 't', 0, ${k}, 1, ${sqlNumber(Number(count))}, 0, 0, toDecimal128(${sqlString(String(dec))}, 12), toDecimal128('0', 12))`,
  );
}

const cents = (amount: string) => Math.round(Number(amount) * 100);

describe('batched period close', () => {
  it('closes many subscriptions in one run with few usage queries; amounts match; a failing one is set aside and retried', async () => {
    const api = org.api;
    const subs: { id: string; plan: string; customer: string; i: number }[] = [];
    let i = 0;
    for (const [plan, n, start] of [
      ['a', MONTHLY, '2026-03-01T00:00:00Z'],
      ['b', MONTHLY, '2026-03-01T00:00:00Z'],
      ['w', WEEKLY, '2026-03-23T00:00:00Z'],
    ] as const)
      for (let k = 0; k < n; k++, i++) {
        const customer = `c${String(i).padStart(3, '0')}`;
        expect((await api.post('/v1/customers', { customer_id: customer })).status).toBe(201);
        const s = await api.post('/v1/subscriptions', {
          customer_id: customer,
          plan_id: plan,
          start_date: start,
          subscription_id: `sub_${String(i).padStart(3, '0')}`,
        });
        expect(s.status, JSON.stringify(s.body)).toBe(201);
        subs.push({ id: s.body.subscription_id, plan, customer, i });
      }
    // sorts first: the one that cannot close
    expect((await api.post('/v1/customers', { customer_id: 'bad' })).status).toBe(201);
    expect(
      (
        await api.post('/v1/subscriptions', {
          customer_id: 'bad',
          plan_id: 'huge',
          start_date: '2026-03-01T00:00:00Z',
          subscription_id: 'sub_0',
        })
      ).status,
    ).toBe(201);
    await billing.deps.pool.query(
      `UPDATE plan_versions SET flat_fee = '99999999999999999999999'::numeric WHERE organization_id = $1 AND plan_id = 'huge'`,
      [org.orgId],
    );
    await billing.deps.ch.command({
      query: `INSERT INTO metric_usage (organization_id, metric_id, metric_version, customer_id, bucket, group_1, group_2, kafka_topic, kafka_partition,
                window_id, version, event_count, sum_value, max_value, sum_decimal, max_decimal) VALUES ${subs.flatMap((s) => rows(s.customer, s.i)).join(', ')}`,
    });

    // every period ended (March for monthly, the week of March 23 for weekly); one run closes them all
    clock = Date.parse('2026-04-01T00:00:30Z');
    const r = await closeDueSubscriptions(billing.deps, new Date(clock), { organizationId: org.orgId, batchSize: 25, concurrency: 4 });
    expect(r).toMatchObject({ due: subs.length + 1, advanced: subs.length, invoices: subs.length, skipped: 0, failed: 1 });
    // pages of 25: sub_0 + A's (calls, gb), B's and one W (calls per month, calls per week), W's (calls per
    // week): one query per (metric, period) and page, not one per subscription and component
    expect(r.usageQueries).toBe(5);

    const { body } = await api.get('/v1/invoices?limit=200');
    const closes = (body.data as any[]).filter((x) => x.reason === 'period_close');
    expect(closes).toHaveLength(subs.length);
    for (const s of subs) {
      const inv = closes.find((x) => x.subscription_id === s.id);
      const c = calls(s.i);
      let expected: number;
      if (s.plan === 'a')
        expected = Math.max(0, c - 10) * 5 + (10 * s.i + 20) + 1000; // calls, gb (0.i + 0.2) × 1.00, April's fee
      else if (s.plan === 'b') expected = Math.ceil(c / 100) * 200;
      else expected = 2 * 1 + 300; // the week of March 23: 2 calls × 0.01, the 3.00 fee in arrears
      expect([s.id, cents(inv.total)]).toEqual([s.id, expected]);
      expect(inv.period_end).toBe(s.plan === 'w' ? '2026-03-30T00:00:00.000Z' : '2026-04-01T00:00:00.000Z');
    }

    // the failing one: reported with its error, counted, not due again until its backoff passes
    const failures = await api.get('/v1/subscription_close_failures');
    expect(failures.body.data).toEqual([
      expect.objectContaining({
        subscription_id: 'sub_0',
        customer_id: 'bad',
        close_attempts: 1,
        close_failed_at: new Date(clock).toISOString(),
        next_retry_at: new Date(clock + 60_000).toISOString(),
      }),
    ]);
    expect(failures.body.data[0].close_error).toMatch(/out of range/);
    expect((await api.get('/v1/subscriptions/sub_0/close_failure')).body).toMatchObject({ close_attempts: 1 });
    expect((await api.get('/v1/subscriptions/sub_001/close_failure')).body).toMatchObject({ close_error: null, close_attempts: 0 });
    const metrics = await billing.deps.registry.metrics();
    expect(metrics).toMatch(/^meterline_billing_close_failures_total{service="billing"} 1$/m);
    expect(Number(/^meterline_billing_subscriptions_close_failing{service="billing"} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(
      1,
    );

    expect(await closeDueSubscriptions(billing.deps, new Date(clock + 30_000), { organizationId: org.orgId })).toMatchObject({
      due: 0,
      failed: 0,
    });
    // retried after the backoff (still failing: the next one is twice as long)
    expect(await closeDueSubscriptions(billing.deps, new Date(clock + 60_000), { organizationId: org.orgId })).toMatchObject({
      due: 1,
      failed: 1,
    });
    expect((await api.get('/v1/subscriptions/sub_0/close_failure')).body).toMatchObject({
      close_attempts: 2,
      next_retry_at: new Date(clock + 60_000 + 120_000).toISOString(),
    });
    // fixed: the next retry closes it and clears the failure
    await billing.deps.pool.query(`UPDATE plan_versions SET flat_fee = 1 WHERE organization_id = $1 AND plan_id = 'huge'`, [org.orgId]);
    expect(await closeDueSubscriptions(billing.deps, new Date(clock + 180_000), { organizationId: org.orgId })).toMatchObject({
      due: 1,
      advanced: 1,
      failed: 0,
    });
    expect((await api.get('/v1/subscription_close_failures')).body.data).toEqual([]);
    expect((await api.get('/v1/subscriptions/sub_0/close_failure')).body).toMatchObject({ close_error: null, close_attempts: 0 });
  });
});
