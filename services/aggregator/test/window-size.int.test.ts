// One window size per topic (README "One window size per topic"): rollup rows keyed by offset windows of
// two sizes over the same topic would add up. (1) An aggregator restarted with another
// AGGREGATOR_WINDOW_SIZE on the same topic refuses to start. (2) An aggregator of ANOTHER topic with
// another size backfills a new metric over this topic's events with this topic's recorded size, so
// its rows replace the live rows instead of adding to them: totals equal the events sent, exactly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricVersionStatus, queryUsage, sqlString, type ClickHouseClient, type PgPool, type UsageEvent } from '@meterline/core';
import type { Producer } from 'kafkajs';
import { startAggregator, type Aggregator } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { connectBackends, insertMetric, produceEvents, type TestBackends } from './helpers.ts';

const topic = uniqueId('t_wsize_events');
const base = {
  KAFKA_EVENTS_TOPIC: topic,
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_wsize_dlq'),
  KAFKA_EVENTS_PARTITIONS: '2',
  AGGREGATOR_GROUP_ID: uniqueId('g_wsize'),
  AGGREGATOR_PORT: '0',
  AGGREGATOR_METRIC_POLL_MS: '200',
};
const small = testConfig({ ...base, AGGREGATOR_WINDOW_SIZE: '40' });
const large = testConfig({ ...base, AGGREGATOR_WINDOW_SIZE: '300' });
// another topic (and group) of the same ClickHouse database, with the larger size
const otherTopic = testConfig({
  ...base,
  KAFKA_EVENTS_TOPIC: uniqueId('t_wsize_other'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_wsize_other_dlq'),
  AGGREGATOR_GROUP_ID: uniqueId('g_wsize_other'),
  AGGREGATOR_WINDOW_SIZE: '300',
});

const T0 = Math.floor((Date.now() - 2 * 86_400_000) / 60_000) * 60_000;
let backends: TestBackends;
let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let orgId: string;
const running: Aggregator[] = [];

const events = (from: number, n: number): UsageEvent[] =>
  Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      organizationId: orgId,
      customerId: `c${i % 3}`,
      eventName: 'call',
      idempotencyId: `call-${i}`,
      timeCreatedMs: T0 + (i % 10) * 60_000 + 17,
      receivedAtMs: Date.now(),
      properties: { n: 1 },
      source: 'api',
    };
  });
const metric = (metricId: string) =>
  insertMetric(pool, {
    organizationId: orgId,
    metricId,
    eventName: 'call',
    aggregation: 'count',
    property: null,
    filters: [],
    groupBy: [],
  });
/** Σ over customers of queryUsage (metric_usage FINAL; whole minutes, so rollups only). */
const total = async (m: Awaited<ReturnType<typeof metric>>) =>
  (await queryUsage(ch, { metric: m, from: new Date(T0 - 3_600_000), to: new Date(T0 + 3_600_000) })).reduce(
    (s, r) => s + Number(r.exact),
    0,
  );
const start = async (config: typeof small) => {
  const agg = await startAggregator(config, { backfillSettleMs: 300 });
  running.push(agg);
  return agg;
};

beforeAll(async () => {
  backends = await connectBackends(small);
  ({ pool, ch, producer } = backends);
  orgId = (await createTestOrganization(pool)).organizationId;
});

afterAll(async () => {
  for (const a of running) await a.stop().catch(() => undefined);
  await backends?.close();
});

describe('one window size per topic', () => {
  it('a restart with another size refuses; another topic’s backfill uses this topic’s size: no double count', async () => {
    const live = await metric('calls');
    const a = await start(small);
    expect(await a.windows.forTopic(topic)).toBe(40);
    await produceEvents(producer, topic, events(0, 200));
    await waitFor(
      () => total(live),
      (t) => t === 200,
      { timeoutMs: 30_000, what: '200 events counted live' },
    );
    await a.stop();

    // (1) the same topic with W = 300: refused with the documented error, nothing consumed
    await expect(startAggregator(large)).rejects.toThrow(
      /AGGREGATOR_WINDOW_SIZE=300 but topic "t_wsize_events[^"]*" is aggregated with window size 40/,
    );

    // (2) a metric defined after the events, backfilled by an aggregator of another topic with W = 300
    const late = await metric('late_calls');
    await start(otherTopic);
    await waitFor(
      () => metricVersionStatus(ch, late),
      (s) => s === 'ready',
      { timeoutMs: 30_000, what: 'backfill of late_calls' },
    );
    expect(await total(late)).toBe(200);
    // the backfill's windows are this topic's (W = 40): offsets 0..~100 per partition → several windows
    const rs = await ch.query({
      query: `SELECT max(window_id) AS w FROM metric_usage FINAL WHERE organization_id = ${sqlString(orgId)} AND metric_id = 'late_calls'`,
      format: 'JSONEachRow',
    });
    expect(Number((await rs.json<{ w: string }>())[0]?.w)).toBeGreaterThanOrEqual(2);

    // the live path recomputes this topic's newest windows with W = 40 over the backfill's rows
    await start(small);
    await produceEvents(producer, topic, events(200, 30));
    await waitFor(
      () => total(live),
      (t) => t === 230,
      { timeoutMs: 30_000, what: '230 events counted live' },
    );
    await waitFor(
      () => total(late),
      (t) => t >= 230,
      { timeoutMs: 30_000, what: 'late_calls live' },
    );
    expect(await total(late)).toBe(230);
    const view = await ch.query({
      query: `SELECT sum(event_count) AS n FROM metric_usage_v WHERE organization_id = ${sqlString(orgId)} AND metric_id = 'late_calls'`,
      format: 'JSONEachRow',
    });
    expect(Number((await view.json<{ n: string }>())[0]?.n)).toBe(230);
  });
});
