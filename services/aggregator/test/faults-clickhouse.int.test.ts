// ClickHouse outage (private ClickHouse on ports 19222/19223): the aggregator pauses and retries with
// backoff, loses and skips nothing, catches up when ClickHouse returns; totals exact afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  queryUsage,
  setupBackingServices,
  type ClickHouseClient,
  type Config,
  type MetricDefinition,
  type PgPool,
  type UsageEvent,
} from '@meterline/core';
import type { Producer } from 'kafkajs';
import { startAggregator, type Aggregator } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { PrivateStack } from '../../../test/support/private-stack.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { expectedUsage, insertMetric, produceEvents, rowsToMap, sorted, connectBackends, type TestBackends } from './helpers.ts';

const stack = new PrivateStack(19220);
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
  await stack.start('clickhouse');
  config = testConfig({
    CLICKHOUSE_URL: stack.clickhouseUrl,
    KAFKA_EVENTS_TOPIC: uniqueId('t_chd_events'),
    KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_chd_dlq'),
    KAFKA_EVENTS_PARTITIONS: '3',
    AGGREGATOR_GROUP_ID: uniqueId('g_chd'),
    AGGREGATOR_PORT: '0',
    AGGREGATOR_WINDOW_SIZE: '100',
    AGGREGATOR_METRIC_POLL_MS: '200',
    AGGREGATOR_MAX_RETRY_BACKOFF_MS: '1000',
  });
  await setupBackingServices(config);
  backends = await connectBackends(config);
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
      groupBy: [],
    }),
    await insertMetric(pool, {
      organizationId: orgId,
      metricId: 'amount',
      eventName: 'call',
      aggregation: 'sum',
      property: 'amount',
      filters: [{ property: 'amount', operator: 'gt', value: 3 }],
      groupBy: ['kind'],
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
  const q = { from: new Date(BASE - 86_400_000), to: new Date(BASE + 10 * 86_400_000), window: 'day' as const, includeGroups: true };
  const out = [];
  for (const m of metrics)
    out.push({ got: sorted(rowsToMap(await queryUsage(ch, { metric: m, ...q }), m, true)), want: sorted(expectedUsage(m, events, q)) });
  return out;
}
const exact = (t: Awaited<ReturnType<typeof totals>>) => t.every((x) => JSON.stringify(x.got) === JSON.stringify(x.want));

describe('ClickHouse outage', () => {
  it('pauses while ClickHouse is down, then catches up with exact totals', async () => {
    let i = 0;
    const round = async (n: number) => {
      const batch: UsageEvent[] = [];
      for (let k = 0; k < n; k++, i++)
        batch.push({
          organizationId: orgId,
          customerId: `c${i % 4}`,
          eventName: 'call',
          idempotencyId: `h${i}`,
          timeCreatedMs: BASE + i * 500,
          receivedAtMs: Date.now(),
          properties: { kind: i % 3 ? 'x' : 'y', amount: i % 10 },
          source: 'api',
        });
      events.push(...batch);
      await produceEvents(producer, config.kafka.eventsTopic, batch);
    };
    for (let r = 0; r < 5; r++) await round(200);
    await waitFor(totals, exact, { timeoutMs: 60_000, what: 'totals before the outage' });
    await stack.stop('clickhouse');
    const downAt = Date.now();
    for (let r = 0; r < 10; r++) {
      await round(100);
      await new Promise((res) => setTimeout(res, 300));
    }
    // the aggregator is retrying, not skipping: retries counted, not ready
    const metricsText = (await agg.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metricsText).toMatch(/meterline_aggregator_retries_total\{[^}]*stage="(progress|raw_insert|rollup|claims)"[^}]*\} [1-9]/);
    expect((await agg.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    await waitFor(
      async () => Date.now() - downAt,
      (ms) => ms > 10_000,
      { timeoutMs: 20_000 },
    );
    await stack.start('clickhouse');
    for (let r = 0; r < 3; r++) await round(100);
    const t = await waitFor(totals, exact, { timeoutMs: 120_000, intervalMs: 500, what: 'exact totals after ClickHouse returned' });
    expect(t[0]!.want.length).toBeGreaterThan(0);
  }, 300_000);
});
