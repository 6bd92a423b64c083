// Trickle (issue #18): events arriving one per chunk must not rewrite every key of their offset window.
// Each chunk rewrites only the keys it touched (rollup.ts windowSource), so N single-event chunks of N
// distinct customers write N metric_usage rows, not N(N+1)/2; totals stay exact, also after a second
// consumer group replays the whole topic in one chunk (the recompute is idempotent).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  metricVersionStatus,
  queryUsage,
  sqlString,
  type ClickHouseClient,
  type MetricDefinition,
  type PgPool,
  type UsageEvent,
} from '@meterline/core';
import type { Producer } from 'kafkajs';
import { startAggregator, type Aggregator } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { connectBackends, insertMetric, produceEvents, type TestBackends } from './helpers.ts';

const base = {
  KAFKA_EVENTS_TOPIC: uniqueId('t_trickle_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_trickle_dlq'),
  KAFKA_EVENTS_PARTITIONS: '1',
  AGGREGATOR_PORT: '0',
  AGGREGATOR_METRIC_POLL_MS: '200',
};
const config = testConfig({ ...base, AGGREGATOR_GROUP_ID: uniqueId('g_trickle') });
const N = 12;
const T0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
let backends: TestBackends;
let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let metric: MetricDefinition;
const running: Aggregator[] = [];

const event = (i: number): UsageEvent => ({
  organizationId: metric.organizationId,
  customerId: `c${i}`,
  eventName: 'call',
  idempotencyId: `trickle-${i}`,
  timeCreatedMs: T0 + 5_000 + i,
  receivedAtMs: Date.now(),
  properties: { n: i },
  source: 'api',
});
const total = async () =>
  (await queryUsage(ch, { metric, from: new Date(T0 - 60_000), to: new Date(T0 + 120_000) })).reduce((s, r) => s + Number(r.exact), 0);
/** When customer c<i>'s rollup row was last written (FINAL keeps the latest of equal versions). */
const writtenAt = async (i: number) => {
  const rs = await ch.query({
    query: `SELECT toUInt32(computed_at) AS t FROM metric_usage FINAL WHERE organization_id = ${sqlString(metric.organizationId)}
             AND metric_id = ${sqlString(metric.metricId)} AND customer_id = ${sqlString(`c${i}`)}`,
    format: 'JSONEachRow',
  });
  return Number((await rs.json<{ t: number }>())[0]?.t ?? 0);
};

beforeAll(async () => {
  backends = await connectBackends(config);
  ({ pool, ch, producer } = backends);
  const { organizationId } = await createTestOrganization(pool);
  metric = await insertMetric(pool, {
    organizationId,
    metricId: 'calls',
    eventName: 'call',
    aggregation: 'count',
    property: null,
    filters: [],
    groupBy: [],
  });
});

afterAll(async () => {
  for (const a of running) await a.stop().catch(() => undefined);
  await backends?.close();
});

describe('trickle', () => {
  it('a single-event chunk rewrites only its own key, not the whole window, and a replay stays exact', async () => {
    running.push(await startAggregator(config));
    // the new metric's backfill rewrites its keys once: let it finish first (it is not what is measured)
    await waitFor(
      () => metricVersionStatus(ch, metric),
      (s) => s === 'ready',
      { what: 'backfill of the metric' },
    );
    await produceEvents(producer, config.kafka.eventsTopic, [event(0)]);
    await waitFor(total, (t) => t === 1, { what: 'event 0 counted' });
    const first = await writtenAt(0);
    // the next chunks are written in a later second than c0's row (computed_at has second resolution)
    await waitFor(
      async () => Math.floor(Date.now() / 1000),
      (s) => s > first,
      { intervalMs: 50, what: 'the next second' },
    );
    for (let i = 1; i < N; i++) {
      await produceEvents(producer, config.kafka.eventsTopic, [event(i)]);
      // counted before the next is sent, so each event is its own chunk
      await waitFor(total, (t) => t === i + 1, { what: `event ${i} counted` });
    }
    // rewriting the whole window (before issue #18) rewrote c0's row with every later chunk
    expect(await writtenAt(N - 1)).toBeGreaterThan(first);
    expect(await writtenAt(0)).toBe(first);

    // a second group replays the whole topic in one chunk: every key recomputed (equal versions), same totals
    running.push(await startAggregator(testConfig({ ...base, AGGREGATOR_GROUP_ID: uniqueId('g_trickle_replay') })));
    await waitFor(
      () => writtenAt(0),
      (t) => t > first,
      { what: 'replay rolled up c0' },
    );
    expect(await total()).toBe(N);
  }, 90_000);
});
