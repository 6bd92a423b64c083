// Schemas as the single source (@meterline/contracts): the generated OpenAPI 3.1 document is valid
// against the official OpenAPI 3.1 schema (validated locally, no network), Swagger UI is served from
// the npm package (no CDN), bodies are not type-coerced (`"limit": null` stays null = unlimited; a
// number is not a string) while query strings/params are, and the Segment shared secret endpoint
// changes what the gateway verifies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startGateway, signSegmentBody, type Gateway } from '@meterline/gateway';
import { createPostgres, type Config, type PgPool } from '@meterline/core';
import type { Entitlement, Plan } from '@meterline/contracts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { ADMIN_SECRET, client, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let config: Config;
let pg: PgPool;
let gateway: Gateway | undefined;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  ({ billing, config } = await startTestBilling({ env: { GATEWAY_PORT: '0' } }));
  pg = createPostgres(config.postgresUrl, { max: 2 });
  org = await createOrg(billing.url);
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await billing?.stop();
  await pg?.end();
});

describe('OpenAPI document', () => {
  it('/docs/json is a valid OpenAPI 3.1 document (official schema) with every route', async () => {
    const doc = await client(billing.url).get('/docs/json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    const validator = new Validator();
    const res = await validator.validate(doc.body);
    expect(res.errors ?? [], JSON.stringify(res.errors ?? [], null, 2).slice(0, 2000)).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    const ops = Object.values(doc.body.paths as Record<string, object>).flatMap((m) => Object.keys(m));
    expect(ops.length).toBeGreaterThan(35);
    // shapes come from the contracts: the pricing branches (if/then), nullable limits, the Segment endpoint
    const plan = doc.body.paths['/v1/plans'].post.requestBody.content['application/json'].schema;
    expect(JSON.stringify(plan)).toContain('"if"');
    expect(plan.properties.entitlements.items.properties.limit.anyOf).toContainEqual({ type: 'null' });
    expect(doc.body.paths['/v1/settings/segment'].put).toBeDefined();
    expect(doc.body.paths['/healthz']).toBeUndefined();
  });

  it('Swagger UI at /docs is served from the package itself (no external assets)', async () => {
    const page = await fetch(`${billing.url}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    expect(html).not.toMatch(/(src|href)="https?:\/\//);
    const scripts = [...html.matchAll(/src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    for (const s of scripts) {
      const asset = await fetch(new URL(s, `${billing.url}/docs/`));
      expect(asset.status, s).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, s).toBeGreaterThan(100);
    }
  });
});

describe('null means null', () => {
  it('"limit": null creates an unlimited entitlement (not a limit of 0)', async () => {
    const api = org.api;
    expect((await api.post('/v1/metrics', { metric_id: 'calls', event_name: 'call', aggregation: 'count' })).status).toBe(201);
    expect((await api.post('/v1/features', { feature_id: 'calls', type: 'metered', metric_id: 'calls' })).status).toBe(201);
    const created = await api.post<Plan>('/v1/plans', {
      plan_id: 'unl',
      name: 'Unlimited',
      interval: 'month',
      entitlements: [{ feature_id: 'calls', limit: null }],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.entitlements[0]).toMatchObject({ feature_id: 'calls', limit: null });
    expect((await api.post('/v1/customers', { customer_id: 'c_unl' })).status).toBe(201);
    expect((await api.post('/v1/subscriptions', { customer_id: 'c_unl', plan_id: 'unl' })).status).toBe(201);
    const ent = await api.get<Entitlement>('/v1/customers/c_unl/entitlements/calls?requested_usage=1000000');
    expect(ent.status).toBe(200);
    expect(ent.body).toMatchObject({
      is_granted: true,
      usage_limit: null,
      has_unlimited_usage: true,
      remaining: null,
      access_denied_reason: null,
    });
    const check = await api.post('/v1/check', { customer_id: 'c_unl', feature_id: 'calls', required_balance: 5000 });
    expect(check.body).toMatchObject({ allowed: true, unlimited: true });
    // a limit of 0 is still 0 (the two are not confused the other way round either)
    expect((await api.patch('/v1/plans/unl', { entitlements: [{ feature_id: 'calls', limit: 0 }] })).body.entitlements[0].limit).toBe(0);
  });

  it('bodies are not type-coerced; query strings and path params are', async () => {
    const api = org.api;
    const num = await api.post('/v1/customers', { customer_id: uniqueId('c'), name: 5 });
    expect(num.status).toBe(400);
    expect(num.body.error.code).toBe('validation_error');
    expect(num.body.error.message).toContain('body/name');
    expect((await api.post('/v1/customers', { customer_id: 123 })).status).toBe(400);
    expect((await api.post('/v1/check', { customer_id: 'c_unl', feature_id: 'calls', required_balance: '5' })).status).toBe(400);
    expect((await api.post('/v1/subscriptions', { customer_id: 'c_unl', plan_id: 'unl', auto_renew: 'false' })).status).toBe(400);
    // defaults still apply to bodies
    expect((await api.post('/v1/check', { customer_id: 'c_unl', feature_id: 'calls' })).body.required_balance).toBe(1);
    // query strings are text: coerced to the schema's types
    const list = await api.get('/v1/customers?limit=1&include_archived=true');
    expect(list.status).toBe(200);
    expect(list.body.limit).toBe(1);
    expect((await api.get('/v1/customers?limit=abc')).status).toBe(400);
    expect((await api.get('/v1/plans/unl/versions/1')).body.version).toBe(1);
  });
});

describe('Segment shared secret', () => {
  it('PUT /v1/settings/segment sets and clears it; the gateway verifies X-Signature with it', async () => {
    const api = org.api;
    expect((await api.get('/v1/settings/segment')).body).toEqual({ organization_id: org.orgId, shared_secret_set: false });
    const put = (b: unknown) =>
      fetch(`${billing.url}/v1/settings/segment`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
        body: JSON.stringify(b),
      });
    expect((await put({ shared_secret: 123 })).status).toBe(400);
    expect((await put({ shared_secret: '' })).status).toBe(400);
    expect((await put({})).status).toBe(400);
    const secret = `s3cret-${uniqueId('x')}`;
    const set = await put({ shared_secret: secret });
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ organization_id: org.orgId, shared_secret_set: true });
    const { rows } = await pg.query('SELECT segment_shared_secret FROM organizations WHERE id = $1', [org.orgId]);
    expect(rows[0].segment_shared_secret).toBe(secret);

    gateway = await startGateway(config, { pg });
    const body = JSON.stringify({
      type: 'track',
      event: 'call',
      userId: 'c_unl',
      messageId: uniqueId('m'),
      timestamp: new Date().toISOString(),
    });
    const send = (sig?: string) =>
      fetch(`${gateway!.url}/v1/segment`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey, ...(sig ? { 'x-signature': sig } : {}) },
        body,
      });
    expect((await send()).status).toBe(401);
    expect((await send(signSegmentBody(body, 'wrong'))).status).toBe(401);
    const ok = await send(signSegmentBody(body, secret));
    expect(ok.status, await ok.clone().text()).toBeLessThan(300);

    expect((await put({ shared_secret: null })).status).toBe(200);
    expect((await api.get('/v1/settings/segment')).body.shared_secret_set).toBe(false);
    // the admin API can set it too; another organization's key cannot touch this one's
    const r = await fetch(`${billing.url}/admin/organizations/${org.orgId}/segment`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-admin-secret': ADMIN_SECRET },
      body: JSON.stringify({ shared_secret: secret }),
    });
    expect(r.status).toBe(200);
    expect(
      (
        await fetch(`${billing.url}/admin/organizations/org_nope/segment`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', 'x-admin-secret': ADMIN_SECRET },
          body: JSON.stringify({ shared_secret: null }),
        })
      ).status,
    ).toBe(404);
    const other = await createOrg(billing.url);
    expect((await other.api.get('/v1/settings/segment')).body).toEqual({ organization_id: other.orgId, shared_secret_set: false });
    expect((await api.get('/v1/settings/segment')).body.shared_secret_set).toBe(true);
  });
});
