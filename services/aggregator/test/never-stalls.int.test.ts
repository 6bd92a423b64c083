// No record can block a partition and no partition can block the others (issue: "the pipeline never
// stalls"), through the real Kafka, ClickHouse, Redis and Postgres. The file uses its own ClickHouse
// database, so it can make ClickHouse refuse data for real:
//  - `events.source` becomes FixedString(7): a record whose source is longer passes the decoder but
//    ClickHouse refuses its INSERT (Code 131, TOO_LARGE_STRING_SIZE) — a poison only ClickHouse sees;
//  - `DETACH TABLE events_by_offset` makes every raw INSERT fail (a table ClickHouse rejects): the
//    consumer stalls, and must say so through lag, the stall metric and /readyz.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKafka,
  encodeEvent,
  eventKey,
  metricVersionStatus,
  queryUsage,
  setupBackingServices,
  type ClickHouseClient,
  type MetricDefinition,
  type PgPool,
  type UsageEvent,
} from '@meterline/core';
import { Partitioners, type Consumer, type Producer } from 'kafkajs';
import { startAggregator, type Aggregator } from '../src/index.ts';
import { startGateway, type Gateway } from '../../gateway/src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { connectBackends, insertMetric, type TestBackends } from './helpers.ts';

const PARTITIONS = 6;
const config = testConfig({
  CLICKHOUSE_DATABASE: uniqueId('t_stall').toLowerCase(),
  KAFKA_EVENTS_TOPIC: uniqueId('t_stall_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_stall_dlq'),
  KAFKA_EVENTS_PARTITIONS: String(PARTITIONS),
  AGGREGATOR_GROUP_ID: uniqueId('g_stall'),
  AGGREGATOR_PORT: '0',
  GATEWAY_PORT: '0',
  AGGREGATOR_METRIC_POLL_MS: '200',
  AGGREGATOR_LAG_INTERVAL_MS: '500',
  AGGREGATOR_STALL_AFTER_MS: '3000',
  AGGREGATOR_MAX_RETRY_BACKOFF_MS: '1000',
});

let backends: TestBackends;
let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let agg: Aggregator;
let org: { organizationId: string; apiKey: string };
let calls: MetricDefinition;
let dlq: Consumer;
const deadLetters: { reason: string; error: string; offset: string; partition: number }[] = [];
let seq = 0;

function ev(customerId: string, extra: Partial<UsageEvent> = {}): UsageEvent {
  seq++;
  return {
    organizationId: org.organizationId,
    customerId,
    eventName: 'api_call',
    idempotencyId: `e-${seq}-${uniqueId('i')}`,
    timeCreatedMs: Date.now(),
    receivedAtMs: Date.now(),
    properties: { n: seq },
    source: 'api',
    ...extra,
  };
}

const partitionOf = (() => {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, i) => ({
    partitionId: i,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return (e: Pick<UsageEvent, 'organizationId' | 'customerId'>) =>
    partitioner({ topic: config.kafka.eventsTopic, partitionMetadata, message: { key: eventKey(e), value: null } });
})();

/** A customer id whose events the gateway's partitioner puts on `partition` (or off it, with `not`). */
function customerOn(partition: number, prefix: string, not = false): string {
  for (let i = 0; ; i++) {
    const c = `${prefix}-${i}`;
    if ((partitionOf({ organizationId: org.organizationId, customerId: c }) === partition) !== not) return c;
  }
}

async function usageOf(customerId: string | undefined, m = calls): Promise<number> {
  const rows = await queryUsage(ch, {
    metric: m,
    ...(customerId ? { customerId } : {}),
    from: new Date(Date.now() - 3_600_000),
    to: new Date(Date.now() + 3_600_000),
  });
  return rows.reduce((s, r) => s + r.value, 0);
}

async function committedEqualsEnd(): Promise<boolean> {
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(config.kafka.eventsTopic),
      admin.fetchOffsets({ groupId: config.aggregator.groupId, topics: [config.kafka.eventsTopic] }),
    ]);
    const c = new Map(committed[0]!.partitions.map((p) => [p.partition, p.offset]));
    return ends.every((e) => e.high === '0' || c.get(e.partition) === e.high);
  } finally {
    await admin.disconnect();
  }
}

beforeAll(async () => {
  await setupBackingServices(config);
  backends = await connectBackends(config);
  ({ pool, ch, producer } = backends);
  await ch.command({ query: 'ALTER TABLE events MODIFY COLUMN source FixedString(7)' });
  org = await createTestOrganization(pool);
  calls = await insertMetric(pool, {
    organizationId: org.organizationId,
    metricId: 'calls',
    eventName: 'api_call',
    aggregation: 'count',
    property: null,
    filters: [],
    groupBy: [],
  });
  agg = await startAggregator(config, { backfillSettleMs: 200 });
  dlq = createKafka(config.kafka).consumer({ groupId: uniqueId('g_dlq_reader') });
  await dlq.connect();
  await dlq.subscribe({ topic: config.kafka.deadLetterTopic, fromBeginning: true });
  await dlq.run({
    eachMessage: async ({ message }) => {
      const h = (k: string) => message.headers?.[k]?.toString() ?? '';
      deadLetters.push({ reason: h('reason'), error: h('error'), offset: h('source-offset'), partition: Number(h('source-partition')) });
    },
  });
});

afterAll(async () => {
  await dlq?.disconnect().catch(() => undefined);
  await agg?.stop();
  await ch?.command({ query: `DROP DATABASE IF EXISTS ${config.clickhouse.database}` }).catch(() => undefined);
  await backends?.close();
});

describe('poison records', () => {
  it('dead-letters a record ClickHouse refuses and one the decoder refuses within seconds; the rest of the chunk and partition is counted', async () => {
    const customer = customerOn(0, 'poison-chunk');
    const before = Array.from({ length: 40 }, () => ev(customer));
    const refusedByClickHouse = ev(customer, { source: 'poisoned-source' }); // 15 > FixedString(7)
    const refusedByDecoder = ev(customer, { properties: { note: 'lone \ud800 surrogate' } });
    const after = Array.from({ length: 40 }, () => ev(customer));
    const all = [...before, refusedByClickHouse, refusedByDecoder, ...after];
    const sentAt = Date.now();
    // one send: one batch, so the poison sits in the middle of one chunk of partition 0
    const [meta] = await producer.send({
      topic: config.kafka.eventsTopic,
      acks: -1,
      messages: all.map((e) => ({ key: eventKey(e), value: encodeEvent(e), partition: 0 })),
    });
    const base = BigInt(meta!.baseOffset!);

    await waitFor(
      async () => usageOf(customer),
      (n) => n === 80,
      { what: '80 good events counted', timeoutMs: 20_000 },
    );
    const mine = await waitFor(
      async () => deadLetters.filter((d) => d.partition === 0 && BigInt(d.offset) >= base && BigInt(d.offset) < base + BigInt(all.length)),
      (d) => d.length >= 2,
      { what: 'two dead letters', timeoutMs: 20_000 },
    );
    const elapsed = Date.now() - sentAt;
    console.log(`[never-stalls] poisoned chunk: 80 events counted and 2 poison records dead-lettered ${elapsed} ms after the send`);
    expect(elapsed).toBeLessThan(15_000);
    const byOffset = new Map(mine.map((d) => [d.offset, d]));
    const ch131 = byOffset.get((base + 40n).toString());
    expect(ch131?.reason).toBe('clickhouse_rejected');
    expect(ch131?.error).toMatch(/Code: 131/);
    const dec = byOffset.get((base + 41n).toString());
    expect(dec?.reason).toBe('invalid_event');
    expect(dec?.error).toMatch(/properties\.note: invalid_unicode/);
    // stored exactly once each, the poison not at all
    const rs = await ch.query({
      query: `SELECT count() AS c, uniqExact(idempotency_id) AS u, countIf(idempotency_id IN ('${refusedByClickHouse.idempotencyId}', '${refusedByDecoder.idempotencyId}')) AS p FROM events FINAL WHERE organization_id = '${org.organizationId}' AND customer_id = '${customer}'`,
      format: 'JSONEachRow',
    });
    expect((await rs.json<{ c: string; u: string; p: string }>())[0]).toEqual({ c: '80', u: '80', p: '0' });
    await waitFor(committedEqualsEnd, (ok) => ok, { what: 'every partition committed to its end' });
    const metrics = await (await agg.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/meterline_aggregator_dead_letters_total\{reason="clickhouse_rejected",attributed="yes"[^}]*\} [1-9]/);
  });

  it('chunks of several partitions share statements; a record ClickHouse refuses in one of them falls back, isolated in its own partition', async () => {
    const counter = async (step: string, outcome: string) => {
      const text = (await agg.app.inject({ method: 'GET', url: '/metrics' })).body;
      const m = text.match(new RegExp(`meterline_aggregator_shared_statements_total\\{step="${step}",outcome="${outcome}"[^}]*\\} (\\d+)`));
      return m ? Number(m[1]) : 0;
    };
    const customers = Array.from({ length: PARTITIONS }, (_, p) => customerOn(p, `shared-${p}`));
    // one send carrying every partition: the next fetch hands all of them to the consumer at once
    const sendRound = async (poison: boolean) => {
      const good = customers.flatMap((c) => Array.from({ length: 5 }, () => ev(c)));
      const bad = poison ? [ev(customers[3]!, { source: 'poisoned-source' })] : []; // 15 > FixedString(7)
      const all = [...good, ...bad];
      await producer.send({
        topic: config.kafka.eventsTopic,
        acks: -1,
        messages: all.map((e) => ({ key: eventKey(e), value: encodeEvent(e), partition: partitionOf(e) })),
      });
      return bad;
    };
    const expectCounted = (rounds: number) =>
      Promise.all(
        customers.map((c) =>
          waitFor(
            () => usageOf(c),
            (n) => n === 5 * rounds,
            { what: `${c}: ${5 * rounds} events`, timeoutMs: 20_000 },
          ),
        ),
      );

    // clean rounds until the raw INSERT was shared (one fetch may, rarely, split a send)
    const sharedBefore = await counter('raw', 'shared');
    let rounds = 0;
    while (rounds < 5) {
      await sendRound(false);
      rounds++;
      await expectCounted(rounds);
      if ((await counter('raw', 'shared')) > sharedBefore) break;
    }
    expect(await counter('raw', 'shared')).toBeGreaterThan(sharedBefore);
    expect(await counter('rollup', 'shared')).toBeGreaterThan(0);

    // the poison: the shared raw INSERT is refused, every chunk runs its own; partition 3 isolates it
    const fallbackBefore = await counter('raw', 'fallback');
    const [poison] = await sendRound(true);
    rounds++;
    await expectCounted(rounds);
    // the only record ClickHouse refuses on partition 3 in this file
    const dl = await waitFor(
      async () => deadLetters.filter((d) => d.partition === 3 && d.reason === 'clickhouse_rejected'),
      (d) => d.length >= 1,
      { what: 'the poison dead-lettered', timeoutMs: 20_000 },
    );
    expect(dl).toHaveLength(1);
    expect(dl[0]!.error).toMatch(/Code: 131/);
    const rs = await ch.query({
      query: `SELECT count() AS c, countIf(idempotency_id = '${poison!.idempotencyId}') AS p FROM events FINAL WHERE organization_id = '${org.organizationId}' AND customer_id IN (${customers.map((c) => `'${c}'`).join(', ')})`,
      format: 'JSONEachRow',
    });
    expect((await rs.json<{ c: string; p: string }>())[0]).toEqual({ c: String(5 * rounds * PARTITIONS), p: '0' });
    expect(await counter('raw', 'fallback')).toBeGreaterThan(fallbackBefore);
    await waitFor(committedEqualsEnd, (ok) => ok, { what: 'every partition committed to its end' });
  });

  it('marks a metric whose filter ClickHouse cannot parse invalid, once, with the reason; other metrics keep counting', async () => {
    const bad = await insertMetric(pool, {
      organizationId: org.organizationId,
      metricId: 'tiny',
      eventName: 'api_call',
      aggregation: 'count',
      property: null,
      filters: [{ property: 'n', operator: 'gt', value: 5e-324 }],
      groupBy: [],
    });
    const status = await waitFor(
      () => metricVersionStatus(ch, bad),
      (s) => s === 'invalid',
      { what: 'metric version invalid', timeoutMs: 15_000 },
    );
    expect(status).toBe('invalid');
    const rs = await ch.query({
      query: `SELECT error FROM metric_backfills FINAL WHERE organization_id = '${org.organizationId}' AND metric_id = 'tiny'`,
      format: 'JSONEachRow',
    });
    expect((await rs.json<{ error: string }>())[0]?.error).toMatch(/2\.2250738585072014e-308/);
    const customer = customerOn(1, 'after-bad-metric');
    await producer.send({
      topic: config.kafka.eventsTopic,
      acks: -1,
      messages: [ev(customer), ev(customer)].map((e) => ({ key: eventKey(e), value: encodeEvent(e) })),
    });
    await waitFor(
      () => usageOf(customer),
      (n) => n === 2,
      { what: 'good metric still counting' },
    );
    const metrics = (await agg.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/meterline_aggregator_invalid_metric_versions_total\{[^}]*\} [1-9]/);
    // once: the catalog re-reads changed rows for 30 s, but the version is marked a single time
    const marks = await ch.query({
      query: `SELECT count() AS c FROM metric_backfills WHERE organization_id = '${org.organizationId}' AND metric_id = 'tiny' AND status = 'invalid'`,
      format: 'JSONEachRow',
    });
    expect((await marks.json<{ c: string }>())[0]?.c).toBe('1');
  });
});

describe('honest health', () => {
  it('a table ClickHouse rejects stalls the consumer: lag is exact, the stall metric rises and /readyz names the partitions; all recovers exactly', async () => {
    await waitFor(committedEqualsEnd, (ok) => ok, { what: 'caught up before the outage' });
    expect((await agg.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    await ch.command({ query: 'DETACH TABLE events_by_offset' });
    let detached = true;
    try {
      const customers = [customerOn(2, 'stall-a'), customerOn(3, 'stall-b')];
      const events = customers.flatMap((c) => Array.from({ length: 25 }, () => ev(c)));
      await producer.send({
        topic: config.kafka.eventsTopic,
        acks: -1,
        messages: events.map((e) => ({ key: eventKey(e), value: encodeEvent(e) })),
      });
      const stalledAt = Date.now();
      const ready = await waitFor(
        async () => agg.app.inject({ method: 'GET', url: '/readyz' }),
        (r) => r.statusCode === 503,
        { what: '/readyz 503', timeoutMs: 15_000 },
      );
      const tookMs = Date.now() - stalledAt;
      console.log(
        `[never-stalls] /readyz turned 503 ${tookMs} ms after the stall began (AGGREGATOR_STALL_AFTER_MS=3000): ${JSON.stringify(ready.json().checks.consumer)}`,
      );
      expect(tookMs).toBeGreaterThanOrEqual(2_500);
      expect(tookMs).toBeLessThan(3_000 + 5_000);
      const consumerCheck = String(ready.json().checks.consumer);
      expect(consumerCheck).toContain(`${config.kafka.eventsTopic}[2] lag 25`);
      expect(consumerCheck).toContain(`${config.kafka.eventsTopic}[3] lag 25`);
      const text = (await agg.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(text).toMatch(
        new RegExp(`meterline_aggregator_partition_stalled\\{topic="${config.kafka.eventsTopic}",partition="2"[^}]*\\} 1`),
      );
      expect(text).toMatch(new RegExp(`meterline_aggregator_consumer_lag\\{topic="${config.kafka.eventsTopic}",partition="2"[^}]*\\} 25`));
      expect(text).toMatch(new RegExp(`meterline_aggregator_consumer_lag\\{topic="${config.kafka.eventsTopic}",partition="0"[^}]*\\} 0`));
      expect(text).toMatch(
        new RegExp(`meterline_aggregator_partition_stalled\\{topic="${config.kafka.eventsTopic}",partition="0"[^}]*\\} 0`),
      );

      await ch.command({ query: 'ATTACH TABLE events_by_offset' });
      detached = false;
      await waitFor(
        async () => (await usageOf(customers[0])) + (await usageOf(customers[1])),
        (n) => n === 50,
        { what: 'all 50 counted after recovery', timeoutMs: 20_000 },
      );
      await waitFor(
        async () => (await agg.app.inject({ method: 'GET', url: '/readyz' })).statusCode,
        (s) => s === 200,
        { what: '/readyz 200 again', timeoutMs: 15_000 },
      );
      const after = (await agg.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(after).toMatch(
        new RegExp(`meterline_aggregator_partition_stalled\\{topic="${config.kafka.eventsTopic}",partition="2"[^}]*\\} 0`),
      );
    } finally {
      if (detached) await ch.command({ query: 'ATTACH TABLE events_by_offset' }).catch(() => undefined);
    }
  });
});

/** Open-loop probes (fixed send times) through the gateway; ms from its 200 to visible in the aggregates. */
async function probeFreshness(
  gw: Gateway,
  label: string,
  count: number,
  rateHz: number,
): Promise<{ p50: number; p99: number; max: number }> {
  const latencies: number[] = [];
  const pending = new Map<string, number>(); // probe customer -> when the gateway answered 200
  let posting = true;
  // one poller for all probes (one usage query per round, as a dashboard would), not one per probe
  const poller = (async () => {
    const deadline = Date.now() + 60_000;
    while ((posting || pending.size > 0) && Date.now() < deadline) {
      if (pending.size > 0) {
        const rows = await queryUsage(ch, { metric: calls, from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 3_600_000) });
        const now = Date.now();
        for (const r of rows) {
          const acked = pending.get(r.customerId);
          if (acked !== undefined && r.value >= 1) {
            latencies.push(now - acked);
            pending.delete(r.customerId);
          }
        }
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const start = Date.now();
  const posts: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    await new Promise((r) => setTimeout(r, Math.max(0, start + (i * 1000) / rateHz - Date.now())));
    const customer = customerOn(0, `${label}-probe-${i}`, true);
    posts.push(
      (async () => {
        const res = await fetch(`${gw.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
          body: JSON.stringify({ event_name: 'api_call', customer_id: customer }),
        });
        expect(res.status).toBe(200);
        pending.set(customer, Date.now());
      })(),
    );
  }
  await Promise.all(posts);
  posting = false;
  await poller;
  expect(pending.size, `probes never visible: ${[...pending.keys()].join(', ')}`).toBe(0);
  latencies.sort((a, b) => a - b);
  const q = (x: number) => latencies[Math.min(latencies.length - 1, Math.ceil(x * latencies.length) - 1)]!;
  return { p50: q(0.5), p99: q(0.99), max: latencies.at(-1)! };
}

describe('a poisoned partition does not slow the others', () => {
  it('keeps freshness (gateway 200 -> visible in the aggregates) of the other partitions while partition 0 is poisoned', async () => {
    const gw: Gateway = await startGateway(config, { pg: pool });
    const poisonCustomer = customerOn(0, 'poison-stream');
    let poisonSent = 0;
    try {
      const baseline = await probeFreshness(gw, 'baseline', 40, 10);
      let poisoning = true;
      const poisoner = (async () => {
        while (poisoning) {
          // each batch: 20 good records and one ClickHouse refuses (isolated), all on partition 0
          const batch = [...Array.from({ length: 20 }, () => ev(poisonCustomer)), ev(poisonCustomer, { source: 'poisoned-source' })];
          await producer.send({
            topic: config.kafka.eventsTopic,
            acks: -1,
            messages: batch.map((e) => ({ key: eventKey(e), value: encodeEvent(e), partition: 0 })),
          });
          poisonSent++;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      let poisoned: Awaited<ReturnType<typeof probeFreshness>>;
      try {
        poisoned = await probeFreshness(gw, 'poisoned', 60, 10);
      } finally {
        poisoning = false;
        await poisoner;
      }
      console.log(
        `[never-stalls] freshness of healthy partitions, 10 probes/s open loop: baseline p50 ${baseline.p50} ms / p99 ${baseline.p99} ms; ` +
          `while partition 0 is poisoned (${poisonSent} batches of 20 good + 1 refused record, ~10/s): p50 ${poisoned.p50} ms / p99 ${poisoned.p99} ms / max ${poisoned.max} ms`,
      );
      expect(poisonSent).toBeGreaterThan(20);
      // the budget (AGGREGATOR_BATCH_BUDGET_MS, 500 ms) bounds how long partition 0 holds a fetch round
      expect(poisoned.p99).toBeLessThan(baseline.p99 + 2_500);
    } finally {
      await gw.stop();
    }
    // the poisoned partition kept moving too: every good record of it is counted, every poison dead-lettered
    await waitFor(
      () => usageOf(poisonCustomer),
      (n) => n === poisonSent * 20,
      { what: 'all good records of the poisoned partition', timeoutMs: 60_000 },
    );
  });
});
