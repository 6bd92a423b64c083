// Entities (seats, workspaces) through the real pipeline: gateway (HTTP) and billing's own producer ->
// Kafka -> aggregator -> ClickHouse -> billing. Per-entity usage and the customer's total (the sum),
// per_entity limits (each entity its own balance, the hard-limit guarantee under concurrency), the
// entities API (create / restore / list / get / soft delete), and an old V1 Avro record on the topic.
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import {
  canonicalForm,
  createKafka,
  createPostgres,
  fingerprintBytesLE,
  rabinFingerprint64,
  USAGE_EVENT_SCHEMA_V1,
  type Config,
  type PgPool,
} from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let config: Config;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;
const FROM = encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString());
const TO = encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString());

async function sendViaGateway(events: object[]) {
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
    body: JSON.stringify(events),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const usage = async (customer: string, metric: string, entity?: string) => {
  const r = await org.api.get(
    `/v1/usage?customer_id=${customer}&metric_id=${metric}&from=${FROM}&to=${TO}${entity !== undefined ? `&entity_id=${encodeURIComponent(entity)}` : ''}`,
  );
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.total as number;
};

async function customerWithPlan(plan: string, entities: string[]) {
  const c = uniqueId('ent_c');
  expect((await org.api.post('/v1/customers', { customer_id: c })).status).toBe(201);
  expect((await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: plan })).status).toBe(201);
  for (const e of entities)
    expect((await org.api.post(`/v1/customers/${c}/entities`, { entity_id: e, name: `Seat ${e}` })).status).toBe(201);
  return c;
}

beforeAll(async () => {
  ({ billing, config } = await startTestBilling({ env: { GATEWAY_PORT: '0', AGGREGATOR_METRIC_POLL_MS: '200' } }));
  pg = createPostgres(config.postgresUrl, { max: 4 });
  gateway = await startGateway(config, { pg });
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_ent_agg') } });
  org = await createOrg(billing.url);
  const api = org.api;
  for (const m of [
    { metric_id: 'calls', event_name: 'call', aggregation: 'count' },
    { metric_id: 'tokens', event_name: 'llm', aggregation: 'sum', property: 'tokens' },
    { metric_id: 'msgs', event_name: 'msg', aggregation: 'count' },
  ])
    expect((await api.post('/v1/metrics', m)).status).toBe(201);
  for (const f of [
    { feature_id: 'messages', type: 'metered', metric_id: 'msgs' },
    { feature_id: 'api', type: 'metered', metric_id: 'calls' },
    { feature_id: 'llm_tokens', type: 'metered', metric_id: 'tokens' },
  ])
    expect((await api.post('/v1/features', f)).status).toBe(201);
  const plan = await api.post('/v1/plans', {
    plan_id: 'seats',
    name: 'Per seat',
    interval: 'month',
    entitlements: [
      { feature_id: 'messages', limit: 5, per_entity: true },
      { feature_id: 'api', limit: 100 },
      { feature_id: 'llm_tokens', limit: 1000, per_entity: true },
    ],
  });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
});

describe('entities API', () => {
  it('creates, restores, lists, gets and soft-deletes entities', async () => {
    const c = await customerWithPlan('seats', ['a']);
    const base = `/v1/customers/${c}/entities`;
    expect((await org.api.post(base, { entity_id: 'a', name: 'Seat a' })).status).toBe(200); // same data: idempotent
    const clash = await org.api.post(base, { entity_id: 'a', name: 'other' });
    expect(clash.status).toBe(409);
    expect((await org.api.post(base, { entity_id: 'bad id!' })).status).toBe(400);
    expect((await org.api.post('/v1/customers/nobody/entities', { entity_id: 'a' })).status).toBe(404);
    const b = await org.api.post(base, { entity_id: 'b', feature_id: 'messages' });
    expect(b.status).toBe(201);
    expect(b.body).toMatchObject({ customer_id: c, entity_id: 'b', name: null, feature_id: 'messages', deleted_at: null });
    expect((await org.api.get(base)).body.data.map((e: any) => e.entity_id)).toEqual(['a', 'b']);
    expect((await org.api.get(`${base}/b`)).body).toMatchObject({ entity_id: 'b' });
    const del = await org.api.del(`${base}/b`);
    expect(del.status).toBe(200);
    expect(del.body.deleted_at).toBeTruthy();
    expect((await org.api.get(`${base}/b`)).body.error.code).toBe('entity_not_found');
    expect((await org.api.del(`${base}/b`)).status).toBe(404);
    expect((await org.api.get(base)).body.data.map((e: any) => e.entity_id)).toEqual(['a']);
    expect((await org.api.get(`${base}?include_deleted=true`)).body.data.map((e: any) => e.entity_id)).toEqual(['a', 'b']);
    const restored = await org.api.post(base, { entity_id: 'b' });
    expect(restored.status).toBe(201);
    expect(restored.body.deleted_at).toBeNull();
    // another organization sees none of it
    const other = await createOrg(billing.url);
    expect((await other.api.get(base)).status).toBe(404);
    expect((await other.api.get(`${base}/a`)).status).toBe(404);
  });
});

describe('usage per entity', () => {
  it('gateway events with entity_id: usage per entity, and the customer total is the sum (with customer-level events)', async () => {
    const c = uniqueId('ent_u');
    const ev = (entity?: string, props: object = {}) => ({
      customer_id: c,
      event_name: 'call',
      idempotency_id: uniqueId('e'),
      properties: props,
      ...(entity ? { entity_id: entity } : {}),
    });
    const sent = await sendViaGateway([ev('seat_a'), ev('seat_a'), ev('seat_a'), ev('seat_b'), ev('seat_b'), ev()]);
    expect(sent.status).toBe(200);
    expect(sent.body.accepted).toBe(6);
    const bad = await sendViaGateway([
      { ...ev(), entity_id: '' },
      { ...ev(), entity_id: 'x'.repeat(256) },
    ]);
    expect(bad.body.results.map((r: any) => r.errors?.[0]?.field)).toEqual(['entity_id', 'entity_id']);
    await waitFor(
      () => usage(c, 'calls'),
      (t) => t === 6,
      { timeoutMs: 30_000, intervalMs: 50, what: 'six calls' },
    );
    expect(await usage(c, 'calls', 'seat_a')).toBe(3);
    expect(await usage(c, 'calls', 'seat_b')).toBe(2);
    expect(await usage(c, 'calls', 'seat_z')).toBe(0);
    // the aggregator's events debugger shows and filters by the entity
    const dbg = await aggregator.app.inject({
      method: 'GET',
      url: `/v1/debug/events?customer_id=${c}`,
      headers: { 'x-api-key': org.apiKey },
    });
    const seen = (dbg.json().events as any[]).map((e) => e.entity_id).sort();
    expect(seen).toEqual([null, 'seat_a', 'seat_a', 'seat_a', 'seat_b', 'seat_b']);
    const onlyB = await aggregator.app.inject({
      method: 'GET',
      url: `/v1/debug/events?customer_id=${c}&entity_id=seat_b`,
      headers: { 'x-api-key': org.apiKey },
    });
    expect((onlyB.json().events as any[]).map((e) => e.entity_id)).toEqual(['seat_b', 'seat_b']);
    // sums per entity and per hour window
    await sendViaGateway(
      [ev('seat_a', { tokens: 1.5 }), ev('seat_b', { tokens: 2.25 }), ev(undefined, { tokens: 10 })].map((e) => ({
        ...e,
        event_name: 'llm',
      })),
    );
    await waitFor(
      () => usage(c, 'tokens'),
      (t) => t === 13.75,
      { timeoutMs: 30_000, intervalMs: 50, what: 'tokens' },
    );
    expect(await usage(c, 'tokens', 'seat_a')).toBe(1.5);
    expect(await usage(c, 'tokens', 'seat_b')).toBe(2.25);
    const hourly = await org.api.get(`/v1/usage?customer_id=${c}&metric_id=tokens&from=${FROM}&to=${TO}&window=hour&entity_id=seat_b`);
    expect(hourly.body.entity_id).toBe('seat_b');
    expect(hourly.body.data.reduce((s: number, p: any) => s + p.value, 0)).toBe(2.25);
    // a metric defined afterwards: the aggregator's backfill from the raw events keys by entity the same way
    const late = uniqueId('late');
    expect((await org.api.post('/v1/metrics', { metric_id: late, event_name: 'call', aggregation: 'count' })).status).toBe(201);
    await waitFor(
      async () => [await usage(c, late), await usage(c, late, 'seat_a'), await usage(c, late, 'seat_b')],
      (v) => v.join() === '6,3,2',
      { timeoutMs: 60_000, intervalMs: 200, what: 'the backfilled metric per entity' },
    );
  });

  it('an old V1 Avro record (no entity_id) on the topic decodes and counts at customer level', async () => {
    const c = uniqueId('ent_v1');
    const v1 = avro.Type.forSchema(USAGE_EVENT_SCHEMA_V1 as unknown as avro.Schema);
    const header = Buffer.concat([
      Buffer.from([0xc3, 0x01]),
      fingerprintBytesLE(rabinFingerprint64(Buffer.from(canonicalForm(v1), 'utf8'))),
    ]);
    const now = Date.now();
    const value = Buffer.concat([
      header,
      v1.toBuffer({
        organization_id: org.orgId,
        customer_id: c,
        event_name: 'call',
        idempotency_id: uniqueId('old'),
        time_created: now,
        received_at: now,
        properties: '{}',
        source: 'api',
      }),
    ]);
    const producer = createKafka(config.kafka).producer();
    await producer.connect();
    try {
      await producer.send({ topic: config.kafka.eventsTopic, messages: [{ key: `${org.orgId}/${c}`, value }] });
    } finally {
      await producer.disconnect();
    }
    await waitFor(
      () => usage(c, 'calls'),
      (t) => t === 1,
      { timeoutMs: 30_000, intervalMs: 50, what: 'the V1 record' },
    );
    expect(await usage(c, 'calls', 'seat_a')).toBe(0);
  });
});

describe('per_entity limits', () => {
  it('each entity has its own balance: A uses 5 and is denied, B is still allowed; the customer sees limit x entities', async () => {
    const c = await customerWithPlan('seats', ['A', 'B']);
    for (let i = 0; i < 5; i++) {
      const r = await org.api.post('/v1/check', { customer_id: c, entity_id: 'A', feature_id: 'messages', send_event: true });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ allowed: true, entity_id: 'A', usage: i + 1, balance: 5 - i - 1 });
    }
    const denied = await org.api.post('/v1/check', { customer_id: c, entity_id: 'A', feature_id: 'messages', send_event: true });
    expect(denied.body).toMatchObject({ allowed: false, usage: 5, events_recorded: 0 });
    expect(denied.body.entitlement.access_denied_reason).toBe('usage_limit_exceeded');
    const b = await org.api.post('/v1/check', { customer_id: c, entity_id: 'B', feature_id: 'messages', send_event: true });
    expect(b.body).toMatchObject({ allowed: true, usage: 1, balance: 4 });
    // a non-per_entity feature checked with an entity: the customer's limit, the event tagged with the entity
    const api = await org.api.post('/v1/check', { customer_id: c, entity_id: 'B', feature_id: 'api', send_event: true });
    expect(api.body).toMatchObject({ allowed: true, usage: 1, balance: 99 });
    // without an entity: a consuming check is refused; a read compares the total with 5 x 2 entities
    const noEntity = await org.api.post('/v1/check', { customer_id: c, feature_id: 'messages', send_event: true });
    expect(noEntity.status).toBe(400);
    expect(noEntity.body.error.code).toBe('entity_required');
    await waitFor(
      () => usage(c, 'msgs'),
      (t) => t === 6,
      { timeoutMs: 30_000, intervalMs: 50, what: 'the six consumed messages' },
    );
    expect(await usage(c, 'msgs', 'A')).toBe(5);
    expect(await usage(c, 'msgs', 'B')).toBe(1);
    expect(await usage(c, 'calls', 'B')).toBe(1);
    // reads may serve a reading up to BILLING_USAGE_READ_STALE_MS old while refreshing: wait for the total
    const total = await waitFor(
      async () => (await org.api.get(`/v1/customers/${c}/entitlements/messages`)).body,
      (b) => b.current_usage === 6,
      { timeoutMs: 30_000, intervalMs: 200, what: "the customer's total in entitlements" },
    );
    expect(total).toMatchObject({ usage_limit: 10, current_usage: 6, is_granted: true });
    const a = await org.api.post('/v1/check', { customer_id: c, entity_id: 'A', feature_id: 'messages' });
    expect(a.body).toMatchObject({ allowed: false, usage: 5, balance: 0 });
    // unknown and deleted entities: 404 entity_not_found; a deleted entity's usage is kept
    const unknown = await org.api.post('/v1/check', { customer_id: c, entity_id: 'nobody', feature_id: 'messages', send_event: true });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('entity_not_found');
    expect((await org.api.del(`/v1/customers/${c}/entities/A`)).status).toBe(200);
    const gone = await org.api.post('/v1/check', { customer_id: c, entity_id: 'A', feature_id: 'messages' });
    expect(gone.body.error.code).toBe('entity_not_found');
    expect(await usage(c, 'msgs', 'A')).toBe(5);
    expect(await usage(c, 'msgs')).toBe(6);
    // one active entity left: the customer-level read compares with 5 x 1
    expect((await org.api.get(`/v1/customers/${c}/entitlements/messages`)).body).toMatchObject({
      usage_limit: 5,
      current_usage: 6,
      is_granted: false,
    });
  });

  it('usage reports with entity_id: per-entity SET and DELTA, 400 without an entity on a per_entity feature', async () => {
    const c = await customerWithPlan('seats', ['w1', 'w2']);
    const r1 = await org.api.post('/v1/usage', { customer_id: c, entity_id: 'w1', feature_id: 'llm_tokens', value: 300 });
    expect(r1.status, JSON.stringify(r1.body)).toBe(200);
    expect(r1.body).toMatchObject({ entity_id: 'w1', previous_usage: 0, current_usage: 300, usage_limit: 1000 });
    const r2 = await org.api.post('/v1/usage', {
      customer_id: c,
      entity_id: 'w1',
      feature_id: 'llm_tokens',
      value: 1200,
      update_behavior: 'set',
    });
    expect(r2.body).toMatchObject({ previous_usage: 300, current_usage: 1200, over_limit: true });
    const w2 = await org.api.post('/v1/usage', { customer_id: c, entity_id: 'w2', feature_id: 'llm_tokens', value: 50 });
    expect(w2.body).toMatchObject({ previous_usage: 0, current_usage: 50, over_limit: false });
    const none = await org.api.post('/v1/usage', { customer_id: c, feature_id: 'llm_tokens', value: 1 });
    expect(none.status).toBe(400);
    expect(none.body.error.code).toBe('entity_required');
    expect(
      (await org.api.post('/v1/usage', { customer_id: c, entity_id: 'nope', feature_id: 'llm_tokens', value: 1 })).body.error.code,
    ).toBe('entity_not_found');
    // the ledger made them visible at once (a reading that ran ahead of the watermarks may count an
    // entry twice for a moment: conservative, never less); exact once aggregated
    const w1 = await org.api.post('/v1/check', { customer_id: c, entity_id: 'w1', feature_id: 'llm_tokens' });
    expect(w1.body.allowed).toBe(false);
    expect(w1.body.usage).toBeGreaterThanOrEqual(1200);
    const w2check = await org.api.post('/v1/check', { customer_id: c, entity_id: 'w2', feature_id: 'llm_tokens', required_balance: 900 });
    expect(w2check.body.allowed).toBe(true);
    expect(w2check.body.usage).toBeGreaterThanOrEqual(50);
    await waitFor(
      () => usage(c, 'tokens'),
      (t) => t === 1250,
      { timeoutMs: 30_000, intervalMs: 50, what: 'reported tokens' },
    );
    expect(await usage(c, 'tokens', 'w1')).toBe(1200);
    expect(await usage(c, 'tokens', 'w2')).toBe(50);
    await waitFor(
      async () => (await org.api.post('/v1/check', { customer_id: c, entity_id: 'w1', feature_id: 'llm_tokens' })).body.usage,
      (u) => u === 1200,
      { timeoutMs: 30_000, intervalMs: 100, what: "w1's exact usage in checks" },
    );
  });

  it('a more generous promotion in force: usage reports follow the check rule (customer-level, not entity_required)', async () => {
    const c = await customerWithPlan('seats', ['p1']);
    const promo = await org.api.post(`/v1/customers/${c}/promotional_entitlements`, {
      feature_id: 'llm_tokens',
      usage_limit: 5000,
      period: 'one_month',
    });
    expect(promo.status, JSON.stringify(promo.body)).toBe(201);
    const check = await org.api.post('/v1/check', { customer_id: c, feature_id: 'llm_tokens', send_event: true });
    expect(check.status, JSON.stringify(check.body)).toBe(200);
    expect(check.body).toMatchObject({ allowed: true, usage_limit: 5000 });
    // the same customer-level grant for a usage report (before: 400 entity_required, and with the entity
    // a SET was refused as "not per_entity": no way to report at all)
    const r = await org.api.post('/v1/usage', { customer_id: c, feature_id: 'llm_tokens', value: 10 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ usage_limit: 5000, over_limit: false });
  });

  it('concurrent consuming checks on one entity never exceed its limit (and leave the other entity alone)', async () => {
    const c = await customerWithPlan('seats', ['hot', 'cold']);
    const results = await Promise.all(
      Array.from({ length: 40 }, () =>
        org.api.post('/v1/check', { customer_id: c, entity_id: 'hot', feature_id: 'messages', send_event: true }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.body.allowed).length).toBe(5);
    const cold = await Promise.all(
      Array.from({ length: 8 }, () =>
        org.api.post('/v1/check', { customer_id: c, entity_id: 'cold', feature_id: 'messages', send_event: true }),
      ),
    );
    expect(cold.filter((r) => r.body.allowed).length).toBe(5);
    await waitFor(
      () => usage(c, 'msgs'),
      (t) => t === 10,
      { timeoutMs: 30_000, intervalMs: 50, what: 'ten consumed messages' },
    );
    expect(await usage(c, 'msgs', 'hot')).toBe(5);
    expect(await usage(c, 'msgs', 'cold')).toBe(5);
    // after aggregation (ledger entries passed by the watermark) the entity is still exactly at its limit
    const after = await org.api.post('/v1/check', { customer_id: c, entity_id: 'hot', feature_id: 'messages', send_event: true });
    expect(after.body).toMatchObject({ allowed: false, usage: 5 });
  });
});
