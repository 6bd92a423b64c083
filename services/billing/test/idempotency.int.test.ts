// Idempotency keys on POST /v1/usage and consuming POST /v1/check, against the real pipeline: billing's
// producer -> Kafka -> the real aggregator -> ClickHouse, and the answers stored in the shared Redis.
// "Counted once" is proven with a marker: after the keyed requests (and their replays) a report
// without a key is sent for the same customer (same Kafka partition, so after them in order); once
// ClickHouse shows the marker, any duplicate would have been counted too, so the total is exact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { redisKeys, type Config, type UsageEvent } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import { startBilling, type BillingHandle } from '../src/index.ts';
import { IdempotencyStore, requestFingerprint } from '../src/usage/idempotency.ts';
import { kafkaUsageRecorder, type UsageRecorder } from '../src/usage/recorder.ts';

let billing: BillingHandle;
let second: BillingHandle | undefined;
let config: Config;
let aggregator: Aggregator;
let org: Awaited<ReturnType<typeof createOrg>>;
const started: BillingHandle[] = [];

type Org = Awaited<ReturnType<typeof createOrg>>;

async function catalog(o: Org) {
  expect((await o.api.post('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' })).status).toBe(201);
  expect((await o.api.post('/v1/metrics', { metric_id: 'tokens', event_name: 'llm', aggregation: 'sum', property: 'tokens' })).status).toBe(
    201,
  );
  expect((await o.api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' })).status).toBe(201);
  expect((await o.api.post('/v1/features', { feature_id: 'llm_tokens', type: 'metered', metric_id: 'tokens' })).status).toBe(201);
  expect(
    (
      await o.api.post('/v1/plans', {
        plan_id: 'pro',
        name: 'Pro',
        interval: 'month',
        flat_fee: '10',
        components: [],
        entitlements: [
          { feature_id: 'api', limit: 10, limit_type: 'hard' },
          { feature_id: 'llm_tokens', limit: null },
        ],
      })
    ).status,
  ).toBe(201);
}

async function subscribed(o: Org, customerId = uniqueId('c')) {
  expect((await o.api.post('/v1/customers', { customer_id: customerId })).status).toBe(201);
  expect((await o.api.post('/v1/subscriptions', { customer_id: customerId, plan_id: 'pro' })).status).toBe(201);
  return customerId;
}

/** POST with headers visible (the helper client hides them). */
async function post(baseUrl: string, apiKey: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    replayed: res.headers.get('idempotent-replayed'),
    retryAfter: res.headers.get('retry-after'),
    text,
    body: JSON.parse(text),
  };
}

/** Sends an un-keyed marker of `marker` tokens and waits until ClickHouse shows `expected + marker`. */
async function expectTokensCounted(o: Org, customerId: string, expected: number, marker = 1) {
  const m = await o.api.post('/v1/usage', { customer_id: customerId, feature_id: 'llm_tokens', value: marker });
  expect(m.status).toBe(200);
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  const u = await waitFor(
    () => o.api.get(`/v1/usage?customer_id=${customerId}&feature_id=llm_tokens&from=${from}&to=${to}`),
    (r) => r.body.total >= expected + marker,
    { what: `tokens total ${expected} + marker ${marker}`, timeoutMs: 60_000 },
  );
  expect(u.body.total).toBe(expected + marker);
}

async function expectApiCallsCounted(o: Org, customerId: string, expected: number) {
  // the marker for a count metric is a token report of the same customer (same partition key)
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  await expectTokensCounted(o, customerId, 0, 1);
  const u = await o.api.get(`/v1/usage?customer_id=${customerId}&feature_id=api&from=${from}&to=${to}`);
  expect(u.body.total).toBe(expected);
}

beforeAll(async () => {
  ({ billing, config } = await startTestBilling());
  started.push(billing);
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_idem_agg') } });
  org = await createOrg(billing.url);
  await catalog(org);
}, 180_000);

afterAll(async () => {
  for (const b of started) await b.stop();
  await second?.stop();
  await aggregator?.stop();
});

describe('idempotency_key on POST /v1/usage', () => {
  it('a retry replays the first answer (same status and body, Idempotent-Replayed) and counts once', async () => {
    const c = await subscribed(org);
    const body = { customer_id: c, feature_id: 'llm_tokens', value: 40, idempotency_key: uniqueId('k') };
    const first = await post(billing.url, org.apiKey, '/v1/usage', body);
    expect(first.status).toBe(200);
    expect(first.replayed).toBeNull();
    expect(first.body).toMatchObject({ previous_usage: 0, current_usage: 40, events_recorded: 1 });
    const again = await post(billing.url, org.apiKey, '/v1/usage', body);
    expect(again.status).toBe(200);
    expect(again.replayed).toBe('true');
    expect(again.text).toBe(first.text);
    // the Idempotency-Key header is the same key
    const { idempotency_key, ...noKey } = body;
    const viaHeader = await post(billing.url, org.apiKey, '/v1/usage', noKey, { 'idempotency-key': idempotency_key });
    expect(viaHeader).toMatchObject({ status: 200, replayed: 'true', text: first.text });
    await expectTokensCounted(org, c, 40);
  });

  it('same key on two billing instances, and after restarting an instance', async () => {
    second = await startBilling(config, {}, { port: 0, renewalIntervalMs: 0 });
    const c = await subscribed(org);
    const body = { customer_id: c, feature_id: 'llm_tokens', value: 7, idempotency_key: uniqueId('k') };
    const first = await post(billing.url, org.apiKey, '/v1/usage', body);
    expect(first.status).toBe(200);
    const other = await post(second.url, org.apiKey, '/v1/usage', body);
    expect(other).toMatchObject({ status: 200, replayed: 'true', text: first.text });
    await second.stop();
    second = await startBilling(config, {}, { port: 0, renewalIntervalMs: 0 });
    const restarted = await post(second.url, org.apiKey, '/v1/usage', body);
    expect(restarted).toMatchObject({ status: 200, replayed: 'true', text: first.text });
    await expectTokensCounted(org, c, 7);
  });

  it('50 concurrent requests with one key: one executes, all get its answer, counted once', async () => {
    const c = await subscribed(org);
    const body = { customer_id: c, feature_id: 'llm_tokens', value: 3, idempotency_key: uniqueId('k') };
    const urls = [billing.url, second?.url ?? billing.url];
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => post(urls[i % 2]!, org.apiKey, '/v1/usage', body)));
    expect(rs.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(rs.filter((r) => r.replayed === null)).toHaveLength(1);
    expect(new Set(rs.map((r) => r.text)).size).toBe(1);
    expect(rs[0]!.body).toMatchObject({ previous_usage: 0, current_usage: 3 });
    await expectTokensCounted(org, c, 3);
  });

  it('the same key with a different body (or on the other route) is 409 idempotency_key_reused naming the key', async () => {
    const c = await subscribed(org);
    const key = uniqueId('k');
    expect(
      (await post(billing.url, org.apiKey, '/v1/usage', { customer_id: c, feature_id: 'llm_tokens', value: 5, idempotency_key: key }))
        .status,
    ).toBe(200);
    const diff = await post(billing.url, org.apiKey, '/v1/usage', {
      customer_id: c,
      feature_id: 'llm_tokens',
      value: 6,
      idempotency_key: key,
    });
    expect(diff.status).toBe(409);
    expect(diff.body.error).toMatchObject({ code: 'idempotency_key_reused', details: { idempotency_key: key } });
    expect(diff.body.error.message).toContain(key);
    const onCheck = await post(billing.url, org.apiKey, '/v1/check', {
      customer_id: c,
      feature_id: 'api',
      send_event: true,
      idempotency_key: key,
    });
    expect(onCheck.status).toBe(409);
    expect(onCheck.body.error.code).toBe('idempotency_key_reused');
    // header and body disagree; malformed header
    const both = await post(
      billing.url,
      org.apiKey,
      '/v1/usage',
      { customer_id: c, feature_id: 'llm_tokens', value: 5, idempotency_key: key },
      { 'idempotency-key': 'other' },
    );
    expect(both.status).toBe(400);
    const bad = await post(
      billing.url,
      org.apiKey,
      '/v1/usage',
      { customer_id: c, feature_id: 'llm_tokens', value: 5 },
      { 'idempotency-key': 'a b' },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('idempotency-key');
    expect(
      (
        await post(billing.url, org.apiKey, '/v1/usage', {
          customer_id: c,
          feature_id: 'llm_tokens',
          value: 5,
          idempotency_key: 'x'.repeat(256),
        })
      ).status,
    ).toBe(400);
    expect(
      (await post(billing.url, org.apiKey, '/v1/usage', { customer_id: c, feature_id: 'llm_tokens', value: 5, idempotency_key: '' }))
        .status,
    ).toBe(400);
    await expectTokensCounted(org, c, 5);
  });

  it("another organization's same key is independent", async () => {
    const org2 = await createOrg(billing.url);
    await catalog(org2);
    const c = uniqueId('c');
    await subscribed(org, c);
    await subscribed(org2, c);
    const key = uniqueId('k');
    const a = await post(billing.url, org.apiKey, '/v1/usage', {
      customer_id: c,
      feature_id: 'llm_tokens',
      value: 11,
      idempotency_key: key,
    });
    const b = await post(billing.url, org2.apiKey, '/v1/usage', {
      customer_id: c,
      feature_id: 'llm_tokens',
      value: 22,
      idempotency_key: key,
    });
    expect(a).toMatchObject({ status: 200, replayed: null });
    expect(b).toMatchObject({ status: 200, replayed: null });
    expect(b.body.current_usage).toBe(22);
    await expectTokensCounted(org, c, 11);
    await expectTokensCounted(org2, c, 22);
  });

  it('failures are not stored: a 404 and a 503 can be retried with the same key and then succeed once', async () => {
    const c = uniqueId('c');
    const body = { customer_id: c, feature_id: 'llm_tokens', value: 9, idempotency_key: uniqueId('k') };
    expect((await post(billing.url, org.apiKey, '/v1/usage', body)).status).toBe(404);
    await subscribed(org, c);
    // an instance whose first produce fails (503), then works
    const real = kafkaUsageRecorder(config.kafka);
    let failures = 1;
    const flaky: UsageRecorder = {
      record: (events: UsageEvent[]) => (failures-- > 0 ? Promise.reject(new Error('kafka down')) : real.record(events)),
      stop: () => real.stop(),
    };
    const b = await startBilling(config, { recorder: flaky }, { port: 0, renewalIntervalMs: 0 });
    started.push(b);
    expect((await post(b.url, org.apiKey, '/v1/usage', body)).status).toBe(503);
    const ok = await post(b.url, org.apiKey, '/v1/usage', body);
    expect(ok).toMatchObject({ status: 200, replayed: null });
    expect((await post(billing.url, org.apiKey, '/v1/usage', body)).replayed).toBe('true');
    await expectTokensCounted(org, c, 9);
  });

  it('a lost answer (crash after the produce) re-executes with the same event ids: counted once', async () => {
    const c = await subscribed(org);
    const key = uniqueId('k');
    const body = { customer_id: c, feature_id: 'llm_tokens', value: 13, idempotency_key: key };
    expect((await post(billing.url, org.apiKey, '/v1/usage', body)).status).toBe(200);
    await billing.deps.redis.del(redisKeys.billingIdempotency(org.orgId, key)); // as if never stored
    const again = await post(billing.url, org.apiKey, '/v1/usage', body);
    expect(again).toMatchObject({ status: 200, replayed: null });
    await expectTokensCounted(org, c, 13);
  });

  it('a request whose key is still executing elsewhere waits, then gets 409 idempotency_key_in_progress with Retry-After', async () => {
    const c = await subscribed(org);
    const key = uniqueId('k');
    const body = { customer_id: c, feature_id: 'llm_tokens', value: 2, update_behavior: 'delta' };
    const rkey = redisKeys.billingIdempotency(org.orgId, key);
    // a claim of a "crashed" instance (its TTL would expire; here it is simply held)
    await billing.deps.redis.set(rkey, JSON.stringify({ s: 'p', t: 'other', f: requestFingerprint('POST /v1/usage', body) }), 'PX', 60_000);
    const r = await post(billing.url, org.apiKey, '/v1/usage', { ...body, idempotency_key: key });
    expect(r.status).toBe(409);
    expect(r.retryAfter).toBe('1');
    expect(r.body.error).toMatchObject({ code: 'idempotency_key_in_progress', details: { idempotency_key: key } });
    await billing.deps.redis.del(rkey); // the claim expires: a retry executes
    expect((await post(billing.url, org.apiKey, '/v1/usage', { ...body, idempotency_key: key })).status).toBe(200);
    await expectTokensCounted(org, c, 2);
  });
});

describe('idempotency_key on consuming POST /v1/check', () => {
  it('a retry replays a grant; 50 concurrent with one key consume once', async () => {
    const c = await subscribed(org);
    const body = { customer_id: c, feature_id: 'api', required_balance: 2, send_event: true, idempotency_key: uniqueId('k') };
    const first = await post(billing.url, org.apiKey, '/v1/check', body);
    expect(first.body).toMatchObject({ allowed: true, usage: 2, events_recorded: 2 });
    const again = await post(billing.url, org.apiKey, '/v1/check', body);
    expect(again).toMatchObject({ status: 200, replayed: 'true', text: first.text });
    const key2 = uniqueId('k');
    const urls = [billing.url, second?.url ?? billing.url];
    const rs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        post(urls[i % 2]!, org.apiKey, '/v1/check', { ...body, required_balance: 3, idempotency_key: key2 }),
      ),
    );
    expect(rs.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(rs.filter((r) => r.replayed === null)).toHaveLength(1);
    expect(new Set(rs.map((r) => r.text)).size).toBe(1);
    expect(rs[0]!.body).toMatchObject({ allowed: true, usage: 5, events_recorded: 3 });
    // the ledger saw exactly 2 + 3
    expect((await org.api.get(`/v1/customers/${c}/entitlements/api`)).body.current_usage).toBe(5);
    await expectApiCallsCounted(org, c, 5);
  });

  it('a denied consuming check replays its denial', async () => {
    const c = await subscribed(org);
    expect(
      (await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 9, send_event: true })).body.allowed,
    ).toBe(true);
    const body = { customer_id: c, feature_id: 'api', required_balance: 2, send_event: true, idempotency_key: uniqueId('k') };
    const denied = await post(billing.url, org.apiKey, '/v1/check', body);
    expect(denied.body).toMatchObject({ allowed: false, events_recorded: 0 });
    expect(denied.body.entitlement.access_denied_reason).toBe('requested_usage_exceeds_limit');
    const again = await post(billing.url, org.apiKey, '/v1/check', body);
    expect(again).toMatchObject({ status: 200, replayed: 'true', text: denied.text });
    // a non-consuming check ignores the key (a pure read: nothing stored, nothing replayed)
    const pure = await post(billing.url, org.apiKey, '/v1/check', {
      customer_id: c,
      feature_id: 'api',
      idempotency_key: body.idempotency_key,
    });
    expect(pure).toMatchObject({ status: 200, replayed: null });
    await expectApiCallsCounted(org, c, 9);
  });
});

describe('IdempotencyStore (real Redis)', () => {
  it('a waiter gets the executing request answer; a failure releases the key', async () => {
    const store = new IdempotencyStore(billing.deps.redis, { waitMs: 2_000, pollMs: 5 });
    const orgId = uniqueId('org');
    const key = uniqueId('k');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let runs = 0;
    const exec = async () => {
      runs++;
      await gate;
      return { n: runs };
    };
    const a = store.run(orgId, key, 'fp', exec);
    const b = store.run(orgId, key, 'fp', exec);
    await waitFor(
      async () => runs,
      (n) => n === 1,
      { what: 'first run started', intervalMs: 5 },
    );
    release();
    expect(await a).toEqual({ kind: 'executed', status: 200, body: { n: 1 } });
    expect(await b).toEqual({ kind: 'replayed', status: 200, body: { n: 1 } });
    expect(await store.run(orgId, key, 'fp2', exec)).toEqual({ kind: 'reused' });
    const k2 = uniqueId('k');
    await expect(store.run(orgId, k2, 'fp', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await store.run(orgId, k2, 'fp', async () => 'ok')).toEqual({ kind: 'executed', status: 200, body: 'ok' });
    const ttl = await billing.deps.redis.pttl(redisKeys.billingIdempotency(orgId, k2));
    expect(ttl).toBeGreaterThan(23 * 3_600_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3_600_000);
  });
});
