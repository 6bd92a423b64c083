// #15 item 6: what Lotus, Autumn and Stigg users send, against real Postgres (a fixed usage reader and a
// controlled clock, as in subscriptions.int.test.ts): dates YYYY-MM-DD wherever a date-time is taken,
// 400s that name the unknown field with a suggestion (Lotus names) or the Meterline way, camelCase keys,
// case-insensitive enums, one cancel body on both cancel routes (empty body = turn_off_auto_renew, Lotus
// Node's bill_now / revoke_access), features by id or name on customer_access and check, and the
// check's usage_limit (the limit) next to entitlement.included_usage (the free units).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle, UsageReader } from '../src/index.ts';

let billing: BillingHandle;
let org: Awaited<ReturnType<typeof createOrg>>;
const clock = Date.parse('2026-03-15T12:00:00Z');
const usage: UsageReader = {
  async versionStatus() {
    return 'ready';
  },
  async query(q) {
    return q.metric.metricId === 'api_calls' ? [{ customerId: q.customerId!, windowStart: null, groups: {}, value: 40 }] : [];
  },
};

const ok = (r: { status: number; body: unknown }, status = 200) => {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  return r.body as any;
};
const bad = (r: { status: number; body: any }, code = 'validation_error') => {
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.error.code, JSON.stringify(r.body)).toBe(code);
  expect(Array.isArray(r.body.error.details), JSON.stringify(r.body)).toBe(true);
  return r.body.error as { code: string; message: string; details: { field: string; reason: string; message?: string }[] };
};

let n = 0;
async function subscribe(plan = 'pro', extra: Record<string, unknown> = {}) {
  const customer_id = `c${++n}`;
  ok(await org.api.post('/v1/customers', { customer_id }), 201);
  return ok(await org.api.post('/v1/subscriptions', { customer_id, plan_id: plan, ...extra }), 201) as {
    subscription_id: string;
    customer_id: string;
  };
}

beforeAll(async () => {
  ({ billing } = await startTestBilling({ deps: { usage, now: () => new Date(clock) } }));
  org = await createOrg(billing.url);
  const api = org.api;
  ok(await api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' }), 201);
  ok(await api.post('/v1/features', { feature_id: 'api', name: 'API calls', type: 'metered', metric_id: 'api_calls' }), 201);
  ok(await api.post('/v1/features', { feature_id: 'sso', name: 'Single sign-on', type: 'boolean' }), 201);
  ok(await api.post('/v1/metrics', { metric_id: 'seat_count', event_name: 'seats', aggregation: 'latest', property: 'seats' }), 201);
  ok(await api.post('/v1/features', { feature_id: 'seats', type: 'metered', metric_id: 'seat_count' }), 201);
  ok(await api.post('/v1/features', { feature_id: 'seats_a', name: 'Seats', type: 'boolean' }), 201);
  ok(await api.post('/v1/features', { feature_id: 'seats_b', name: 'Seats', type: 'boolean' }), 201);
  // enum values in capitals (interval, pricing model, limit_type) and a camelCase key (freeUnits) are read as ours
  const plan = ok(
    await api.post('/v1/plans', {
      plan_id: 'pro',
      name: 'Pro',
      interval: 'Month',
      flat_fee: '30.00',
      flat_fee_timing: 'IN_ADVANCE',
      components: [{ metric_id: 'api_calls', freeUnits: 1000, pricing: { model: 'PER_UNIT', unitPrice: '0.01' } }],
      entitlements: [
        { feature_id: 'api', limit: 5000, limitType: 'HARD' },
        { feature_id: 'sso' },
        { feature_id: 'seats', limit: 100 },
        { feature_id: 'seats_a' },
        { feature_id: 'seats_b' },
      ],
    }),
    201,
  );
  expect(plan).toMatchObject({ interval: 'month', flat_fee_timing: 'in_advance' });
  expect(plan.components[0]).toMatchObject({ free_units: 1000, pricing: { model: 'per_unit', unit_price: '0.01' } });
  expect(plan.entitlements[0]).toMatchObject({ limit_type: 'hard' });
});
afterAll(async () => {
  await billing?.stop();
});

describe('dates YYYY-MM-DD wherever a date-time is taken', () => {
  it('a date-only start_date starts the subscription and its period at that UTC midnight', async () => {
    ok(await org.api.post('/v1/customers', { customer_id: 'lotus_date' }), 201);
    const s = ok(await org.api.post('/v1/subscriptions', { customer_id: 'lotus_date', plan_id: 'pro', start_date: '2026-03-01' }), 201);
    expect(s.start_date).toBe('2026-03-01T00:00:00.000Z');
    expect(s.current_period_start).toBe('2026-03-01T00:00:00.000Z');
    expect(s.current_period_end).toBe('2026-04-01T00:00:00.000Z');
    const ended = ok(await org.api.patch(`/v1/subscriptions/${s.subscription_id}`, { end_date: '2026-06-30' }));
    expect(ended.end_date).toBe('2026-06-30T00:00:00.000Z');
  });

  it('credit grants (effective_at, expires_at) and query strings (from, to) take dates too', async () => {
    ok(await org.api.post('/v1/customers', { customer_id: 'date_credit' }), 201);
    const g = ok(
      await org.api.post('/v1/customers/date_credit/credits', { amount: '10.00', effective_at: '2026-03-01', expires_at: '2027-01-01' }),
      201,
    );
    expect(g).toMatchObject({ effective_at: '2026-03-01T00:00:00.000Z', expires_at: '2027-01-01T00:00:00.000Z', status: 'active' });
    const u = ok(await org.api.get('/v1/usage?customer_id=date_credit&feature_id=api&from=2026-03-01&to=2026-03-16'));
    expect(u).toMatchObject({ from: '2026-03-01T00:00:00.000Z', to: '2026-03-16T00:00:00.000Z', total: 40 });
  });

  it('a date that does not exist or a malformed one is a 400 naming the field and both accepted forms', async () => {
    ok(await org.api.post('/v1/customers', { customer_id: 'bad_date' }), 201);
    for (const start_date of ['2026-02-30', '01/03/2026', '2026-3-1']) {
      const e = bad(await org.api.post('/v1/subscriptions', { customer_id: 'bad_date', plan_id: 'pro', start_date }));
      expect(e.message).toContain('body/start_date');
      expect(e.message).toContain('or a date ("2026-01-01"');
      expect(e.details[0]).toMatchObject({ field: 'start_date' });
    }
  });
});

describe('400s name the unknown or wrong field', () => {
  it('Lotus create_subscription: billing_plan_id → did you mean "plan_id"?', async () => {
    ok(await org.api.post('/v1/customers', { customer_id: 'lotus_sub' }), 201);
    const e = bad(await org.api.post('/v1/subscriptions', { customer_id: 'lotus_sub', billing_plan_id: 'pro', start_date: '2026-03-01' }));
    expect(e.message).toBe('body: unknown field "billing_plan_id"; did you mean "plan_id"?');
    expect(e.details).toEqual([
      expect.objectContaining({
        field: 'billing_plan_id',
        reason: 'unknown_field',
        path: '',
        params: expect.objectContaining({ suggestion: 'plan_id' }),
      }),
    ]);
  });

  it('Lotus create_customer: customer_name and payment_provider_id are both named, with the Meterline way', async () => {
    const e = bad(await org.api.post('/v1/customers', { customer_id: 'lotus_c', customer_name: 'Test', payment_provider_id: 'cus_123' }));
    expect(e.message).toBe('body: unknown field "customer_name"; did you mean "name"? (and 1 more: see details)');
    expect(e.details.map((d) => [d.field, d.reason])).toEqual([
      ['customer_name', 'unknown_field'],
      ['payment_provider_id', 'unknown_field'],
    ]);
    expect(e.details[1]!.message).toContain('"metadata": {"payment_provider_id": "cus_123"}');
    // the Meterline way works
    const c = ok(
      await org.api.post('/v1/customers', { customer_id: 'lotus_c', name: 'Test', metadata: { payment_provider_id: 'cus_123' } }),
      201,
    );
    expect(c).toMatchObject({ name: 'Test', metadata: { payment_provider_id: 'cus_123' } });
  });

  it('bill_now outside cancel says where it belongs; a near spelling gets a suggestion; nested fields have their path', async () => {
    ok(await org.api.post('/v1/customers', { customer_id: 'bill_now_c' }), 201);
    const e = bad(await org.api.post('/v1/subscriptions', { customer_id: 'bill_now_c', plan_id: 'pro', bill_now: true }));
    expect(e.message).toContain('unknown field "bill_now": bill_now is a cancel option: POST /v1/subscriptions/{subscription_id}/cancel');
    const typo = bad(await org.api.post('/v1/customers', { customer_id: 'typo', emial: 'a@b.c' }));
    expect(typo.message).toBe('body: unknown field "emial"; did you mean "email"?');
    const nested = bad(
      await org.api.post('/v1/plans', { plan_id: 'nested', name: 'N', interval: 'month', entitlements: [{ feature_id: 'api', limt: 5 }] }),
    );
    expect(nested.message).toBe('body/entitlements/0: unknown field "limt"; did you mean "limit"?');
    expect(nested.details[0]).toMatchObject({ field: 'entitlements/0/limt', reason: 'unknown_field' });
    // inside a pricing model's branch (ajv's own error, same message)
    const inPricing = bad(
      await org.api.post('/v1/plans', {
        plan_id: 'nested2',
        name: 'N',
        interval: 'month',
        components: [{ metric_id: 'api_calls', pricing: { model: 'per_unit', unit_price: '1', unit_prize: '2' } }],
      }),
    );
    expect(inPricing.message).toBe('body/components/0/pricing: unknown field "unit_prize"; did you mean "unit_price"?');
    // unknown query parameters too
    const q = bad(await org.api.get('/v1/customer_access?customer_id=x&feature=api'));
    expect(q.message).toContain('querystring: unknown field "feature"');
    // a wrong enum value lists the allowed ones
    const en = bad(await org.api.post('/v1/plans', { plan_id: 'en', name: 'E', interval: 'fortnight' }));
    expect(en.message).toBe('body/interval must be one of: "week", "month", "quarter", "year"');
    expect(en.details[0]).toMatchObject({ field: 'interval', reason: 'enum' });
  });
});

describe('camelCase keys and enum case', () => {
  it('Stigg-style camelCase and "SET" are read as snake_case and set', async () => {
    const s = await subscribe();
    const r = ok(await org.api.post('/v1/usage', { customerId: s.customer_id, featureId: 'seats', value: 45, updateBehavior: 'SET' }));
    expect(r).toMatchObject({
      customer_id: s.customer_id,
      feature_id: 'seats',
      update_behavior: 'set',
      current_usage: 45,
      usage_limit: 100,
    });
    const d = ok(await org.api.post('/v1/usage', { customer_id: s.customer_id, feature_id: 'api', value: 2, update_behavior: 'Delta' }));
    expect(d).toMatchObject({ update_behavior: 'delta', events_recorded: 2 });
    // query strings: camelCase keys and enum case too
    const list = ok(await org.api.get(`/v1/subscriptions?customerId=${s.customer_id}&status=ACTIVE`));
    expect(list.data.map((x: { subscription_id: string }) => x.subscription_id)).toEqual([s.subscription_id]);
  });

  it('camelCase next to its snake_case form is ambiguous: 400 naming both', async () => {
    const e = bad(await org.api.post('/v1/customers', { customer_id: 'dup', customerId: 'dup2' }));
    expect(e.message).toBe('body: unknown field "customerId": "customer_id" is also given (send one of them)');
    expect(e.details[0]).toMatchObject({ field: 'customerId', reason: 'unknown_field' });
  });

  it('free-form objects keep their keys as sent', async () => {
    const c = ok(await org.api.post('/v1/customers', { customer_id: 'free', metadata: { someKey: 'Month', customerId: 'x' } }), 201);
    expect(c.metadata).toEqual({ someKey: 'Month', customerId: 'x' });
  });
});

describe('one cancel body on both cancel routes', () => {
  const cancelRaw = (id: string, init: RequestInit) =>
    fetch(`${billing.url}/v1/subscriptions/${id}/cancel`, {
      method: 'POST',
      ...init,
      headers: { 'x-api-key': org.apiKey, ...init.headers },
    });

  it('POST …/cancel with no body, or an empty JSON body, turns off auto-renew (the documented default)', async () => {
    for (const init of [
      {},
      { headers: { 'content-type': 'application/json' }, body: '' },
      { headers: { 'content-type': 'application/json' }, body: '{}' },
    ]) {
      const s = await subscribe();
      const r = await cancelRaw(s.subscription_id, init as RequestInit);
      const body = await r.json();
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({ status: 'active', auto_renew: false, ended_at: null });
    }
  });

  it('Lotus Node: revoke_access / bill_now on POST …/cancel and PATCH', async () => {
    const a = await subscribe();
    const billed = ok(await org.api.post(`/v1/subscriptions/${a.subscription_id}/cancel`, { bill_now: true, revoke_access: true }));
    expect(billed).toMatchObject({ status: 'ended', end_reason: 'canceled_and_billed' });
    const b = await subscribe();
    const notBilled = ok(await org.api.patch(`/v1/subscriptions/${b.subscription_id}`, { revoke_access: true, bill_now: false }));
    expect(notBilled).toMatchObject({ status: 'ended', end_reason: 'canceled_not_billed' });
    const c = await subscribe();
    const runOut = ok(await org.api.patch(`/v1/subscriptions/${c.subscription_id}`, { revoke_access: false }));
    expect(runOut).toMatchObject({ status: 'active', auto_renew: false });
    const d = await subscribe();
    const e = bad(
      await org.api.post(`/v1/subscriptions/${d.subscription_id}/cancel`, { revoke_access: false, bill_now: true }),
      'invalid_request',
    );
    expect(e.message).toContain('bill_now: true needs revoke_access: true');
    expect(e.details[0]).toMatchObject({ field: 'bill_now', reason: 'conflict' });
  });

  it('Lotus Python / type: the same fields on both routes; two that disagree are a 400 naming both', async () => {
    const a = await subscribe();
    const viaPost = ok(
      await org.api.post(`/v1/subscriptions/${a.subscription_id}/cancel`, {
        replace_immediately_type: 'END_CURRENT_SUBSCRIPTION_AND_DONT_BILL',
        prorate: false,
      }),
    );
    expect(viaPost).toMatchObject({ status: 'ended', end_reason: 'canceled_not_billed' });
    const b = await subscribe();
    const viaPatch = ok(await org.api.patch(`/v1/subscriptions/${b.subscription_id}`, { type: 'end_current_subscription_and_bill' }));
    expect(viaPatch).toMatchObject({ status: 'ended', end_reason: 'canceled_and_billed' });
    const c = await subscribe();
    ok(await org.api.post(`/v1/subscriptions/${c.subscription_id}/cancel`, { turn_off_auto_renew: true }));
    const d = await subscribe();
    const e = bad(
      await org.api.post(`/v1/subscriptions/${d.subscription_id}/cancel`, {
        type: 'turn_off_auto_renew',
        replace_immediately_type: 'end_current_subscription_and_bill',
      }),
      'invalid_request',
    );
    expect(e.message).toBe(
      'conflicting cancel options: type "turn_off_auto_renew" and replace_immediately_type "end_current_subscription_and_bill" ask for different things; send one',
    );
    expect(e.details.map((x) => x.field)).toEqual(['type', 'replace_immediately_type']);
    // nothing was changed by the refused request
    expect(ok(await org.api.get(`/v1/subscriptions/${d.subscription_id}`))).toMatchObject({ status: 'active', auto_renew: true });
  });
});

describe('features by id or name; unambiguous check answers', () => {
  it('customer_access?feature_name= takes the name or the id; a shared name is a 400 naming the candidates', async () => {
    const s = await subscribe();
    const byName = ok(
      await org.api.get(`/v1/customer_access?customer_id=${s.customer_id}&feature_name=${encodeURIComponent('API calls')}`),
    );
    expect(byName).toMatchObject({ access: true, feature_name: 'API calls', entitlement: { feature_id: 'api', usage_limit: 5000 } });
    const byId = ok(await org.api.get(`/v1/customer_access?customer_id=${s.customer_id}&feature_name=api`));
    expect(byId).toMatchObject({ access: true, feature_name: 'api', entitlement: { feature_id: 'api' } });
    const e = bad(await org.api.get(`/v1/customer_access?customer_id=${s.customer_id}&feature_name=Seats`), 'ambiguous_feature');
    expect(e.message).toBe('feature_name "Seats" is the name of 2 features ("seats_a", "seats_b"); pass the feature id');
    expect(e.details[0]).toMatchObject({ field: 'feature_name', reason: 'ambiguous', candidates: ['seats_a', 'seats_b'] });
    const missing = await org.api.get(`/v1/customer_access?customer_id=${s.customer_id}&feature_name=nope`);
    expect(missing.status).toBe(404);
  });

  it('/v1/check: usage_limit is the limit, entitlement.included_usage the free units; feature_id takes an unambiguous name', async () => {
    const s = await subscribe();
    const r = ok(await org.api.post('/v1/check', { customer_id: s.customer_id, feature_id: 'api' }));
    expect(r).toMatchObject({
      allowed: true,
      usage: 40,
      usage_limit: 5000,
      balance: 4960,
      entitlement: { included_usage: 1000, usage_limit: 5000 },
    });
    expect(r).not.toHaveProperty('included_usage');
    const named = ok(await org.api.post('/v1/check', { customerId: s.customer_id, featureId: 'Single sign-on' }));
    expect(named).toMatchObject({ allowed: true, feature_id: 'sso', usage_limit: null });
    const e = bad(await org.api.post('/v1/check', { customer_id: s.customer_id, feature_id: 'Seats' }), 'ambiguous_feature');
    expect(e.details[0]).toMatchObject({ field: 'feature_id', candidates: ['seats_a', 'seats_b'] });
  });
});
