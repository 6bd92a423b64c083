// Billing reads are pure (issue #10, item 1). With the scheduler paused (renewalIntervalMs 0) and a clock
// past the end of a period, every read — subscription detail and lists, customer detail and list,
// entitlements, customer_access, POST /v1/check without send_event, invoices — issues no invoice and
// changes no Postgres row (every row of the organization compared before/after, xmin included, so even
// a no-op UPDATE would show), while answering the period computed from the subscription's dates. Then one
// scheduler run closes each period exactly once (amounts computed here independently), a second run and
// a second instance add nothing, and concurrent runs on two instances invoice each period once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PgPool } from '@meterline/core';
import { client, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle, UsageReader } from '../src/index.ts';
import { runDueSubscriptions } from '../src/invoices/scheduler.ts';
import { currentPeriod, elapsedPeriods } from '../src/subscriptions/current.ts';
import type { SubscriptionRow } from '../src/subscriptions/store.ts';

let clock = Date.parse('2026-03-10T00:00:00Z');
const now = () => new Date(clock);
// api_calls per customer, whatever the window (the real pipeline is entitlements.int.test.ts's business)
const CALLS: Record<string, number> = { c1: 1234, c2: 500 };
const usage: UsageReader = {
  async versionStatus() {
    return 'ready';
  },
  async query(q) {
    return q.metric.metricId === 'api_calls'
      ? [{ customerId: q.customerId!, windowStart: null, groups: {}, value: CALLS[q.customerId!] ?? 0 }]
      : [];
  },
};

let a: BillingHandle;
let b: BillingHandle; // a second billing instance on the same database
beforeAll(async () => {
  ({ billing: a } = await startTestBilling({ renewalIntervalMs: 0, deps: { usage, now } }));
  ({ billing: b } = await startTestBilling({ renewalIntervalMs: 0, deps: { usage, now } }));
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

/** Every row of the organization in every table that has organization_id (+ its organizations row), with xmin. */
async function snapshot(pool: PgPool, orgId: string) {
  const tables = (
    await pool.query<{ table_name: string }>(
      `SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'organization_id' ORDER BY table_name`,
    )
  ).rows.map((r) => r.table_name);
  expect(tables).toEqual(
    expect.arrayContaining([
      'subscriptions',
      'invoices',
      'customers',
      'plans',
      'plan_versions',
      'features',
      'billable_metrics',
      'api_keys',
    ]),
  );
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const { rows } = await pool.query<{ r: string }>(
      `SELECT (x.xmin::text || ' ' || to_jsonb(x)::text) AS r FROM "${t.replaceAll('"', '""')}" x WHERE x.organization_id = $1`,
      [orgId],
    );
    out[t] = rows.map((r) => r.r).sort();
  }
  out.organizations = (
    await pool.query<{ r: string }>(`SELECT (x.xmin::text || ' ' || to_jsonb(x)::text) AS r FROM organizations x WHERE x.id = $1`, [orgId])
  ).rows.map((r) => r.r);
  return out;
}

const PRO = {
  plan_id: 'pro',
  name: 'Pro',
  interval: 'month',
  flat_fee: '20.00',
  flat_fee_timing: 'in_advance',
  components: [{ metric_id: 'api_calls', free_units: 100, pricing: { model: 'per_unit', unit_price: '0.05' } }],
  entitlements: [{ feature_id: 'api', limit: 5000 }],
};
const ARREARS = {
  plan_id: 'arrears',
  name: 'Arrears',
  interval: 'month',
  flat_fee: '30.00',
  flat_fee_timing: 'in_arrears',
  components: [{ metric_id: 'api_calls', free_units: 0, pricing: { model: 'per_unit', unit_price: '0.01' } }],
  entitlements: [{ feature_id: 'api', limit: null }],
};
// independently: cents of a per-unit price
const cents = (calls: number, free: number, unitCents: number) => Math.max(0, calls - free) * unitCents;
const money = (c: number) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, '0')}`;
const EXTRA = Array.from({ length: 10 }, (_, i) => `x${i}`);

describe('billing reads are pure', () => {
  it('reads answer the computed period and write nothing; one scheduler run closes it once; more runs and instances add nothing', async () => {
    clock = Date.parse('2026-03-10T00:00:00Z');
    const { orgId, api: apiA, apiKey } = await createOrg(a.url);
    const apiB = client(b.url, apiKey);
    let api = apiA;
    expect((await api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' })).status).toBe(201);
    expect((await api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' })).status).toBe(201);
    for (const p of [PRO, ARREARS]) expect((await api.post('/v1/plans', p)).status).toBe(201);
    for (const c of ['c1', 'c2', ...EXTRA]) expect((await api.post('/v1/customers', { customer_id: c })).status).toBe(201);
    const subA = (
      await api.post('/v1/subscriptions', {
        customer_id: 'c1',
        plan_id: 'pro',
        subscription_id: 'sub_a',
        start_date: '2026-03-01T00:00:00Z',
      })
    ).body;
    const subB = (
      await api.post('/v1/subscriptions', {
        customer_id: 'c2',
        plan_id: 'arrears',
        subscription_id: 'sub_b',
        start_date: '2026-03-01T00:00:00Z',
      })
    ).body;
    expect([subA.status, subB.status]).toEqual(['active', 'active']);
    expect((await api.post('/v1/subscriptions/sub_b/cancel', { type: 'turn_off_auto_renew' })).body).toMatchObject({ auto_renew: false });
    for (const c of EXTRA)
      expect(
        (
          await api.post('/v1/subscriptions', {
            customer_id: c,
            plan_id: 'pro',
            subscription_id: `sub_${c}`,
            start_date: '2026-03-01T00:00:00Z',
          })
        ).status,
      ).toBe(201);
    const invoices = async () => (await api.get('/v1/invoices?limit=100')).body.data as any[];
    expect((await invoices()).map((i) => i.reason)).toEqual(Array(11).fill('subscription_start'));

    // March has ended; nobody has closed it
    clock = Date.parse('2026-04-03T12:00:00Z');
    const before = await snapshot(a.deps.pool, orgId);
    const reads: Record<string, unknown>[] = [];
    for (let round = 0; round < 4; round++) {
      api = round % 2 === 0 ? apiA : apiB; // both instances answer, from the same rows
      const r = {
        a: await api.get('/v1/subscriptions/sub_a'),
        b: await api.get('/v1/subscriptions/sub_b'),
        list: await api.get('/v1/subscriptions?limit=100'),
        active: await api.get('/v1/subscriptions?status=active&limit=100'),
        ended: await api.get('/v1/subscriptions?status=ended'),
        byCustomer: await api.get('/v1/subscriptions?customer_id=c1'),
        customers: await api.get('/v1/customers?limit=100'),
        c1: await api.get('/v1/customers/c1'),
        c2: await api.get('/v1/customers/c2'),
        ents: await api.get('/v1/customers/c1/entitlements'),
        ent: await api.get('/v1/customers/c1/entitlements/api'),
        ent2: await api.get('/v1/customers/c2/entitlements/api'),
        accessFeature: await api.get('/v1/customer_access?customer_id=c1&feature_name=api'),
        accessEvent: await api.get('/v1/customer_access?customer_id=c1&event_name=api_call'),
        accessEnded: await api.get('/v1/customer_access?customer_id=c2&feature_name=api'),
        check: await api.post('/v1/check', { customer_id: 'c1', feature_id: 'api' }),
        checkMany: await api.post('/v1/check', { customer_id: 'c1', feature_id: 'api', required_balance: 10, send_event: false }),
        checkEnded: await api.post('/v1/check', { customer_id: 'c2', feature_id: 'api' }),
        invoices: await api.get('/v1/invoices?limit=100'),
      };
      for (const [k, v] of Object.entries(r)) expect([k, v.status]).toEqual([k, 200]);
      reads.push(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.body])));
    }
    const r = reads[0] as Record<string, any>;
    // the renewed period, computed from the dates
    expect(r.a).toMatchObject({
      status: 'active',
      current_period_start: '2026-04-01T00:00:00.000Z',
      current_period_end: '2026-05-01T00:00:00.000Z',
      plan_started_at: '2026-04-01T00:00:00.000Z',
    });
    expect(r.a.current_period).toMatchObject({ start: '2026-04-01T00:00:00.000Z', end: '2026-05-01T00:00:00.000Z' });
    expect(r.b).toMatchObject({
      status: 'ended',
      ended_at: '2026-04-01T00:00:00.000Z',
      end_reason: 'auto_renew_off',
      current_period_start: '2026-03-01T00:00:00.000Z',
    });
    expect(r.list.data).toHaveLength(12);
    expect(r.list.data.find((s: any) => s.subscription_id === 'sub_a')).toEqual(
      Object.fromEntries(Object.keys(r.list.data[0]).map((k) => [k, r.a[k]])),
    );
    expect(r.active.data.map((s: any) => s.subscription_id).sort()).toEqual(['sub_a', ...EXTRA.map((c) => `sub_${c}`)].sort());
    expect(r.ended.data.map((s: any) => s.subscription_id)).toEqual(['sub_b']);
    expect(r.byCustomer.data.map((s: any) => s.current_period_start)).toEqual(['2026-04-01T00:00:00.000Z']);
    expect(r.c1.subscriptions.map((s: any) => [s.status, s.current_period_start])).toEqual([['active', '2026-04-01T00:00:00.000Z']]);
    expect(r.c2.subscriptions.map((s: any) => [s.status, s.ended_at])).toEqual([['ended', '2026-04-01T00:00:00.000Z']]);
    expect(r.c1.total_amount_due).toBe('20.00'); // only the start invoice exists
    expect(r.ent).toMatchObject({
      is_granted: true,
      usage_period_start: '2026-04-01T00:00:00.000Z',
      usage_period_end: '2026-05-01T00:00:00.000Z',
      subscription_id: 'sub_a',
      current_usage: 1234,
    });
    expect(r.ents.data).toEqual([expect.objectContaining({ feature_id: 'api', usage_period_start: '2026-04-01T00:00:00.000Z' })]);
    expect(r.ent2).toMatchObject({ is_granted: false, access_denied_reason: 'no_active_subscription' });
    expect(r.accessFeature).toMatchObject({ access: true });
    expect(r.accessEvent).toMatchObject({ access: true, usage_per_component: [expect.objectContaining({ plan_id: 'pro', usage: 1234 })] });
    expect(r.accessEnded).toMatchObject({ access: false, access_denied_reason: 'no_active_subscription' });
    expect(r.check).toMatchObject({
      allowed: true,
      usage: 1234,
      event_recorded: false,
      entitlement: expect.objectContaining({ usage_period_start: '2026-04-01T00:00:00.000Z' }),
    });
    expect(r.checkMany).toMatchObject({ allowed: true, event_recorded: false });
    expect(r.checkEnded).toMatchObject({ allowed: false });
    expect(r.invoices.data).toHaveLength(11);
    // every round answered the same, and nothing was written
    for (const later of reads.slice(1)) expect(later).toEqual(reads[0]);
    api = apiA;
    const after = await snapshot(a.deps.pool, orgId);
    for (const t of Object.keys(before)) expect([t, after[t]]).toEqual([t, before[t]]);
    expect(after).toEqual(before);

    // one scheduler run closes March exactly once
    // (each close writes a draft; the grace period ended an hour after March did, long before now(), and
    // nothing was produced to the topic, so the same run finalizes all 12)
    expect(await runDueSubscriptions(a.deps, now(), { organizationId: orgId })).toEqual({
      due: 12,
      advanced: 12,
      invoices: 12,
      refreshed: 0,
      finalized: 12,
      waiting: 0,
      skipped: 0,
      failed: 0,
    });
    const closes = (await invoices()).filter((i) => i.reason === 'period_close');
    expect(closes).toHaveLength(12);
    const closeA = closes.find((i) => i.subscription_id === 'sub_a');
    const closeB = closes.find((i) => i.subscription_id === 'sub_b');
    // A: (1234 - 100 free) * 0.05 = 56.70 usage + April's 20.00 in advance
    expect(closeA).toMatchObject({
      period_start: '2026-03-01T00:00:00.000Z',
      period_end: '2026-04-01T00:00:00.000Z',
      total: money(cents(1234, 100, 5) + 2000),
    });
    expect(closeA.total).toBe('76.70');
    expect(closeA.line_items.map((l: any) => [l.kind, l.amount_due])).toEqual([
      ['usage', '56.70'],
      ['flat_fee', '20.00'],
    ]);
    // B: March's 30.00 in arrears + 500 * 0.01 = 5.00 usage, no next fee (ends)
    expect(closeB).toMatchObject({
      period_start: '2026-03-01T00:00:00.000Z',
      period_end: '2026-04-01T00:00:00.000Z',
      total: money(3000 + cents(500, 0, 1)),
    });
    expect(closeB.total).toBe('35.00');
    for (const c of EXTRA) expect(closes.find((i) => i.subscription_id === `sub_${c}`)).toMatchObject({ total: '20.00' });
    // the rows now hold what the reads showed
    const aAfter = (await api.get('/v1/subscriptions/sub_a')).body;
    expect(aAfter).toEqual(r.a);
    expect((await api.get('/v1/subscriptions/sub_b')).body).toEqual(r.b);
    const stored = (
      await a.deps.pool.query(
        'SELECT status, current_period_start, ended_at FROM subscriptions WHERE organization_id = $1 AND subscription_id = ANY($2) ORDER BY subscription_id',
        [orgId, ['sub_a', 'sub_b']],
      )
    ).rows;
    expect(stored.map((x) => [x.status, x.current_period_start.toISOString(), x.ended_at?.toISOString() ?? null])).toEqual([
      ['active', '2026-04-01T00:00:00.000Z', null],
      ['ended', '2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z'],
    ]);
    expect((await api.get('/v1/customers/c1')).body.total_amount_due).toBe('96.70');

    // a second run, and the other instance (concurrently), add nothing
    const closed = await snapshot(a.deps.pool, orgId);
    const again = await Promise.all([
      runDueSubscriptions(a.deps, now(), { organizationId: orgId }),
      runDueSubscriptions(b.deps, now(), { organizationId: orgId }),
    ]);
    expect(again).toEqual([
      { due: 0, advanced: 0, invoices: 0, refreshed: 0, finalized: 0, waiting: 0, skipped: 0, failed: 0 },
      { due: 0, advanced: 0, invoices: 0, refreshed: 0, finalized: 0, waiting: 0, skipped: 0, failed: 0 },
    ]);
    expect(await runDueSubscriptions(b.deps, now(), { organizationId: orgId })).toMatchObject({ advanced: 0, invoices: 0 });
    expect(await snapshot(a.deps.pool, orgId)).toEqual(closed);

    // the database refuses a second close of the same period outright
    await expect(
      a.deps.pool.query(
        `INSERT INTO invoices (organization_id, invoice_id, customer_id, subscription_id, status, currency, period_start, period_end, reason, total_minor)
       VALUES ($1, 'inv_dup', 'c1', 'sub_a', 'finalized', 'USD', '2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z', 'period_close', 1)`,
        [orgId],
      ),
    ).rejects.toMatchObject({ code: '23505' });
  });

  it('concurrent scheduler runs on two instances close each due period exactly once', async () => {
    clock = Date.parse('2026-03-10T00:00:00Z');
    const { orgId, api } = await createOrg(a.url);
    await api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' });
    await api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' });
    expect((await api.post('/v1/plans', PRO)).status).toBe(201);
    const ids = Array.from({ length: 40 }, (_, i) => `k${i}`);
    for (const c of ['c1', ...ids]) {
      expect((await api.post('/v1/customers', { customer_id: c })).status).toBe(201);
      expect(
        (
          await api.post('/v1/subscriptions', {
            customer_id: c,
            plan_id: 'pro',
            subscription_id: `s_${c}`,
            start_date: '2026-01-01T00:00:00Z',
          })
        ).status,
      ).toBe(201);
    }
    // created with a start in the past: January and February were closed by the create (a write)
    const count = async () =>
      (
        await a.deps.pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM invoices WHERE organization_id = $1 AND reason = 'period_close'`,
          [orgId],
        )
      ).rows[0]!.n;
    expect(await count()).toBe(String(41 * 2));
    // March and April elapse: 2 closes per subscription, raced by 4 runs on 2 instances
    clock = Date.parse('2026-05-02T00:00:00Z');
    const runs = await Promise.all([a, b, a, b].map((h) => runDueSubscriptions(h.deps, now(), { organizationId: orgId, batchSize: 7 })));
    expect(runs.reduce((n, r) => n + r.failed, 0)).toBe(0);
    expect(runs.reduce((n, r) => n + r.advanced, 0)).toBe(41);
    expect(runs.reduce((n, r) => n + r.invoices, 0)).toBe(82);
    expect(await count()).toBe(String(41 * 4));
    const dup = await a.deps.pool.query(
      `SELECT subscription_id, period_start FROM invoices WHERE organization_id = $1 AND reason = 'period_close' GROUP BY 1, 2 HAVING count(*) > 1`,
      [orgId],
    );
    expect(dup.rows).toEqual([]);
    const c1 = (await api.get('/v1/invoices?customer_id=c1&limit=100')).body.data.map((i: any) => [
      i.reason,
      i.period_start.slice(0, 10),
      i.total,
    ]);
    expect(c1).toEqual([
      ['subscription_start', '2026-01-01', '20.00'],
      ['period_close', '2026-01-01', '76.70'],
      ['period_close', '2026-02-01', '76.70'],
      ['period_close', '2026-03-01', '76.70'],
      ['period_close', '2026-04-01', '76.70'],
    ]);
    expect(await runDueSubscriptions(b.deps, now(), { organizationId: orgId })).toMatchObject({ due: 0, invoices: 0 });
    console.log('[pure-reads] concurrent runs', JSON.stringify(runs));
  });

  it('currentPeriod is the state elapsedPeriods persists (pure, anchored on start_date)', () => {
    const base: SubscriptionRow = {
      subscription_id: 's',
      customer_id: 'c',
      plan_id: 'p',
      plan_version: 1,
      status: 'active',
      start_date: new Date('2026-01-31T00:00:00Z'),
      end_date: null,
      auto_renew: true,
      current_period_start: new Date('2026-01-31T00:00:00Z'),
      current_period_end: new Date('2026-02-28T00:00:00Z'),
      plan_started_at: new Date('2026-01-31T00:00:00Z'),
      trial_end: null,
      ended_at: null,
      end_reason: null,
      replaced_by: null,
      created_at: new Date(0),
      updated_at: new Date(0),
      interval: 'month',
    };
    const at = new Date('2026-04-01T00:00:00Z');
    expect(currentPeriod(base, at)).toMatchObject({
      current_period_start: new Date('2026-03-31T00:00:00Z'),
      current_period_end: new Date('2026-04-30T00:00:00Z'),
    });
    expect(elapsedPeriods(base, at).closes.map((c) => c.closeAt.toISOString().slice(0, 10))).toEqual(['2026-02-28', '2026-03-31']);
    const frozen = structuredClone(base);
    currentPeriod(base, at);
    expect(base).toEqual(frozen); // the input is not mutated
    const ending = { ...base, end_date: new Date('2026-03-15T00:00:00Z') };
    expect(currentPeriod(ending, at)).toMatchObject({
      status: 'ended',
      ended_at: new Date('2026-03-15T00:00:00Z'),
      end_reason: 'end_date_reached',
      current_period_start: new Date('2026-02-28T00:00:00Z'),
    });
    const future = {
      ...base,
      status: 'not_started' as const,
      start_date: new Date('2026-05-01T00:00:00Z'),
      current_period_start: new Date('2026-05-01T00:00:00Z'),
      current_period_end: new Date('2026-06-01T00:00:00Z'),
    };
    expect(currentPeriod(future, at)).toBe(future);
  });
});
