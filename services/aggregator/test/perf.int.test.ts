// Measurements (printed, and kept in services/aggregator/README.md): catch-up throughput over a
// pre-filled topic, and freshness (event produced -> visible through queryUsage) under a steady stream.
// Asserts exact counts, so it also is a correctness test at volume.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUsage, type ClickHouseClient, type MetricDefinition, type PgPool, type UsageEvent } from '@meterline/core';
import type { Producer } from 'kafkajs';
import { startAggregator, type Aggregator } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { insertMetric, produceEvents, connectBackends, type TestBackends } from './helpers.ts';

const N = Number(process.env.AGG_PERF_EVENTS ?? 100_000);
const config = testConfig({
  KAFKA_EVENTS_TOPIC: uniqueId('t_perf_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_perf_dlq'),
  KAFKA_EVENTS_PARTITIONS: '6',
  AGGREGATOR_GROUP_ID: uniqueId('g_perf'),
  AGGREGATOR_PORT: '0',
});
let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let backends: TestBackends;
let agg: Aggregator | undefined;
let orgId: string;
let count: MetricDefinition;
let users: MetricDefinition;
const T0 = Date.now() - 3_600_000;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function total(m: MetricDefinition, customerId?: string): Promise<number> {
  const rows = await queryUsage(ch, {
    metric: m,
    from: new Date(T0 - 86_400_000),
    to: new Date(Date.now() + 86_400_000),
    ...(customerId ? { customerId } : {}),
  });
  return rows.reduce((a, r) => a + r.value, 0);
}

beforeAll(async () => {
  backends = await connectBackends(config);
  ({ pool, ch, producer } = backends);
  orgId = (await createTestOrganization(pool)).organizationId;
  count = await insertMetric(pool, {
    organizationId: orgId,
    metricId: 'n',
    eventName: 'e',
    aggregation: 'count',
    property: null,
    filters: [{ property: 'kind', operator: 'in', values: ['a', 'b'] }],
    groupBy: ['kind'],
  });
  users = await insertMetric(pool, {
    organizationId: orgId,
    metricId: 'u',
    eventName: 'e',
    aggregation: 'unique_count',
    property: 'user',
    filters: [],
    groupBy: [],
  });
}, 60_000);

afterAll(async () => {
  await agg?.stop();
  await backends?.close();
});

describe('throughput and freshness', () => {
  it('catches up on a pre-filled topic and reports events/s', async () => {
    const mk = (i: number): UsageEvent => ({
      organizationId: orgId,
      customerId: `c${i % 200}`,
      eventName: 'e',
      idempotencyId: `p${i}`,
      timeCreatedMs: T0 + (i % 3_000_000),
      receivedAtMs: Date.now(),
      properties: { kind: i % 2 ? 'a' : 'b', user: `u${i % 5000}`, path: '/v1/things', bytes: i % 4096 },
      source: 'api',
    });
    for (let i = 0; i < N; i += 5000)
      await produceEvents(
        producer,
        config.kafka.eventsTopic,
        Array.from({ length: Math.min(5000, N - i) }, (_, k) => mk(i + k)),
        5000,
      );
    const started = Date.now();
    agg = await startAggregator(config, { backfillSettleMs: 200 });
    await waitFor(
      () => total(count),
      (n) => n === N,
      { timeoutMs: 300_000, intervalMs: 250, what: `${N} events counted` },
    );
    const secs = (Date.now() - started) / 1000;
    expect(await total(users)).toBe(Math.min(N, 5000));
    console.log(
      `THROUGHPUT: ${N} events in ${secs.toFixed(1)} s = ${Math.round(N / secs)} events/s (catch-up from a pre-filled 6-partition topic, incl. start-up)`,
    );
  }, 400_000);

  it('measures freshness p50/p99 (produced -> visible in queryUsage) under a steady stream', async () => {
    let stop = false;
    let bg = 0;
    const background = (async () => {
      while (!stop) {
        const batch = Array.from(
          { length: 100 },
          (_, k): UsageEvent => ({
            organizationId: orgId,
            customerId: `bg${k % 50}`,
            eventName: 'e',
            idempotencyId: `bg${bg + k}`,
            timeCreatedMs: Date.now(),
            receivedAtMs: Date.now(),
            properties: { kind: 'a', user: 'x' },
            source: 'api',
          }),
        );
        bg += 100;
        await produceEvents(producer, config.kafka.eventsTopic, batch);
        await new Promise((r) => setTimeout(r, 50)); // ~1,500-2,000 events/s
      }
    })();
    const probes = 100;
    const sentAt = new Map<string, number>();
    const seenAt = new Map<string, number>();
    const poller = (async () => {
      while (seenAt.size < probes) {
        // minute-aligned range: answered from the rollups only (no raw-edge minutes), so this measures the aggregates
        const minute = Math.floor(Date.now() / 60_000) * 60_000;
        const rows = await queryUsage(ch, { metric: count, from: new Date(minute - 600_000), to: new Date(minute + 600_000) });
        const now = Date.now();
        for (const r of rows)
          if (r.customerId.startsWith('probe') && sentAt.has(r.customerId) && !seenAt.has(r.customerId)) seenAt.set(r.customerId, now);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    for (let p = 0; p < probes; p++) {
      const c = `probe${p}`;
      const now = Date.now();
      sentAt.set(c, now);
      await produceEvents(producer, config.kafka.eventsTopic, [
        {
          organizationId: orgId,
          customerId: c,
          eventName: 'e',
          idempotencyId: `probe${p}`,
          timeCreatedMs: now,
          receivedAtMs: now,
          properties: { kind: 'b', user: 'p' },
          source: 'api',
        },
      ]);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor(
      async () => seenAt.size,
      (n) => n === probes,
      { timeoutMs: 60_000, what: 'all probes visible' },
    );
    stop = true;
    await background;
    await poller;
    const lat = [...seenAt.entries()].map(([c, t]) => t - sentAt.get(c)!);
    console.log(
      `FRESHNESS: p50 ${pct(lat, 50)} ms, p99 ${pct(lat, 99)} ms, max ${Math.max(...lat)} ms over ${probes} probes, with ~${Math.round(bg / ((Date.now() - [...sentAt.values()][0]!) / 1000))} background events/s`,
    );
    expect(await total(count, 'probe7')).toBe(1);
  }, 120_000);
});
