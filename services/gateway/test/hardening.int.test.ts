// Issue #9: bad messages are 4xx (never "retry later"), no request holds a connection, compressed
// bodies (RudderStack's SDK), and key revocation within 1 s — against the real shared stack, with
// gateway, billing and aggregator started in-process with small request timeouts.
import { connect } from 'node:net';
import { createGzip, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { createKafka, createPostgres, ensureTopics, upsertCustomerFromIdentify, type Config, type PgPool } from '@meterline/core';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '../../aggregator/src/app.ts';
import { startBilling, type BillingHandle } from '../../billing/src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { postgresFailureKind } from '@meterline/core';
import { signSegmentBody, startGateway, type Gateway } from '../src/index.ts';
import { post, TopicReader } from './support.ts';

// The SDK is CommonJS (module.exports = Analytics).
const RudderAnalytics = createRequire(import.meta.url)('@rudderstack/rudder-sdk-node') as new (
  writeKey: string,
  opts: { dataPlaneUrl: string },
) => { track(m: Record<string, unknown>): void; identify(m: Record<string, unknown>): void; flush(): Promise<unknown> };

const REQUEST_TIMEOUT_MS = 1500;
const HEADERS_TIMEOUT_MS = 1000;
const ADMIN_SECRET = 'hardening-admin-' + uniqueId('s');

let config: Config;
let pg: PgPool;
let kafka: Kafka;
let reader: TopicReader;
let gw: Gateway;
let billing: BillingHandle;
let aggregator: Aggregator;
let org: { organizationId: string; apiKey: string };
let orgSigned: { organizationId: string; apiKey: string };
const SECRET = 'whsec_' + uniqueId('s');

const auth = (o: { apiKey: string }) => ({ 'x-api-key': o.apiKey });
const portOf = (url: string) => Number(new URL(url).port);

beforeAll(async () => {
  config = testConfig({
    KAFKA_EVENTS_TOPIC: uniqueId('t_hard_events'),
    KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_hard_dlq'),
    AGGREGATOR_GROUP_ID: uniqueId('g_hard_agg'),
    GATEWAY_PORT: '0',
    BILLING_PORT: '0',
    AGGREGATOR_PORT: '0',
    ADMIN_SECRET,
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
  });
  pg = createPostgres(config.postgresUrl);
  kafka = createKafka(config.kafka);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config.kafka);
  await admin.disconnect();
  org = await createTestOrganization(pg);
  orgSigned = await createTestOrganization(pg, { segmentSharedSecret: SECRET });
  reader = new TopicReader(kafka, config.kafka.eventsTopic);
  await reader.start();
  gw = await startGateway(config, { pg });
  billing = await startBilling(config, {}, { port: 0, renewalIntervalMs: 0 });
  aggregator = await startAggregator(config);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await billing?.stop();
  await aggregator?.stop();
  await reader?.stop();
  await pg?.end();
});

/** Raw HTTP over TCP: writes `data`, never finishes; resolves with what came back once the server closes. */
function stalledRequest(port: number, data: string, giveUpMs: number): Promise<{ text: string; closedAfterMs: number | null }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedAfterMs: null });
    }, giveUpMs);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (b) => {
      text += b.toString('latin1');
    });
    socket.on('error', () => undefined); // a reset after the answer still counts as closed
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closedAfterMs: Date.now() - started });
    });
    socket.on('timeout', () => reject(new Error('socket timeout')));
  });
}

async function rawPost(url: string, body: Buffer, headers: Record<string, string>) {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

const track = (id: string, extra: Record<string, unknown> = {}) => ({
  type: 'track',
  event: 'Compressed',
  userId: 'z-user',
  messageId: id,
  properties: { n: 1 },
  ...extra,
});
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('RudderStack Node SDK', () => {
  it('@rudderstack/rudder-sdk-node, unmodified with default settings (gzip on), delivers track events through /v1/batch', async () => {
    const client = new RudderAnalytics(org.apiKey, { dataPlaneUrl: gw.url });
    client.track({ userId: 'rs-user-1', event: 'Report Exported', messageId: 'rs-m-1', properties: { pages: 4, format: { type: 'csv' } } });
    client.track({ anonymousId: 'rs-anon-1', event: 'Report Exported', messageId: 'rs-m-2', properties: { pages: 1 } });
    client.identify({ userId: 'rs-user-1', traits: { name: 'Grace Hopper', email: 'grace@example.com' } });
    await client.flush(); // rejects if the gateway refused the batch
    for (const id of ['rs-m-1', 'rs-m-2']) await reader.waitForId(org.organizationId, id);
    const got = reader.of(org.organizationId);
    expect(got.find((e) => e.idempotencyId === 'rs-m-1')).toMatchObject({
      customerId: 'rs-user-1',
      eventName: 'Report Exported',
      source: 'segment',
      properties: { pages: 4, 'format.type': 'csv' },
    });
    expect(got.find((e) => e.idempotencyId === 'rs-m-2')).toMatchObject({ customerId: 'rs-anon-1', properties: { pages: 1 } });
    await waitFor(
      async () =>
        (
          await pg.query('SELECT name, email FROM customers WHERE organization_id = $1 AND customer_id = $2', [
            org.organizationId,
            'rs-user-1',
          ])
        ).rows,
      (rows) => rows.length === 1 && rows[0].email === 'grace@example.com',
      { timeoutMs: 10_000, what: 'identify upserted' },
    );
  });
});

describe('compressed and malformed bodies', () => {
  it('accepts gzip, zlib deflate and raw deflate on /v1/batch with a form-urlencoded content type, and gzip on /v1/events', async () => {
    const gz = await rawPost(`${gw.url}/v1/batch`, gzipSync(JSON.stringify({ batch: [track('gz-1'), track('gz-2')] })), {
      ...FORM,
      ...auth(org),
      'content-encoding': 'gzip',
    });
    expect(gz.status).toBe(200);
    expect(gz.body).toMatchObject({ accepted: 2 });
    const zl = await rawPost(`${gw.url}/v1/batch`, deflateSync(JSON.stringify({ batch: [track('df-1')] })), {
      ...FORM,
      ...auth(org),
      'content-encoding': 'deflate',
    });
    expect(zl.status).toBe(200);
    const raw = await rawPost(`${gw.url}/v1/batch`, deflateRawSync(JSON.stringify({ batch: [track('df-raw-1')] })), {
      ...FORM,
      ...auth(org),
      'content-encoding': 'deflate',
    });
    expect(raw.status).toBe(200);
    const native = await rawPost(
      `${gw.url}/v1/events`,
      gzipSync(JSON.stringify([{ event_name: 'gz_native', customer_id: 'c', idempotency_id: 'gz-native-1' }])),
      { 'content-type': 'application/json', ...auth(org), 'content-encoding': 'gzip' },
    );
    expect(native.status).toBe(200);
    for (const id of ['gz-1', 'gz-2', 'df-1', 'df-raw-1', 'gz-native-1']) await reader.waitForId(org.organizationId, id);
    expect(reader.of(org.organizationId).find((e) => e.idempotencyId === 'gz-1')).toMatchObject({
      eventName: 'Compressed',
      customerId: 'z-user',
      properties: { n: 1 },
    });
  });

  it('Segment signatures are verified over the decoded JSON, also when it arrives gzip-compressed', async () => {
    const json = JSON.stringify(track('sig-gz-1'));
    const ok = await rawPost(`${gw.url}/v1/segment`, gzipSync(json), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      ...auth(orgSigned),
      'x-signature': signSegmentBody(json, SECRET),
    });
    expect(ok.status).toBe(200);
    const compressed = gzipSync(JSON.stringify(track('sig-gz-2')));
    const overCompressed = await rawPost(`${gw.url}/v1/segment`, compressed, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      ...auth(orgSigned),
      'x-signature': signSegmentBody(compressed, SECRET),
    });
    expect(overCompressed.status).toBe(401);
  });

  it('a gzip bomb (50 MiB of zeros) gets 413 quickly without the gateway inflating it', async () => {
    // built by streaming one zero MiB 50 times, so the test itself never holds 50 MiB
    const bomb = await new Promise<Buffer>((resolve, reject) => {
      const z = createGzip({ level: 9 });
      const parts: Buffer[] = [];
      z.on('data', (b: Buffer) => parts.push(b));
      z.on('end', () => resolve(Buffer.concat(parts)));
      z.on('error', reject);
      const mib = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < 50; i++) z.write(mib);
      z.end();
    });
    expect(bomb.length).toBeLessThan(200 * 1024);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const timings: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await rawPost(`${gw.url}/v1/batch`, bomb, { ...FORM, ...auth(org), 'content-encoding': 'gzip' });
      timings.push(performance.now() - t0);
      expect(r.status).toBe(413);
      expect(r.body.error.code).toBe('body_too_large');
    }
    const rssGrowthMiB = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    console.log(
      `gzip bomb: ${bomb.length} bytes compressed (50 MiB decoded) → 413 in ${timings.map((t) => t.toFixed(0)).join('/')} ms; RSS growth over 5 bombs ${rssGrowthMiB.toFixed(1)} MiB`,
    );
    expect(Math.max(...timings)).toBeLessThan(1000);
    expect(rssGrowthMiB).toBeLessThan(40);
  });

  it('a compressed body that decodes to just over the limit is 413, just under is accepted', async () => {
    const under = JSON.stringify([{ event_name: 'near_limit', customer_id: 'c', idempotency_id: 'near-1', properties: { pad: 'x' } }]);
    const pad = ' '.repeat(config.gateway.bodyLimitBytes - Buffer.byteLength(under));
    expect((await rawPost(`${gw.url}/v1/events`, gzipSync(under + pad), { ...auth(org), 'content-encoding': 'gzip' })).status).toBe(200);
    expect((await rawPost(`${gw.url}/v1/events`, gzipSync(under + pad + ' '), { ...auth(org), 'content-encoding': 'gzip' })).status).toBe(
      413,
    );
  });

  it('a corrupt gzip body is 400, an unknown Content-Encoding 415, a body that is not UTF-8 400', async () => {
    const good = gzipSync(JSON.stringify({ batch: [track('corrupt-1')] }));
    const corrupt = Buffer.concat([good.subarray(0, 12), Buffer.from('this is not deflate data at all'), good.subarray(good.length - 8)]);
    const c = await rawPost(`${gw.url}/v1/batch`, corrupt, { ...FORM, ...auth(org), 'content-encoding': 'gzip' });
    expect(c.status).toBe(400);
    expect(c.body.error.code).toBe('invalid_encoding');
    const truncated = await rawPost(`${gw.url}/v1/batch`, good.subarray(0, good.length - 10), {
      ...FORM,
      ...auth(org),
      'content-encoding': 'gzip',
    });
    expect(truncated.status).toBe(400);
    const u = await rawPost(`${gw.url}/v1/batch`, good, { ...FORM, ...auth(org), 'content-encoding': 'compress' });
    expect(u.status).toBe(415);
    expect(u.body.error.code).toBe('unsupported_encoding');
    const latin1 = Buffer.from(JSON.stringify([{ event_name: 'x', customer_id: 'Zoë', idempotency_id: 'latin1-1' }]), 'latin1');
    const bad = await rawPost(`${gw.url}/v1/events`, latin1, { 'content-type': 'application/json', ...auth(org) });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_utf8');
    const badGz = await rawPost(`${gw.url}/v1/batch`, gzipSync(latin1), { ...FORM, ...auth(org), 'content-encoding': 'gzip' });
    expect(badGz.status).toBe(400);
    expect(badGz.body.error.code).toBe('invalid_utf8');
    expect(reader.of(org.organizationId).some((e) => e.idempotencyId === 'latin1-1' || e.idempotencyId === 'corrupt-1')).toBe(false);
  });
});

describe('Segment identify with text Postgres cannot store', () => {
  it('NUL in traits.name is a per-message rejection naming traits.name, never 503; valid identifies still upsert', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`${org.apiKey}:`).toString('base64')}` };
    const one = await post(`${gw.url}/v1/identify`, { userId: 'nul-user-1', traits: { name: 'Ada\u0000Lovelace' } }, basic);
    expect(one.status).toBe(400);
    expect(one.headers.get('retry-after')).toBeNull();
    expect(one.body.results[0]).toMatchObject({ status: 'rejected', errors: [{ field: 'traits.name', reason: 'invalid_characters' }] });

    const lone = await post(`${gw.url}/v1/identify`, { userId: 'nul-user-2', traits: { email: 'a\u0001@example.com' } }, basic);
    expect(lone.status).toBe(400);
    expect(lone.body.results[0].errors[0].field).toBe('traits.email');

    const batch = await post(
      `${gw.url}/v1/batch`,
      {
        batch: [
          { type: 'identify', userId: 'nul-user-3', traits: { name: 'bad\u0000name', email: 'bad@example.com' } },
          { type: 'identify', userId: 'ok-user-3', traits: { name: 'Katherine Johnson', email: 'kj@example.com' } },
          track('nul-batch-track-1'),
        ],
      },
      basic,
    );
    expect(batch.status).toBe(207);
    expect(batch.body.results.map((r: any) => r.status)).toEqual(['rejected', 'accepted', 'accepted']);
    const { rows } = await pg.query(
      'SELECT customer_id, name, email FROM customers WHERE organization_id = $1 AND customer_id LIKE $2 ORDER BY customer_id',
      [org.organizationId, '%-user-%'],
    );
    expect(rows.filter((r) => r.customer_id.startsWith('nul-user'))).toEqual([]);
    expect(rows.find((r) => r.customer_id === 'ok-user-3')).toEqual({
      customer_id: 'ok-user-3',
      name: 'Katherine Johnson',
      email: 'kj@example.com',
    });
  });

  it('a value Postgres itself refuses is classified as a data error (4xx), a dead connection as unavailable (503)', async () => {
    const err = await upsertCustomerFromIdentify(pg, org.organizationId, { customerId: 'pg-nul', name: 'a\u0000b', email: null }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as { code?: string }).code).toBe('22021');
    expect(postgresFailureKind(err)).toBe('data');
    const dead = createPostgres('postgres://postgres@127.0.0.1:1/nowhere');
    const conn = await dead.query('SELECT 1').then(
      () => null,
      (e: unknown) => e,
    );
    await dead.end().catch(() => undefined);
    expect(postgresFailureKind(conn)).toBe('unavailable');
  });
});

describe('request timeouts (no request holds a connection)', () => {
  const bound = REQUEST_TIMEOUT_MS + 1500;

  it('a body that never finishes gets 408 within the request timeout on gateway, billing and aggregator', async () => {
    const targets = [
      {
        name: 'gateway',
        port: portOf(gw.url),
        head: `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-KEY: ${org.apiKey}\r\n`,
      },
      {
        name: 'billing',
        port: portOf(billing.url),
        head: `POST /admin/organizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Admin-Secret: ${ADMIN_SECRET}\r\n`,
      },
      {
        name: 'aggregator',
        port: aggregator.port,
        head: 'POST /v1/debug/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n',
      },
    ];
    const results = await Promise.all(
      targets.map(async (t) => ({ ...t, ...(await stalledRequest(t.port, `${t.head}Content-Length: 1000\r\n\r\n{"name":`, 15_000)) })),
    );
    for (const r of results) {
      console.log(
        `slow body → ${r.name}: ${JSON.stringify(r.text.split('\r\n')[0])} after ${r.closedAfterMs} ms (timeout ${REQUEST_TIMEOUT_MS} ms)`,
      );
      expect(r.closedAfterMs, r.name).not.toBeNull();
      expect(r.closedAfterMs!, r.name).toBeLessThan(bound);
      expect(r.closedAfterMs!, r.name).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    }
    expect(results.find((r) => r.name === 'gateway')!.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(results.find((r) => r.name === 'billing')!.text).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('headers that never finish get 408 within the headers timeout on all three', async () => {
    const ports = { gateway: portOf(gw.url), billing: portOf(billing.url), aggregator: aggregator.port };
    const results = await Promise.all(
      Object.entries(ports).map(async ([name, port]) => ({
        name,
        ...(await stalledRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', 15_000)),
      })),
    );
    for (const r of results) {
      console.log(
        `slow headers → ${r.name}: ${JSON.stringify(r.text.split('\r\n')[0])} after ${r.closedAfterMs} ms (timeout ${HEADERS_TIMEOUT_MS} ms)`,
      );
      expect(r.closedAfterMs, r.name).not.toBeNull();
      expect(r.closedAfterMs!, r.name).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
      expect(r.text, r.name).toMatch(/^HTTP\/1\.1 408 /);
    }
  });

  it('a normal request on the same servers is unaffected', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${billing.url}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${aggregator.port}/healthz`)).status).toBe(200);
  });
});

describe('API key revocation', () => {
  async function billingCall(method: string, path: string, headers: Record<string, string>, body?: unknown) {
    const res = await fetch(`${billing.url}${path}`, {
      method,
      headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  const ev = (id: string) => [{ event_name: 'rev', customer_id: 'c', idempotency_id: id }];

  it('a key revoked through billing is refused by the gateway and the aggregator within 1 s (pub/sub, not the 30 s TTL)', async () => {
    const created = await billingCall('POST', '/admin/organizations', { 'x-admin-secret': ADMIN_SECRET }, { name: 'revocation test' });
    expect(created.status).toBe(201);
    const admin = { 'x-api-key': created.body.api_key as string };
    const second = await billingCall('POST', '/v1/api_keys', admin, { name: 'to revoke' });
    expect(second.status).toBe(201);
    const key = { 'x-api-key': second.body.api_key as string };
    // used (and so cached for 30 s) everywhere
    expect((await post(`${gw.url}/v1/events`, ev(uniqueId('rev')), key)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${aggregator.port}/v1/debug/dead-letters`, { headers: key })).status).not.toBe(401);
    expect((await billingCall('GET', '/v1/organization', key)).status).toBe(200);

    const t0 = performance.now();
    const revoked = await billingCall('DELETE', `/v1/api_keys/${second.body.key_id}`, admin);
    const tRevoked = performance.now();
    expect(revoked.status).toBe(204);
    let gwAt = 0;
    let aggAt = 0;
    await waitFor(
      async () => {
        const now = performance.now();
        if (!gwAt && (await post(`${gw.url}/v1/events`, ev(uniqueId('rev')), key)).status === 401) gwAt = performance.now() - tRevoked;
        if (!aggAt && (await fetch(`http://127.0.0.1:${aggregator.port}/v1/debug/dead-letters`, { headers: key })).status === 401)
          aggAt = performance.now() - tRevoked;
        return now;
      },
      () => gwAt > 0 && aggAt > 0,
      { intervalMs: 5, timeoutMs: 1_000, what: 'revoked key refused by gateway and aggregator' },
    );
    console.log(
      `revocation: DELETE took ${(tRevoked - t0).toFixed(1)} ms; gateway 401 ${gwAt.toFixed(1)} ms and aggregator 401 ${aggAt.toFixed(1)} ms after the 204`,
    );
    expect(gwAt).toBeLessThan(1000);
    expect(aggAt).toBeLessThan(1000);
    expect((await billingCall('GET', '/v1/organization', key)).status).toBe(401);
    expect((await post(`${gw.url}/v1/events`, ev(uniqueId('rev')), admin)).status).toBe(200); // the other key still works
  });

  it('archiving an organization stops all its keys at the gateway within 1 s', async () => {
    const created = await billingCall('POST', '/admin/organizations', { 'x-admin-secret': ADMIN_SECRET }, { name: 'archive test' });
    const key = { 'x-api-key': created.body.api_key as string };
    expect((await post(`${gw.url}/v1/events`, ev(uniqueId('arch')), key)).status).toBe(200);
    const archived = await billingCall('DELETE', `/admin/organizations/${created.body.organization_id}`, {
      'x-admin-secret': ADMIN_SECRET,
    });
    const tArchived = performance.now();
    expect(archived.status).toBe(200);
    expect(archived.body.archived_at).toEqual(expect.any(String));
    await waitFor(
      async () => (await post(`${gw.url}/v1/events`, ev(uniqueId('arch')), key)).status,
      (s) => s === 401,
      { intervalMs: 5, timeoutMs: 1_000, what: 'archived organization refused' },
    );
    console.log(`archive: gateway 401 ${(performance.now() - tArchived).toFixed(1)} ms after the response`);
    expect(
      (await billingCall('DELETE', `/admin/organizations/${created.body.organization_id}`, { 'x-admin-secret': ADMIN_SECRET })).status,
    ).toBe(200); // idempotent
    expect((await billingCall('DELETE', '/admin/organizations/org_nope', { 'x-admin-secret': ADMIN_SECRET })).status).toBe(404);
  });
});
