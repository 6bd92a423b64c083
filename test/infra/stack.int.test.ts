// infra/local/stack.sh is idempotent: starting twice is fine, and it starts again after a stop.
// Runs on a private instance (own ports and data dir) so the shared stack is untouched.
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createClickHouse, createKafka } from '@meterline/core';
import { PrivateStack } from '../support/private-stack.ts';

const stack = new PrivateStack(19500);

async function kafkaAnswers(): Promise<number> {
  const admin = createKafka({
    brokers: [stack.kafkaBrokers],
    clientId: 'stack-test',
    eventsTopic: 'x',
    deadLetterTopic: 'y',
    eventsPartitions: 1,
  }).admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).brokers.length;
  } finally {
    await admin.disconnect();
  }
}

async function clickhouseVersion(): Promise<string> {
  const ch = createClickHouse({ url: stack.clickhouseUrl, username: 'default', password: '', database: 'default' });
  try {
    return (await (await ch.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json<{ v: string }>())[0]!.v;
  } finally {
    await ch.close();
  }
}

describe('local stack script', () => {
  afterAll(() => stack.destroy());

  it('starts each service, tolerates a second start, and starts again after a stop', async () => {
    for (const c of ['redis', 'clickhouse', 'kafka'] as const) {
      await stack.start(c);
      await stack.start(c); // second `up`: no error, same instance
    }
    expect(await kafkaAnswers()).toBe(1);
    expect(await clickhouseVersion()).toMatch(/^\d+\.\d+/);

    const redis = new Redis(stack.redisUrl);
    await redis.set('persisted', 'yes');
    await redis.quit();

    for (const c of ['kafka', 'clickhouse', 'redis'] as const) await stack.stop(c);
    await expect(kafkaAnswers()).rejects.toThrow();

    for (const c of ['redis', 'clickhouse', 'kafka'] as const) await stack.start(c);
    expect(await kafkaAnswers()).toBe(1);
    expect(await clickhouseVersion()).toMatch(/^\d+\.\d+/);
    const again = new Redis(stack.redisUrl);
    expect(await again.get('persisted')).toBe('yes'); // the stack's Redis keeps data across restarts (AOF)
    await again.quit();
  });
});
