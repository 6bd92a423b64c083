// The ingest plugin (routes/ingest-api.ts) with fakes: its one auth hook, body path and error handler
// apply to every ingest route and to nothing outside the plugin; core's Kafka helpers the gateway uses.
import Fastify from 'fastify';
import { logLevel } from 'kafkajs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  decodeEvent,
  eventKey,
  IDEMPOTENT_RETRY_WARNING,
  kafkaLogCreator,
  loadConfig,
  toKafkaMessage,
  withTimeout,
  TimeoutError,
  type Logger,
  type UsageEvent,
} from '@meterline/core';
import type { SegmentSecretCache } from '../src/auth.ts';
import type { Ingestor, PreparedItem } from '../src/ingest.ts';
import { createGatewayMetrics } from '../src/metrics.ts';
import { ingestApi } from '../src/routes/ingest-api.ts';

const INGEST_ROUTES = [
  '/v1/events',
  '/api/track',
  '/v1/segment',
  '/v1/batch',
  '/v1/track',
  '/v1/identify',
  '/v1/page',
  '/v1/screen',
  '/v1/group',
  '/v1/alias',
];

async function build() {
  const cfg = loadConfig({}).gateway;
  const seen: Array<{ org: string; source: string; items: PreparedItem[] }> = [];
  const ingestor = {
    async ingest(org: string, source: string, items: PreparedItem[]) {
      seen.push({ org, source, items });
      const results = items.map((it, index) =>
        'result' in it ? { index, ...it.result } : { index, status: 'accepted' as const, idempotency_id: it.event.idempotencyId },
      );
      return {
        accepted: results.filter((r) => r.status === 'accepted').length,
        duplicates: 0,
        rejected: results.filter((r) => r.status === 'rejected').length,
        retry: 0,
        ignored: 0,
        results,
      };
    },
  } as unknown as Ingestor;
  const app = Fastify({ logger: false });
  app.get('/outside', async () => ({ ok: true }));
  await app.register(
    ingestApi({
      cfg,
      keys: { resolve: async (key) => (key === 'good' ? { organizationId: 'org_1' } : null) },
      secrets: { secretOf: async () => null } as unknown as SegmentSecretCache,
      pg: {} as never,
      ingestor,
      metrics: createGatewayMetrics(new Registry()),
      logger: { error() {}, warn() {}, debug() {} } as unknown as Logger,
      isShuttingDown: () => false,
    }),
  );
  return { app, seen };
}

describe('ingest plugin', () => {
  it('authenticates every ingest route with one hook; routes outside the plugin are not affected', async () => {
    const { app } = await build();
    for (const url of INGEST_ROUTES) {
      const r = await app.inject({ method: 'POST', url, payload: '{}', headers: { 'content-type': 'application/json' } });
      expect([url, r.statusCode, r.json().error.code]).toEqual([url, 401, 'missing_api_key']);
      const bad = await app.inject({ method: 'POST', url, payload: '{}', headers: { 'x-api-key': 'nope' } });
      expect([url, bad.statusCode, bad.json().error.code]).toEqual([url, 401, 'invalid_api_key']);
    }
    // the ingest body rules (Content-Encoding, JSON whatever the type) and auth do not leak outside
    const outside = await app.inject({ method: 'GET', url: '/outside', headers: { 'content-encoding': 'zstd' } });
    expect(outside.statusCode).toBe(200);
    await app.close();
  });

  it('one body path and error handler for all ingest routes: any Content-Type parsed as JSON, envelope errors', async () => {
    const { app, seen } = await build();
    const auth = { 'x-api-key': 'good', 'content-type': 'text/plain' };
    const ev = { event_name: 'e', customer_id: 'c', idempotency_id: 'i1', timestamp: new Date().toISOString() };
    const ok = await app.inject({ method: 'POST', url: '/v1/events', payload: JSON.stringify(ev), headers: auth });
    expect(ok.statusCode).toBe(200);
    expect(seen[0]).toMatchObject({ org: 'org_1', source: 'api' });
    const seg = await app.inject({
      method: 'POST',
      url: '/v1/page',
      payload: JSON.stringify({ userId: 'u', messageId: 'm' }),
      headers: auth,
    });
    expect(seg.statusCode).toBe(200);
    expect(seen[1]).toMatchObject({ org: 'org_1', source: 'segment' });
    for (const url of INGEST_ROUTES) {
      const zstd = await app.inject({ method: 'POST', url, payload: '{}', headers: { ...auth, 'content-encoding': 'zstd' } });
      expect([url, zstd.statusCode, zstd.json().error.code]).toEqual([url, 415, 'unsupported_encoding']);
      const bad = await app.inject({ method: 'POST', url, payload: '{bad', headers: auth });
      expect([url, bad.statusCode, bad.json().error.code]).toEqual([url, 400, 'invalid_request']);
    }
    await app.close();
  });
});

describe('core helpers used by the gateway', () => {
  it('toKafkaMessage: key organization/customer, value the Avro encoding', () => {
    const e: UsageEvent = {
      organizationId: 'o',
      customerId: 'c',
      eventName: 'n',
      idempotencyId: 'i',
      timeCreatedMs: 1_700_000_000_000,
      receivedAtMs: 1_700_000_000_001,
      properties: { a: 1 },
      source: 'api',
    };
    const m = toKafkaMessage(e);
    expect(m.key).toBe(eventKey(e));
    expect(decodeEvent(m.value)).toEqual(e);
  });

  it('kafkaLogCreator drops the idempotent-producer warning and demotes errors only when asked', () => {
    const lines: Array<[string, string]> = [];
    const logger = Object.fromEntries(
      ['error', 'warn', 'debug'].map((l) => [l, (_o: unknown, msg: string) => lines.push([l, msg])]),
    ) as unknown as Logger;
    const entry = (level: number, message: string) => ({ namespace: 'x', level, label: '', log: { message, timestamp: '' } });
    const gw = kafkaLogCreator(logger, { dropIdempotentRetryWarning: true, errorsAsWarnings: true })(logLevel.WARN);
    gw(entry(logLevel.WARN, `${IDEMPOTENT_RETRY_WARNING} to 3`));
    gw(entry(logLevel.ERROR, 'boom'));
    const plain = kafkaLogCreator(logger)(logLevel.WARN);
    plain(entry(logLevel.WARN, `${IDEMPOTENT_RETRY_WARNING} to 3`));
    plain(entry(logLevel.ERROR, 'boom'));
    plain(entry(logLevel.INFO, 'info'));
    expect(lines).toEqual([
      ['warn', 'boom'],
      ['warn', `${IDEMPOTENT_RETRY_WARNING} to 3`],
      ['error', 'boom'],
      ['debug', 'info'],
    ]);
  });

  it('withTimeout: the outcome in time, else TimeoutError or the caller’s error', async () => {
    await expect(withTimeout(Promise.resolve(1), 50)).resolves.toBe(1);
    const never = new Promise<never>(() => undefined);
    const t = await withTimeout(never, 10).catch((e: unknown) => e);
    expect(t).toBeInstanceOf(TimeoutError);
    expect((t as Error).message).toBe('timed out after 10 ms');
    class Mine extends Error {}
    const m = await withTimeout(never, 10, { what: 'kafka produce', error: (msg) => new Mine(msg) }).catch((e: unknown) => e);
    expect(m).toBeInstanceOf(Mine);
    expect((m as Error).message).toBe('kafka produce timed out after 10 ms');
  });
});
