// Broker restart (private Kafka on ports 19210/19211) while events stream: totals exact afterwards.
// The producer here retries failed sends, so Kafka may hold some records twice: the aggregator's
// idempotency claims must still count each id once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUsage, type ClickHouseClient, type Config, type MetricDefinition, type PgPool, type UsageEvent } from '@meterline/core';
import type { Producer } from 'kafkajs';
import { startAggregator, type Aggregator } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { PrivateStack } from '../../../test/support/private-stack.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { expectedUsage, insertMetric, produceEvents, rowsToMap, sorted, connectBackends, type TestBackends } from './helpers.ts';

const stack = new PrivateStack(19210);
let config: Config;
let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let backends: TestBackends;
let agg: Aggregator;
let orgId: string;
const metrics: MetricDefinition[] = [];
const events: UsageEvent[] = [];
const BASE = Date.now() - 86_400_000;

beforeAll(async () => {
  await stack.start('kafka');
  config = testConfig({
    KAFKA_BROKERS: stack.kafkaBrokers,
    KAFKA_EVENTS_TOPIC: uniqueId('t_kr_events'),
    KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_kr_dlq'),
    KAFKA_EVENTS_PARTITIONS: '3',
    AGGREGATOR_GROUP_ID: uniqueId('g_kr'),
    AGGREGATOR_PORT: '0',
    AGGREGATOR_WINDOW_SIZE: '100',
    AGGREGATOR_METRIC_POLL_MS: '200',
  });
  backends = await connectBackends(config, { retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2_000 } });
  ({ pool, ch, producer } = backends);
  orgId = (await createTestOrganization(pool)).organizationId;
  metrics.push(
    await insertMetric(pool, {
      organizationId: orgId,
      metricId: 'calls',
      eventName: 'call',
      aggregation: 'count',
      property: null,
      filters: [],
      groupBy: ['kind'],
    }),
    await insertMetric(pool, {
      organizationId: orgId,
      metricId: 'users',
      eventName: 'call',
      aggregation: 'unique_count',
      property: 'user',
      filters: [],
      groupBy: [],
    }),
  );
  agg = await startAggregator(config, { backfillSettleMs: 200 });
}, 240_000);

afterAll(async () => {
  await agg?.stop();
  await backends?.close();
  await stack.destroy();
}, 120_000);

async function totals() {
  const q = { from: new Date(BASE - 86_400_000), to: new Date(BASE + 10 * 86_400_000), window: 'hour' as const, includeGroups: true };
  const out = [];
  for (const m of metrics)
    out.push({ got: sorted(rowsToMap(await queryUsage(ch, { metric: m, ...q }), m, true)), want: sorted(expectedUsage(m, events, q)) });
  return out;
}

describe('broker restart', () => {
  it('leaves totals exact after the broker restarts mid-stream', async () => {
    let i = 0;
    let sendRetries = 0;
    const produceRound = async (n: number) => {
      const batch: UsageEvent[] = [];
      for (let k = 0; k < n; k++, i++)
        batch.push({
          organizationId: orgId,
          customerId: `c${i % 5}`,
          eventName: 'call',
          idempotencyId: `k${i}`,
          timeCreatedMs: BASE + i * 1000,
          receivedAtMs: Date.now(),
          properties: { kind: i % 2 ? 'a' : 'b', user: `u${i % 41}` },
          source: 'api',
        });
      events.push(...batch);
      for (;;) {
        try {
          await produceEvents(producer, config.kafka.eventsTopic, batch);
          return;
        } catch {
          sendRetries++;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
    for (let r = 0; r < 10; r++) await produceRound(100);
    await waitFor(totals, (t) => t.every((x) => JSON.stringify(x.got) === JSON.stringify(x.want)), {
      timeoutMs: 60_000,
      what: 'totals before restart',
    });
    const restart = stack.restart('kafka');
    // keep streaming through the restart
    const streaming = (async () => {
      for (let r = 0; r < 20; r++) {
        await produceRound(50);
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    await restart;
    await streaming;
    for (let r = 0; r < 5; r++) await produceRound(100);
    const t = await waitFor(totals, (x) => x.every((y) => JSON.stringify(y.got) === JSON.stringify(y.want)), {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: 'exact totals after broker restart',
    });
    expect(t[0]!.want.length).toBeGreaterThan(0);
    console.log(`broker restart: ${events.length} events, ${sendRetries} producer retries`);
  }, 300_000);
});
