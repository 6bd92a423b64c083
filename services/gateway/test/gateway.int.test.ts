// The gateway through the real shared stack (Redis, Kafka, Postgres). Own topic, own organizations.
import { Analytics } from '@segment/analytics-node';
import { createKafka, createPostgres, eventKey, ensureTopics, type Config, type PgPool } from '@meterline/core';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { signSegmentBody, startGateway, type Gateway } from '../src/index.ts';
import { idCounts, post, TopicReader } from './support.ts';

let config: Config;
let pg: PgPool;
let kafka: Kafka;
let reader: TopicReader;
let gw: Gateway;
let orgA: { organizationId: string; apiKey: string };
let orgB: { organizationId: string; apiKey: string };
let orgSeg: { organizationId: string; apiKey: string };
const SEGMENT_SECRET = 'whsec_' + uniqueId('s');

const iso = (msAgo = 0) => new Date(Date.now() - msAgo).toISOString();

beforeAll(async () => {
  config = testConfig({ KAFKA_EVENTS_TOPIC: uniqueId('t_gw_events'), KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_gw_dlq'), GATEWAY_PORT: '0' });
  pg = createPostgres(config.postgresUrl);
  kafka = createKafka(config.kafka);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config.kafka);
  await admin.disconnect();
  orgA = await createTestOrganization(pg);
  orgB = await createTestOrganization(pg);
  orgSeg = await createTestOrganization(pg, { segmentSharedSecret: SEGMENT_SECRET });
  reader = new TopicReader(kafka, config.kafka.eventsTopic);
  await reader.start();
  gw = await startGateway(config, { pg });
});

afterAll(async () => {
  await gw?.stop();
  await reader?.stop();
  await pg?.end();
});

const auth = (o: { apiKey: string }) => ({ 'x-api-key': o.apiKey });

describe('POST /v1/events', () => {
  it('accepts events; they are in the topic, keyed by customer, and decode with the published schema', async () => {
    const t = iso(60_000);
    const r = await post(
      `${gw.url}/v1/events`,
      [
        {
          event_name: 'api_call',
          customer_id: 'cust-1',
          idempotency_id: 'ok-1',
          time_created: t,
          properties: { tokens: 120, model: 'large', cached: true },
        },
        { event_name: 'api_call', customer_id: 'cust-2', idempotency_key: 'ok-2', timestamp: t },
        { event_name: 'storage', customer_id: 'cust-1', organization_id: orgB.organizationId },
      ],
      auth(orgA),
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accepted: 3, duplicates: 0, rejected: 0, retry: 0 });
    const generatedId = r.body.results[2].idempotency_id as string;
    expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);
    for (const id of ['ok-1', 'ok-2', generatedId]) await reader.waitForId(orgA.organizationId, id);
    const got = reader.of(orgA.organizationId);
    const e1 = got.find((e) => e.idempotencyId === 'ok-1')!;
    expect(e1).toMatchObject({
      organizationId: orgA.organizationId,
      customerId: 'cust-1',
      eventName: 'api_call',
      timeCreatedMs: Date.parse(t),
      source: 'api',
      properties: { tokens: 120, model: 'large', cached: true },
    });
    expect(e1.key).toBe(eventKey(e1));
    expect(e1.receivedAtMs).toBeGreaterThanOrEqual(Date.parse(t));
    // the organization comes from the API key, never from the body
    expect(got.find((e) => e.idempotencyId === generatedId)!.organizationId).toBe(orgA.organizationId);
    expect(reader.of(orgB.organizationId)).toHaveLength(0);
    expect(reader.undecodable).toHaveLength(0);
  });

  it('also serves /api/track with Bearer auth and { batch }', async () => {
    const r = await post(
      `${gw.url}/api/track`,
      { batch: [{ event_name: 'x', customer_id: 'c', idempotency_id: 'track-1' }] },
      { authorization: `Bearer ${orgA.apiKey}` },
    );
    expect(r.status).toBe(200);
    await reader.waitForId(orgA.organizationId, 'track-1');
  });

  it('deduplicates within a batch, across batches and across a gateway restart; never produces twice', async () => {
    const mk = (id: string) => ({ event_name: 'dup_test', customer_id: 'dup-cust', idempotency_id: id });
    const r1 = await post(`${gw.url}/v1/events`, [mk('d-1'), mk('d-2'), mk('d-1')], auth(orgA));
    expect(r1.status).toBe(200);
    expect(r1.body.results.map((x: any) => x.status)).toEqual(['accepted', 'accepted', 'duplicate']);
    expect(r1.body.results[2]).toMatchObject({ duplicate_of: 0, idempotency_id: 'd-1' });

    const r2 = await post(`${gw.url}/v1/events`, [mk('d-2'), mk('d-3')], auth(orgA));
    expect(r2.body.results.map((x: any) => x.status)).toEqual(['duplicate', 'accepted']);

    // the same id in another organization is a different event
    const rb = await post(`${gw.url}/v1/events`, [mk('d-1')], auth(orgB));
    expect(rb.body.results[0].status).toBe('accepted');

    // restart: a new gateway instance (new process state) still knows the ids (Redis)
    await gw.stop();
    gw = await startGateway(config, { pg });
    const r3 = await post(`${gw.url}/v1/events`, [mk('d-1'), mk('d-2'), mk('d-3'), mk('d-sentinel')], auth(orgA));
    expect(r3.status).toBe(200);
    expect(r3.body).toMatchObject({ accepted: 1, duplicates: 3 });

    // Same customer → same partition, in order: once the sentinel is read, everything before it is too.
    await reader.waitForId(orgA.organizationId, 'd-sentinel');
    const counts = idCounts(reader.of(orgA.organizationId).filter((e) => e.customerId === 'dup-cust'));
    expect(counts).toEqual({ 'd-1': 1, 'd-2': 1, 'd-3': 1, 'd-sentinel': 1 });
    await reader.waitForId(orgB.organizationId, 'd-1');
    expect(reader.of(orgB.organizationId).filter((e) => e.idempotencyId === 'd-1')).toHaveLength(1);
  });

  it('rejects invalid events precisely and accepts their valid neighbours (207); all invalid → 400', async () => {
    const r = await post(
      `${gw.url}/v1/events`,
      [
        { event_name: 'api_call', customer_id: 'mix', idempotency_id: 'mix-ok-1' },
        { customer_id: 'mix', idempotency_id: 'mix-bad-1' },
        { event_name: 'api_call', customer_id: 'mix', idempotency_id: 'mix-bad-2', time_created: iso(-3 * 86_400_000) },
        { event_name: 'api_call', customer_id: 'mix', idempotency_id: 'mix-bad-3', time_created: iso(40 * 86_400_000) },
        { event_name: 'api_call', customer_id: 'mix', idempotency_id: 'mix-bad-4', properties: { nested: { a: 1 } } },
        'not an event',
        { event_name: 'api_call', customer_id: 'mix', idempotency_id: 'mix-ok-2' },
      ],
      auth(orgA),
    );
    expect(r.status).toBe(207);
    expect(r.body).toMatchObject({ accepted: 2, rejected: 5 });
    const errs = (i: number) => r.body.results[i].errors.map((e: any) => `${e.field}:${e.reason}`);
    expect(r.body.results[0]).toEqual({ index: 0, status: 'accepted', idempotency_id: 'mix-ok-1' });
    expect(errs(1)).toEqual(['event_name:required']);
    expect(errs(2)).toEqual(['time_created:too_far_in_future']);
    expect(errs(3)).toEqual(['time_created:outside_backfill_window']);
    expect(errs(4)).toEqual(['properties.nested:must_be_scalar']);
    expect(errs(5)).toEqual([':not_an_object']);
    expect(r.body.results[6].status).toBe('accepted');
    await reader.waitForId(orgA.organizationId, 'mix-ok-2');
    await reader.waitForId(orgA.organizationId, 'mix-ok-1');
    expect(reader.of(orgA.organizationId).filter((e) => e.idempotencyId.startsWith('mix-bad'))).toHaveLength(0);

    const none = await post(`${gw.url}/v1/events`, [{ customer_id: 'x' }, { event_name: 'x' }], auth(orgA));
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({ accepted: 0, rejected: 2 });
  });

  it('refuses bodies over the limit (413), oversized batches (413), malformed JSON (400), empty batches (400)', async () => {
    const big = [{ event_name: 'x', customer_id: 'c', properties: { pad: 'x'.repeat(1000) } }];
    while (JSON.stringify(big).length <= 1024 * 1024) big.push(big[0]!);
    const r = await post(`${gw.url}/v1/events`, big, auth(orgA));
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('body_too_large');
    const many = Array.from({ length: 1001 }, (_, i) => ({ event_name: 'x', customer_id: 'c', idempotency_id: `many-${i}` }));
    const r2 = await post(`${gw.url}/v1/events`, many, auth(orgA));
    expect(r2.status).toBe(413);
    expect(r2.body.error.code).toBe('batch_too_large');
    expect((await post(`${gw.url}/v1/events`, '{"event_name":', auth(orgA))).status).toBe(400);
    expect((await post(`${gw.url}/v1/events`, [], auth(orgA))).status).toBe(400);
  });

  it('answers 401 for a missing or unknown API key', async () => {
    const ev = { event_name: 'x', customer_id: 'c' };
    const missing = await post(`${gw.url}/v1/events`, ev);
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('missing_api_key');
    const unknown = await post(`${gw.url}/v1/events`, ev, { 'x-api-key': 'ml_not_a_real_key' });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('invalid_api_key');
    expect((await post(`${gw.url}/v1/events`, ev, { authorization: 'Bearer nope' })).status).toBe(401);
  });
});

describe('Segment', () => {
  it('@segment/analytics-node, unmodified, delivers track/page/identify through the gateway', async () => {
    const analytics = new Analytics({ writeKey: orgSeg.apiKey, host: gw.url, flushAt: 3, flushInterval: 200, maxRetries: 3 });
    const errors: unknown[] = [];
    analytics.on('error', (e) => errors.push(e));
    analytics.track({
      userId: 'seg-user-1',
      event: 'Report Generated',
      messageId: 'seg-m-1',
      properties: { pages: 12, format: { type: 'pdf' } },
    });
    analytics.track({ anonymousId: 'anon-7', event: 'Report Generated', messageId: 'seg-m-2', properties: { pages: 3 } });
    analytics.page({ userId: 'seg-user-1', name: 'Pricing', messageId: 'seg-m-3', properties: { path: '/pricing' } });
    analytics.identify({ userId: 'seg-user-1', traits: { name: 'Ada Lovelace', email: 'ada@example.com' } });
    await analytics.closeAndFlush({ timeout: 20_000 });
    expect(errors).toEqual([]);
    for (const id of ['seg-m-1', 'seg-m-2', 'seg-m-3']) await reader.waitForId(orgSeg.organizationId, id);
    const got = reader.of(orgSeg.organizationId);
    expect(got.find((e) => e.idempotencyId === 'seg-m-1')).toMatchObject({
      customerId: 'seg-user-1',
      eventName: 'Report Generated',
      source: 'segment',
      properties: { pages: 12, 'format.type': 'pdf' },
    });
    expect(got.find((e) => e.idempotencyId === 'seg-m-2')).toMatchObject({ customerId: 'anon-7' });
    expect(got.find((e) => e.idempotencyId === 'seg-m-3')).toMatchObject({
      eventName: 'page',
      properties: { path: '/pricing', name: 'Pricing' },
    });
    const { rows } = await pg.query('SELECT name, email FROM customers WHERE organization_id = $1 AND customer_id = $2', [
      orgSeg.organizationId,
      'seg-user-1',
    ]);
    expect(rows).toEqual([{ name: 'Ada Lovelace', email: 'ada@example.com' }]);
  });

  it('identify updates name/email and keeps the other columns', async () => {
    await pg.query(
      `INSERT INTO customers (organization_id, customer_id, name, currency, balance_minor) VALUES ($1, 'seg-user-2', 'Old', 'EUR', 500)`,
      [orgSeg.organizationId],
    );
    const r = await post(
      `${gw.url}/v1/identify`,
      { userId: 'seg-user-2', traits: { email: 'new@example.com' } },
      { authorization: `Basic ${Buffer.from(`${orgSeg.apiKey}:`).toString('base64')}` },
    );
    expect(r.status).toBe(200);
    const { rows } = await pg.query(
      'SELECT name, email, currency, balance_minor FROM customers WHERE organization_id = $1 AND customer_id = $2',
      [orgSeg.organizationId, 'seg-user-2'],
    );
    expect(rows).toEqual([{ name: 'Old', email: 'new@example.com', currency: 'EUR', balance_minor: '500' }]);
  });

  it('webhooks: a signed payload is accepted, a tampered or unsigned one is refused', async () => {
    const payload = JSON.stringify({
      type: 'track',
      event: 'Seat Added',
      userId: 'seg-user-3',
      messageId: 'seg-wh-1',
      timestamp: iso(),
      properties: { seats: 2 },
    });
    const ok = await post(`${gw.url}/v1/segment`, payload, { ...auth(orgSeg), 'x-signature': signSegmentBody(payload, SEGMENT_SECRET) });
    expect(ok.status).toBe(200);
    expect(ok.body.results[0]).toMatchObject({ status: 'accepted', idempotency_id: 'seg-wh-1' });

    const tampered = payload.replace('"seats":2', '"seats":200');
    const bad = await post(`${gw.url}/v1/segment`, tampered, { ...auth(orgSeg), 'x-signature': signSegmentBody(payload, SEGMENT_SECRET) });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('invalid_signature');
    const unsigned = await post(`${gw.url}/v1/segment`, payload.replace('seg-wh-1', 'seg-wh-2'), auth(orgSeg));
    expect(unsigned.status).toBe(401);

    // an organization without a shared secret does not need signatures
    const noSecret = await post(`${gw.url}/v1/segment`, { type: 'track', event: 'x', userId: 'u', messageId: 'wh-nosecret' }, auth(orgB));
    expect(noSecret.status).toBe(200);

    await reader.waitForId(orgSeg.organizationId, 'seg-wh-1');
    expect(reader.of(orgSeg.organizationId).find((e) => e.idempotencyId === 'seg-wh-1')!.properties).toEqual({ seats: 2 });
    expect(reader.of(orgSeg.organizationId).some((e) => e.idempotencyId === 'seg-wh-2')).toBe(false);
  });
});

describe('operations', () => {
  it('serves /healthz, /readyz and /metrics with the gateway counters', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { redis: 'ok', kafka: 'ok' } });
    await post(`${gw.url}/v1/events`, [{ event_name: 'm', customer_id: 'c' }, { event_name: 'm' }], auth(orgA));
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/meterline_gateway_events_total\{[^}]*outcome="accepted"[^}]*\} [1-9]/);
    expect(text).toMatch(/meterline_gateway_events_total\{[^}]*outcome="rejected",reason="required"[^}]*\} [1-9]/);
    expect(text).toContain('meterline_gateway_kafka_produce_seconds_bucket');
    expect(text).toContain('meterline_gateway_request_events_bucket');
    expect(text).toContain('meterline_gateway_in_flight_events');
    expect(text).not.toContain(orgA.organizationId);
  });

  it('stop() drains in-flight requests: a request under way when stop is called is still answered and produced', async () => {
    const own = await startGateway(config, { pg });
    const inflight = post(
      `${own.url}/v1/events`,
      Array.from({ length: 500 }, (_, i) => ({ event_name: 'drain', customer_id: 'drain-c', idempotency_id: `drain-${i}` })),
      auth(orgA),
    );
    await waitFor(
      async () => own.ingestor.inFlightEvents,
      (n) => n > 0,
      { intervalMs: 1, timeoutMs: 5_000, what: 'request in flight' },
    ).catch(() => undefined);
    const stopped = own.stop();
    const r = await inflight;
    await stopped;
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(500);
    await reader.waitForId(orgA.organizationId, 'drain-499');
  });
});
