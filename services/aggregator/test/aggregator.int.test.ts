// Core path through real Kafka, ClickHouse, Redis and Postgres: every aggregation type with filters and
// group-by over arbitrary ranges, gateway-slipped duplicates, dead letters, backfill of a metric
// defined after its events, a changed filter, and the events debugger API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKafka,
  metricVersionStatus,
  queryUsage,
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
import {
  expectedUsage,
  insertMetric,
  produceEvents,
  rowsToMap,
  sorted,
  type ExpectedQuery,
  connectBackends,
  type TestBackends,
} from './helpers.ts';

const config = testConfig({
  KAFKA_EVENTS_TOPIC: uniqueId('t_agg_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_agg_dlq'),
  KAFKA_EVENTS_PARTITIONS: '3',
  AGGREGATOR_GROUP_ID: uniqueId('g_agg'),
  AGGREGATOR_PORT: '0',
  AGGREGATOR_WINDOW_SIZE: '40',
  AGGREGATOR_METRIC_POLL_MS: '200',
});

const DAY = 86_400_000;
const BASE = Math.floor((Date.now() - 5 * DAY) / DAY) * DAY; // midnight UTC five days ago

let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let backends: TestBackends;
let agg: Aggregator;
let org: { organizationId: string; apiKey: string };
let other: { organizationId: string; apiKey: string };
const events: UsageEvent[] = [];
const metrics: Record<string, MetricDefinition> = {};

function ev(i: number, name: string, customer: string, tMs: number, properties: UsageEvent['properties'], id = `${name}-${i}`): UsageEvent {
  return {
    organizationId: org.organizationId,
    customerId: customer,
    eventName: name,
    idempotencyId: id,
    timeCreatedMs: tMs,
    receivedAtMs: Date.now(),
    properties,
    source: 'api',
  };
}

/** Deterministic pseudo-random numbers. */
function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
}

beforeAll(async () => {
  backends = await connectBackends(config);
  ({ pool, ch, producer } = backends);
  org = await createTestOrganization(pool);
  other = await createTestOrganization(pool);
  const o = org.organizationId;
  metrics.calls = await insertMetric(pool, {
    organizationId: o,
    metricId: 'api_calls',
    eventName: 'api_call',
    aggregation: 'count',
    property: null,
    filters: [
      { property: 'region', operator: 'in', values: ['eu', 'us'] },
      { property: 'status', operator: 'lt', value: 500 },
    ],
    groupBy: ['region', 'method'],
  });
  metrics.tokens = await insertMetric(pool, {
    organizationId: o,
    metricId: 'tokens',
    eventName: 'llm',
    aggregation: 'sum',
    property: 'tokens',
    filters: [{ property: 'model', operator: 'not_in', values: ['free'] }],
    groupBy: ['model'],
  });
  metrics.memory = await insertMetric(pool, {
    organizationId: o,
    metricId: 'peak_memory',
    eventName: 'job',
    aggregation: 'max',
    property: 'memory_mb',
    filters: [{ property: 'state', operator: 'equals', value: 'ok' }],
    groupBy: [],
  });
  metrics.users = await insertMetric(pool, {
    organizationId: o,
    metricId: 'active_users',
    eventName: 'login',
    aggregation: 'unique_count',
    property: 'user_id',
    filters: [{ property: 'admin', operator: 'not_in', values: ['true'] }],
    groupBy: ['plan'],
  });
  metrics.seats = await insertMetric(pool, {
    organizationId: o,
    metricId: 'seats',
    eventName: 'seats',
    aggregation: 'latest',
    property: 'seats',
    filters: [],
    groupBy: [],
  });
  agg = await startAggregator(config, { backfillSettleMs: 300 });

  const r = rng(42);
  const customers = ['c1', 'c2', 'c3', 'c4'];
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  let t = BASE;
  for (let i = 0; i < 1200; i++) {
    t += Math.floor(r() * 600_000) + 1; // strictly increasing times, spread over ~4 days
    const c = pick(customers);
    const kind = i % 5;
    if (kind === 0)
      events.push(
        ev(i, 'api_call', c, t, {
          region: pick(['eu', 'us', 'ap']),
          method: pick(['GET', 'POST']),
          status: pick([200, 201, 404, 500, 503]),
        }),
      );
    else if (kind === 1)
      events.push(
        ev(
          i,
          'llm',
          c,
          t,
          r() < 0.1 ? { model: pick(['big', 'small']) } : { model: pick(['big', 'small', 'free']), tokens: Math.floor(r() * 1000) },
        ),
      );
    else if (kind === 2)
      events.push(
        ev(i, 'job', c, t, {
          state: pick(['ok', 'failed']),
          memory_mb: r() < 0.2 ? String(Math.floor(r() * 9000)) : Math.floor(r() * 8000),
        }),
      );
    else if (kind === 3)
      events.push(ev(i, 'login', c, t, { user_id: `u${Math.floor(r() * 30)}`, plan: pick(['free', 'pro']), admin: r() < 0.1 }));
    else events.push(ev(i, 'seats', c, t, { seats: Math.floor(r() * 50) }));
  }
  // duplicates that slipped past the gateway: same idempotency id again, other content
  const dups = events
    .slice(0, 60)
    .filter((_, i) => i % 4 === 0)
    .map((e) => ({ ...e, properties: { ...e.properties, tokens: 99999, seats: 77 }, timeCreatedMs: e.timeCreatedMs + 1 }));
  await produceEvents(producer, config.kafka.eventsTopic, events.slice(0, 600));
  // a malformed record and an invalid (attributable) event in the middle of the stream, then more
  await producer.send({
    topic: config.kafka.eventsTopic,
    messages: [
      { key: `${org.organizationId}/c1`, value: Buffer.from('definitely not avro') },
      {
        key: `${org.organizationId}/c1`,
        value: (await import('@meterline/core')).encodeEvent({ ...events[0]!, customerId: '', idempotencyId: 'invalid-1' }),
      },
    ],
  });
  await produceEvents(producer, config.kafka.eventsTopic, [...dups, ...events.slice(600)]);
}, 120_000);

afterAll(async () => {
  await agg?.stop();
  await backends?.close();
});

async function check(m: MetricDefinition, q: ExpectedQuery) {
  const rows = await queryUsage(ch, { metric: m, ...q });
  return { got: sorted(rowsToMap(rows, m, q.includeGroups)), want: sorted(expectedUsage(m, events, q)) };
}

describe('aggregator core path', () => {
  it('counts every event exactly once into all metric types, over arbitrary ranges, windows and groups', async () => {
    const whole: ExpectedQuery = { from: new Date(BASE - DAY), to: new Date(BASE + 10 * DAY) };
    await waitFor(
      async () => await Promise.all(Object.values(metrics).map((m) => check(m, whole))),
      (rs) => rs.every((r) => JSON.stringify(r.got) === JSON.stringify(r.want)),
      { timeoutMs: 60_000, what: 'totals over the whole range' },
    );
    const ranges: ExpectedQuery[] = [
      whole,
      { from: new Date(BASE + DAY + 7 * 60_000 + 1234), to: new Date(BASE + 3 * DAY - 13 * 60_000 + 1) },
      { from: new Date(BASE + 2 * DAY), to: new Date(BASE + 2 * DAY + 3_600_000) },
      // within one minute, and across two partial minutes only (raw edges, no whole minute)
      ...events
        .filter((e) => e.eventName === 'login' || e.eventName === 'seats')
        .slice(100, 104)
        .map((e) => ({ from: new Date(e.timeCreatedMs - 1), to: new Date(e.timeCreatedMs + 1) })),
      { from: new Date(events[700]!.timeCreatedMs - 30_000), to: new Date(events[700]!.timeCreatedMs + 45_000) },
    ];
    let nonEmpty = 0;
    for (const m of Object.values(metrics)) {
      for (const range of ranges) {
        for (const window of [null, 'day', 'hour', 'minute'] as const) {
          for (const includeGroups of [false, true]) {
            for (const customerId of [undefined, 'c2']) {
              const q = { ...range, window, includeGroups, ...(customerId ? { customerId } : {}) };
              const { got, want } = await check(m, q);
              expect(got, `${m.metricId} ${JSON.stringify(q)}`).toEqual(want);
              if (want.length) nonEmpty++;
            }
          }
        }
      }
    }
    expect(nonEmpty).toBeGreaterThan(100);
    // sanity: the distinct semantics are really exercised
    const users = expectedUsage(metrics.users!, events, whole);
    const perDay = expectedUsage(metrics.users!, events, { ...whole, window: 'day' });
    const sumPerDay = [...perDay.values()].reduce((a, b) => a + b, 0);
    expect(sumPerDay).toBeGreaterThan([...users.values()].reduce((a, b) => a + b, 0));
  });

  it('dead-letters malformed and invalid records with the reason and keeps processing', async () => {
    const kafka = createKafka(config.kafka);
    const consumer = kafka.consumer({ groupId: uniqueId('g_dlq_reader') });
    await consumer.connect();
    await consumer.subscribe({ topic: config.kafka.deadLetterTopic, fromBeginning: true });
    const seen: Record<string, string>[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])));
      },
    });
    await waitFor(
      async () => seen.length,
      (n) => n >= 2,
      { what: 'two dead letters' },
    );
    await consumer.disconnect();
    expect(seen.map((h) => h.reason).sort()).toEqual(['bad_magic', 'invalid_event']);
    expect(seen.every((h) => h['source-topic'] === config.kafka.eventsTopic && /^\d+$/.test(h['source-offset']!))).toBe(true);
    // the debugger lists the attributable one for its organization only
    const res = await agg.app.inject({ method: 'GET', url: '/v1/debug/dead-letters', headers: { 'x-api-key': org.apiKey } });
    expect(res.statusCode).toBe(200);
    const dl = res.json().dead_letters as { reason: string; idempotency_id: string }[];
    expect(dl.map((d) => [d.reason, d.idempotency_id])).toEqual([['invalid_event', 'invalid-1']]);
    const res2 = await agg.app.inject({ method: 'GET', url: '/v1/debug/dead-letters', headers: { 'x-api-key': other.apiKey } });
    expect(res2.json().dead_letters).toEqual([]);
  });

  it('serves the events debugger: by customer, event name, time range, newest first, scoped to the organization', async () => {
    const unauth = await agg.app.inject({ method: 'GET', url: '/v1/debug/events' });
    expect(unauth.statusCode).toBe(401);
    const from = BASE + DAY,
      to = BASE + 2 * DAY;
    const res = await agg.app.inject({
      method: 'GET',
      url: `/v1/debug/events?customer_id=c3&event_name=llm&from=${new Date(from).toISOString()}&to=${to}&limit=1000`,
      headers: { authorization: `Bearer ${org.apiKey}` },
    });
    expect(res.statusCode).toBe(200);
    const got = res.json().events as { idempotency_id: string; time_created: string; properties: Record<string, unknown> }[];
    const want = events
      .filter((e) => e.customerId === 'c3' && e.eventName === 'llm' && e.timeCreatedMs >= from && e.timeCreatedMs < to)
      .sort((a, b) => b.timeCreatedMs - a.timeCreatedMs);
    expect(got.map((e) => e.idempotency_id)).toEqual(want.map((e) => e.idempotencyId));
    expect(got[0]!.properties).toEqual(want[0]!.properties); // the original, not the duplicate
    const limited = await agg.app.inject({ method: 'GET', url: '/v1/debug/events?limit=5', headers: { 'x-api-key': org.apiKey } });
    expect(limited.json().events).toHaveLength(5);
    const foreign = await agg.app.inject({ method: 'GET', url: '/v1/debug/events', headers: { 'x-api-key': other.apiKey } });
    expect(foreign.json().events).toEqual([]);
    const bad = await agg.app.inject({ method: 'GET', url: '/v1/debug/events?from=yesterday', headers: { 'x-api-key': org.apiKey } });
    expect(bad.statusCode).toBe(400);
  });

  it('backfills a metric defined after its events arrived, and recomputes a changed filter', async () => {
    const whole: ExpectedQuery = { from: new Date(BASE - DAY), to: new Date(BASE + 10 * DAY), window: 'day', includeGroups: true };
    const late = await insertMetric(pool, {
      organizationId: org.organizationId,
      metricId: 'late_tokens',
      eventName: 'llm',
      aggregation: 'sum',
      property: 'tokens',
      filters: [{ property: 'model', operator: 'equals', value: 'big' }],
      groupBy: ['model'],
    });
    await waitFor(
      () => metricVersionStatus(ch, late),
      (s) => s === 'ready',
      { timeoutMs: 30_000, what: 'backfill of late_tokens v1' },
    );
    const r1 = await check(late, whole);
    expect(r1.want.length).toBeGreaterThan(3);
    expect(r1.got).toEqual(r1.want);
    // change the filter: version 2 recomputes from the raw events; version 1 stays as it was
    const v2 = await insertMetric(pool, {
      ...late,
      version: 2,
      filters: [
        { property: 'model', operator: 'in', values: ['big', 'small'] },
        { property: 'tokens', operator: 'gte', value: 500 },
      ],
    });
    await waitFor(
      () => metricVersionStatus(ch, v2),
      (s) => s === 'ready',
      { timeoutMs: 30_000, what: 'backfill of late_tokens v2' },
    );
    const r2 = await check(v2, whole);
    expect(r2.got).toEqual(r2.want);
    expect(r2.want).not.toEqual(r1.want);
    expect((await check(late, whole)).got).toEqual(r1.want);
    // new events after the change count into v2 live
    const extra = [ev(5000, 'llm', 'c1', BASE + 4 * DAY + 1000, { model: 'small', tokens: 900 }, 'late-extra-1')];
    events.push(...extra);
    await produceEvents(producer, config.kafka.eventsTopic, extra);
    await waitFor(
      () => check(v2, whole),
      (r) => JSON.stringify(r.got) === JSON.stringify(r.want),
      { what: 'v2 live' },
    );
  });

  it('serves readiness and telemetry', async () => {
    const ready = await agg.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    const text = (await agg.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/meterline_aggregator_dead_letters_total\{reason="bad_magic",attributed="no"/);
    expect(text).toMatch(/meterline_aggregator_duplicates_total\{[^}]*\} 15/);
    expect(text).toMatch(/meterline_aggregator_event_freshness_seconds_count\{[^}]*\} [1-9]/);
    expect(text).toMatch(/meterline_aggregator_consumer_lag\{/);
  });
});
