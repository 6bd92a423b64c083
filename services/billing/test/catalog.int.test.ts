// Organizations/keys, customers, features, metrics, plans with versions, and tenant isolation,
// through real HTTP against real Postgres.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { testEnv } from '../../../test/support/env.ts';
import { ADMIN_SECRET, client, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let url: string;

beforeAll(async () => {
  ({ billing } = await startTestBilling());
  url = billing.url;
});
afterAll(async () => {
  await billing?.stop();
});

describe('organizations and API keys', () => {
  it('admin endpoint needs the admin secret', async () => {
    expect((await client(url).post('/admin/organizations', { name: 'x' })).status).toBe(401);
    const wrong = await client(url, undefined, { 'x-admin-secret': 'nope' }).post('/admin/organizations', { name: 'x' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe('forbidden');
    const bad = await client(url, undefined, { 'x-admin-secret': ADMIN_SECRET }).post('/admin/organizations', {});
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_error');
  });

  it('creates an org with a working key; keys are listed by prefix only and can be revoked', async () => {
    const { api, apiKey, orgId } = await createOrg(url);
    expect(apiKey).toMatch(/^ml_/);
    expect((await api.get('/v1/organization')).body.organization_id).toBe(orgId);
    const second = await api.post('/v1/api_keys', { name: 'ci' });
    expect(second.status).toBe(201);
    const list = await api.get('/v1/api_keys');
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(2);
    expect(JSON.stringify(list.body)).not.toContain(apiKey);
    expect(JSON.stringify(list.body)).not.toContain(second.body.api_key);
    expect(list.body.data.map((k: { prefix: string }) => k.prefix)).toContain(apiKey.slice(0, 10));
    const k2 = client(url, second.body.api_key);
    expect((await k2.get('/v1/customers')).status).toBe(200);
    expect((await api.del(`/v1/api_keys/${second.body.key_id}`)).status).toBe(204);
    const after = await k2.get('/v1/customers');
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe('unauthorized');
    expect((await client(url).get('/v1/customers')).status).toBe(401);
    // stored hashed: the plaintext never reaches Postgres
    const { rows } = await billing.deps.pool.query('SELECT key_hash FROM api_keys WHERE organization_id = $1', [orgId]);
    expect(rows.map((r) => r.key_hash)).not.toContain(apiKey);
  });

  it('the org:create command prints a working key', async () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const out = execFileSync('npm', ['run', '--silent', 'org:create', '--', '--name', uniqueId('cli'), '--json'], {
      cwd: root,
      env: testEnv() as NodeJS.ProcessEnv,
      encoding: 'utf8',
    });
    const org = JSON.parse(out.trim().split('\n').pop()!);
    expect(org.api_key).toMatch(/^ml_/);
    const r = await client(url, org.api_key).get('/v1/organization');
    expect(r.body.organization_id).toBe(org.organization_id);
  });
});

describe('customers', () => {
  it('create is idempotent on identical data, 409 on conflicting data; get, list, update, archive', async () => {
    const { api } = await createOrg(url);
    const body = { customer_id: 'cus_1', name: 'Ada', email: 'ada@example.com', balance: '12.50', metadata: { tier: 'gold' } };
    const c1 = await api.post('/v1/customers', body);
    expect(c1.status).toBe(201);
    expect(c1.body).toMatchObject({ customer_id: 'cus_1', currency: 'USD', balance: '12.50', metadata: { tier: 'gold' } });
    const again = await api.post('/v1/customers', body);
    expect(again.status).toBe(200);
    const clash = await api.post('/v1/customers', { ...body, email: 'other@example.com' });
    expect(clash.status).toBe(409);
    expect(clash.body.error.details.fields).toEqual(['email']);
    expect((await api.post('/v1/customers', { customer_id: 'cus_x', balance: '1.234' })).status).toBe(400);
    expect((await api.post('/v1/customers', { customer_id: 'cus_x', currency: 'US' })).status).toBe(400);
    expect((await api.post('/v1/customers', { customer_id: 'cus_x', unknown: 1 })).status).toBe(400);
    await api.post('/v1/customers', { customer_id: 'cus_2', currency: 'eur' });
    const list = await api.get('/v1/customers?limit=1');
    expect(list.body).toMatchObject({ limit: 1, offset: 0, has_more: true, next_offset: 1 });
    expect(list.body.data[0].customer_id).toBe('cus_1');
    expect((await api.get('/v1/customers?limit=1&offset=1')).body.data[0]).toMatchObject({ customer_id: 'cus_2', currency: 'EUR' });
    expect((await api.get('/v1/customers?limit=500')).status).toBe(400);
    const upd = await api.patch('/v1/customers/cus_1', { name: 'Ada L.', balance: '20' });
    expect(upd.body).toMatchObject({ name: 'Ada L.', balance: '20.00', email: 'ada@example.com' });
    const detail = await api.get('/v1/customers/cus_1');
    expect(detail.body).toMatchObject({
      customer_id: 'cus_1',
      balance: '20.00',
      subscriptions: [],
      invoices: [],
      total_amount_due: '0.00',
    });
    expect((await api.get('/v1/customers/nope')).status).toBe(404);
    const arch = await api.del('/v1/customers/cus_2');
    expect(arch.body.archived_at).not.toBeNull();
    expect((await api.get('/v1/customers')).body.data.map((c: { customer_id: string }) => c.customer_id)).toEqual(['cus_1']);
    expect((await api.get('/v1/customers?include_archived=true')).body.data).toHaveLength(2);
  });
});

async function catalog(api: ReturnType<typeof client>) {
  expect((await api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' })).status).toBe(201);
  expect(
    (await api.post('/v1/metrics', { metric_id: 'seats', event_name: 'seats', aggregation: 'latest', property: 'count' })).status,
  ).toBe(201);
  expect((await api.post('/v1/features', { feature_id: 'slack_integration', type: 'boolean', name: 'Slack' })).status).toBe(201);
  expect((await api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' })).status).toBe(201);
}

describe('metrics and features', () => {
  it('metrics: validation, create, list, update bumps version and updated_at, archive', async () => {
    const { api, orgId } = await createOrg(url);
    const bad = await api.post('/v1/metrics', { metric_id: 'm', event_name: 'e', aggregation: 'sum' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/property/);
    expect((await api.post('/v1/metrics', { metric_id: 'm', event_name: 'e', aggregation: 'median' })).status).toBe(400);
    expect(
      (await api.post('/v1/metrics', { metric_id: 'm', event_name: 'e', aggregation: 'count', group_by: ['a', 'b', 'c'] })).status,
    ).toBe(400);
    expect(
      (
        await api.post('/v1/metrics', {
          metric_id: 'm',
          event_name: 'e',
          aggregation: 'count',
          filters: [{ property: 'x', operator: 'gt', value: 'str' }],
        })
      ).status,
    ).toBe(400);
    const def = {
      metric_id: 'gpu_seconds',
      name: 'GPU seconds',
      event_name: 'gpu',
      aggregation: 'sum',
      property: 'seconds',
      filters: [
        { property: 'region', operator: 'in', values: ['eu', 'us'] },
        { property: 'seconds', operator: 'gt', value: 0 },
      ],
      group_by: ['region'],
    };
    const c = await api.post('/v1/metrics', def);
    expect(c.status).toBe(201);
    expect(c.body.version).toBe(1);
    expect((await api.post('/v1/metrics', def)).status).toBe(200);
    expect((await api.post('/v1/metrics', { ...def, aggregation: 'max' })).status).toBe(409);
    const u = await api.patch('/v1/metrics/gpu_seconds', { filters: [{ property: 'region', operator: 'equals', value: 'eu' }] });
    expect(u.body.version).toBe(2);
    expect(Date.parse(u.body.updated_at)).toBeGreaterThan(Date.parse(c.body.updated_at));
    expect((await api.patch('/v1/metrics/gpu_seconds', { name: 'renamed' })).body.version).toBe(2);
    // the row the aggregator reads (loadMetricDefinitions) carries the new version
    const { rows } = await billing.deps.pool.query(
      'SELECT version, filters FROM billable_metrics WHERE organization_id = $1 AND metric_id = $2',
      [orgId, 'gpu_seconds'],
    );
    expect(rows[0]).toMatchObject({ version: 2, filters: [{ property: 'region', operator: 'equals', value: 'eu' }] });
    expect((await api.get('/v1/metrics')).body.data).toHaveLength(1);
    expect((await api.del('/v1/metrics/gpu_seconds')).body.archived_at).not.toBeNull();
    expect((await api.get('/v1/metrics')).body.data).toHaveLength(0);
    expect((await api.patch('/v1/metrics/gpu_seconds', { name: 'x' })).status).toBe(404);
  });

  it('features: boolean and metered bound to a metric', async () => {
    const { api } = await createOrg(url);
    await catalog(api);
    expect((await api.post('/v1/features', { feature_id: 'x', type: 'metered' })).status).toBe(400);
    expect((await api.post('/v1/features', { feature_id: 'x', type: 'metered', metric_id: 'nope' })).status).toBe(400);
    expect((await api.post('/v1/features', { feature_id: 'slack_integration', type: 'boolean', name: 'Slack' })).status).toBe(200);
    expect((await api.post('/v1/features', { feature_id: 'slack_integration', type: 'boolean', name: 'Other' })).status).toBe(409);
    expect((await api.get('/v1/features/api')).body).toMatchObject({ type: 'metered', metric_id: 'api_calls' });
    expect((await api.get('/v1/features')).body.data).toHaveLength(2);
    expect((await api.patch('/v1/features/api', { name: 'API' })).body.name).toBe('API');
    expect((await api.del('/v1/features/slack_integration')).status).toBe(200);
    expect((await api.get('/v1/features')).body.data).toHaveLength(1);
  });
});

export const PRO_PLAN = {
  plan_id: 'pro',
  name: 'Pro',
  interval: 'month',
  currency: 'USD',
  flat_fee: '49.00',
  flat_fee_timing: 'in_advance',
  trial_days: 0,
  components: [
    {
      metric_id: 'api_calls',
      free_units: 1000,
      pricing: {
        model: 'graduated',
        tiers: [
          { up_to: 10000, unit_price: '0.0004' },
          { up_to: null, unit_price: '0.0002' },
        ],
      },
    },
  ],
  entitlements: [
    { feature_id: 'slack_integration' },
    { feature_id: 'api', limit: 5000, limit_type: 'hard', reset_period: 'billing_period' },
  ],
};

describe('plans', () => {
  it('create, validate, version on edit, list, get versions, archive', async () => {
    const { api } = await createOrg(url);
    await catalog(api);
    expect((await api.post('/v1/plans', { ...PRO_PLAN, interval: 'fortnight' })).status).toBe(400);
    expect((await api.post('/v1/plans', { ...PRO_PLAN, flat_fee: '-1' })).status).toBe(400);
    const badTiers = await api.post('/v1/plans', {
      ...PRO_PLAN,
      components: [{ metric_id: 'api_calls', pricing: { model: 'graduated', tiers: [{ up_to: 10, unit_price: '1' }] } }],
    });
    expect(badTiers.status).toBe(400);
    expect(badTiers.body.error.message).toMatch(/last tier/);
    expect(
      (await api.post('/v1/plans', { ...PRO_PLAN, components: [{ metric_id: 'ghost', pricing: { model: 'per_unit', unit_price: '1' } }] }))
        .status,
    ).toBe(400);
    expect((await api.post('/v1/plans', { ...PRO_PLAN, entitlements: [{ feature_id: 'slack_integration', limit: 3 }] })).status).toBe(400);
    const c = await api.post('/v1/plans', PRO_PLAN);
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({
      plan_id: 'pro',
      version: 1,
      flat_fee: '49.00',
      entitlements: [{ feature_id: 'slack_integration' }, { feature_id: 'api', limit: 5000 }],
    });
    expect((await api.post('/v1/plans', PRO_PLAN)).status).toBe(200);
    expect((await api.post('/v1/plans', { ...PRO_PLAN, flat_fee: '59.00' })).status).toBe(409);
    const e = await api.patch('/v1/plans/pro', { flat_fee: '59.00', entitlements: [{ feature_id: 'api', limit: 10000 }] });
    expect(e.status).toBe(200);
    expect(e.body).toMatchObject({
      version: 2,
      flat_fee: '59.00',
      name: 'Pro',
      entitlements: [{ feature_id: 'api', limit: 10000, limit_type: 'hard', reset_period: 'billing_period' }],
    });
    expect((await api.patch('/v1/plans/pro', { flat_fee: '59' })).body.version).toBe(2); // no change, no new version
    const g = await api.get('/v1/plans/pro');
    expect(g.body.version).toBe(2);
    expect(g.body.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect((await api.get('/v1/plans/pro/versions/1')).body.flat_fee).toBe('49.00');
    expect((await api.get('/v1/plans/pro/versions/9')).status).toBe(404);
    expect((await api.get('/v1/plans')).body.data).toHaveLength(1);
    expect((await api.del('/v1/plans/pro')).status).toBe(204);
    expect((await api.get('/v1/plans')).body.data).toHaveLength(0);
    expect((await api.patch('/v1/plans/pro', { name: 'x' })).status).toBe(404);
  });
});

describe('tenant isolation', () => {
  it("one organization cannot read or change another organization's anything", async () => {
    const a = await createOrg(url);
    const b = await createOrg(url);
    await catalog(a.api);
    await a.api.post('/v1/customers', { customer_id: 'shared_id', name: 'A' });
    await a.api.post('/v1/plans', PRO_PLAN);
    const sub = await a.api.post('/v1/subscriptions', { customer_id: 'shared_id', plan_id: 'pro' });
    expect(sub.status).toBe(201);
    const keys = await a.api.get('/v1/api_keys');

    // reads
    for (const p of [
      '/v1/customers/shared_id',
      '/v1/metrics/api_calls',
      '/v1/features/api',
      '/v1/plans/pro',
      `/v1/subscriptions/${sub.body.subscription_id}`,
      '/v1/customers/shared_id/entitlements',
      '/v1/customers/shared_id/entitlements/api',
    ]) {
      const r = await b.api.get(p);
      expect(r.status, p).toBe(404);
    }
    for (const p of ['/v1/customers', '/v1/metrics', '/v1/features', '/v1/plans', '/v1/subscriptions', '/v1/invoices']) {
      expect((await b.api.get(p)).body.data, p).toEqual([]);
    }
    expect((await b.api.get('/v1/api_keys')).body.data).toHaveLength(1);
    expect((await b.api.get('/v1/invoices?customer_id=shared_id')).body.data).toEqual([]);
    // writes
    expect((await b.api.patch('/v1/customers/shared_id', { name: 'B' })).status).toBe(404);
    expect((await b.api.del('/v1/customers/shared_id')).status).toBe(404);
    expect((await b.api.patch('/v1/metrics/api_calls', { name: 'B' })).status).toBe(404);
    expect((await b.api.del('/v1/features/api')).status).toBe(404);
    expect((await b.api.patch('/v1/plans/pro', { name: 'B' })).status).toBe(404);
    expect((await b.api.patch(`/v1/subscriptions/${sub.body.subscription_id}`, { turn_off_auto_renew: true })).status).toBe(404);
    expect((await b.api.del(`/v1/api_keys/${keys.body.data[0].key_id}`)).status).toBe(404);
    expect((await b.api.post('/v1/check', { customer_id: 'shared_id', feature_id: 'api' })).status).toBe(404);
    // b cannot subscribe its customer to a's plan, nor use a's metric in its plans
    await b.api.post('/v1/customers', { customer_id: 'shared_id', name: 'B' });
    expect((await b.api.post('/v1/subscriptions', { customer_id: 'shared_id', plan_id: 'pro' })).status).toBe(404);
    expect((await b.api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' })).status).toBe(400);
    // same ids in both orgs stay separate
    expect((await a.api.get('/v1/customers/shared_id')).body.name).toBe('A');
    expect((await b.api.get('/v1/customers/shared_id')).body.name).toBe('B');
    // a's key still works (b did not revoke it)
    expect((await a.api.get('/v1/plans/pro')).status).toBe(200);
  });
});

describe('API conventions', () => {
  it('serves OpenAPI at /docs and answers unknown routes with the error shape', async () => {
    const doc = await client(url).get('/docs/json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    for (const p of [
      '/v1/customers',
      '/v1/plans/{plan_id}',
      '/v1/check',
      '/v1/customer_access',
      '/v1/subscriptions/{subscription_id}',
      '/admin/organizations',
    ])
      expect(doc.body.paths[p], p).toBeDefined();
    const page = await fetch(`${url}/docs`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('swagger-ui');
    const nf = await client(url).get('/nope');
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe('route_not_found');
    expect((await client(url).get('/readyz')).status).toBe(200);
  });
});
