// Fault tests on a private Kafka + Redis (PrivateStack, base port 19100): Kafka down → 503 and exactly-once
// on retry; a gateway SIGKILLed between claim and Kafka ack; Redis down → 503 and dedup state surviving
// a Redis restart (AOF).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createKafka, createPostgres, createRedis, ensureTopics, type Config, type PgPool, type Redis } from '@meterline/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig, testEnv } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { PrivateStack } from '../../../test/support/private-stack.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { dedupKey, startGateway, type Gateway } from '../src/index.ts';
import { idCounts, post, TopicReader } from './support.ts';

const stack = new PrivateStack(19100);
const topic = uniqueId('t_gw_faults');
let env: Record<string, string>;
let config: Config;
let pg: PgPool;
let redis: Redis;
let gw: Gateway;
let org: { organizationId: string; apiKey: string };

const ev = (id: string, customer = 'fault-c') => ({ event_name: 'api_call', customer_id: customer, idempotency_id: id });

/** Reads the private topic from the beginning until `sentinel` (same customer → same partition) is seen. */
async function countsUpTo(sentinelId: string, customer = 'fault-c'): Promise<Record<string, number>> {
  const r = await post(`${gw.url}/v1/events`, [ev(sentinelId, customer)], { 'x-api-key': org.apiKey });
  expect(r.status).toBe(200);
  const reader = new TopicReader(createKafka(config.kafka), topic);
  await reader.start();
  try {
    await reader.waitForId(org.organizationId, sentinelId, 60_000);
    return idCounts(reader.of(org.organizationId).filter((e) => e.customerId === customer));
  } finally {
    await reader.stop();
  }
}

beforeAll(async () => {
  await stack.start('kafka');
  await stack.start('redis');
  env = {
    KAFKA_BROKERS: stack.kafkaBrokers,
    REDIS_URL: stack.redisUrl,
    KAFKA_EVENTS_TOPIC: topic,
    KAFKA_DEAD_LETTER_TOPIC: `${topic}_dlq`,
    GATEWAY_PORT: '0',
  };
  config = testConfig(env);
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  await ensureTopics(admin, config.kafka);
  await admin.disconnect();
  pg = createPostgres(config.postgresUrl);
  redis = createRedis(config.redisUrl);
  redis.on('error', () => undefined);
  org = await createTestOrganization(pg);
  gw = await startGateway(config, { pg });
}, 300_000);

afterAll(async () => {
  await gw?.stop();
  redis?.disconnect();
  await pg?.end();
  await stack.destroy();
}, 180_000);

describe('Kafka down', () => {
  it('answers 503 with Retry-After within ~10 s, and after Kafka returns the retried batch is accepted exactly once', async () => {
    const auth = { 'x-api-key': org.apiKey };
    expect((await post(`${gw.url}/v1/events`, [ev('k-before')], auth)).status).toBe(200);

    await stack.stop('kafka');
    const batch = [ev('k-1'), ev('k-2'), ev('k-3')];
    const t0 = Date.now();
    const down = await post(`${gw.url}/v1/events`, batch, auth);
    const elapsed = Date.now() - t0;
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(down.body.error.code).toBe('kafka_unavailable');
    expect(elapsed).toBeLessThan(10_500);
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(503);

    await stack.start('kafka');
    const seen: number[] = [];
    const ok = await waitFor(
      async () => {
        const r = await post(`${gw.url}/v1/events`, batch, auth);
        seen.push(r.status);
        // while Kafka comes back: 503s are fine, a "duplicate" never is (nothing was acknowledged)
        if (r.status === 200) expect(r.body.results.map((x: any) => x.status)).toEqual(['accepted', 'accepted', 'accepted']);
        return r;
      },
      (r) => r.status === 200,
      { timeoutMs: 90_000, intervalMs: 500, what: 'batch accepted after Kafka restart' },
    );
    expect(ok.body.accepted).toBe(3);
    expect(new Set(seen.slice(0, -1))).not.toContain(200);
    const again = await post(`${gw.url}/v1/events`, batch, auth);
    expect(again.body.results.map((x: any) => x.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);

    const counts = await countsUpTo('k-sentinel');
    expect(counts).toEqual({ 'k-before': 1, 'k-1': 1, 'k-2': 1, 'k-3': 1, 'k-sentinel': 1 });
    await waitFor(
      async () => (await fetch(`${gw.url}/readyz`)).status,
      (s) => s === 200,
      { what: 'ready again' },
    );
  }, 240_000);

  it('a gateway killed between claim and Kafka ack does not turn the retry into a duplicate', async () => {
    const claimTtlMs = 5_000;
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../src/main.ts', import.meta.url))], {
      env: {
        ...testEnv(env),
        LOG_LEVEL: 'info',
        GATEWAY_PRODUCE_TIMEOUT_MS: '60000',
        GATEWAY_DEDUP_CLAIM_TTL_MS: String(claimTtlMs),
      } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const childUrl = await waitFor(async () => /"url":"(http:[^"]+)"/.exec(out)?.[1], Boolean, {
        timeoutMs: 60_000,
        what: 'child gateway listening',
      });
      await waitFor(
        async () => (await fetch(`${childUrl}/readyz`)).status,
        (s) => s === 200,
        { timeoutMs: 30_000, what: 'child ready' },
      );
      // the child's producer is connected; now Kafka goes away so its send cannot be acknowledged
      await stack.stop('kafka');
      const batch = [ev('crash-1'), ev('crash-2')];
      const request = post(`${childUrl}/v1/events`, batch, { 'x-api-key': org.apiKey }).catch((err: Error) => err);
      const key = dedupKey(org.organizationId, 'crash-1');
      await waitFor(
        async () => redis.get(key),
        (v) => typeof v === 'string' && v.startsWith('pending:'),
        { intervalMs: 5, timeoutMs: 15_000, what: 'claim by the child' },
      );
      child.kill('SIGKILL');
      await exited;
      expect(await request).toBeInstanceOf(Error); // the client got no answer
      expect(await redis.get(key)).toMatch(/^pending:/); // the dead gateway's claim is still there

      await stack.start('kafka');
      const statuses: string[] = [];
      const ok = await waitFor(
        async () => {
          const r = await post(`${gw.url}/v1/events`, batch, { 'x-api-key': org.apiKey });
          if (r.body?.results) statuses.push(...r.body.results.map((x: any) => x.status));
          return r;
        },
        (r) => r.status === 200,
        { timeoutMs: 90_000, intervalMs: 500, what: 'retry accepted' },
      );
      expect(ok.body.results.map((x: any) => x.status)).toEqual(['accepted', 'accepted']);
      expect(statuses).not.toContain('duplicate');
      expect(statuses.filter((s) => s !== 'accepted').every((s) => s === 'retry')).toBe(true);

      const counts = await countsUpTo('crash-sentinel');
      expect(counts['crash-1']).toBe(1);
      expect(counts['crash-2']).toBe(1);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  }, 240_000);
});

describe('Redis down', () => {
  it('answers 503 while Redis is down; the dedup state survives the Redis restart', async () => {
    const auth = { 'x-api-key': org.apiKey };
    const r0 = await post(`${gw.url}/v1/events`, [ev('r-1')], auth);
    expect(r0.status).toBe(200);
    await stack.stop('redis');
    const t0 = Date.now();
    const down = await post(`${gw.url}/v1/events`, [ev('r-2')], auth);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('redis_unavailable');
    expect(down.headers.get('retry-after')).toBeTruthy();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(503);

    await stack.start('redis');
    const ok = await waitFor(
      () => post(`${gw.url}/v1/events`, [ev('r-1'), ev('k-1'), ev('r-2')], auth),
      (r) => r.status === 200,
      { timeoutMs: 60_000, intervalMs: 300, what: 'redis back' },
    );
    expect(ok.body.results.map((x: any) => x.status)).toEqual(['duplicate', 'duplicate', 'accepted']);
    const counts = await countsUpTo('r-sentinel');
    expect(counts['r-1']).toBe(1);
    expect(counts['r-2']).toBe(1);
  }, 180_000);
});
