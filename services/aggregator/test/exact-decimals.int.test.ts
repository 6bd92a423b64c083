// Issue #17 item 4: sums and maxima of numeric properties are exact decimals (Decimal(38, 12)) through
// Kafka -> aggregator -> ClickHouse rollups -> queryUsage, on the live path, the backfill path and the
// raw partial-minute edges. Expected values are computed here with decimal.js, never by the code under test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decimal as D } from 'decimal.js';
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
import { recomputeFromEvents } from '../src/backfill.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { connectBackends, insertMetric, produceEvents, type TestBackends } from './helpers.ts';

const X = D.clone({ precision: 200 });
const config = testConfig({
  KAFKA_EVENTS_TOPIC: uniqueId('t_exact_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_exact_dlq'),
  KAFKA_EVENTS_PARTITIONS: '2',
  AGGREGATOR_GROUP_ID: uniqueId('g_exact'),
  AGGREGATOR_PORT: '0',
  AGGREGATOR_WINDOW_SIZE: '50',
  AGGREGATOR_METRIC_POLL_MS: '200',
});

let backends: TestBackends;
let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let agg: Aggregator;
let orgId: string;
const T0 = Math.floor((Date.now() - 2 * 86_400_000) / 60_000) * 60_000;

const ev = (i: number, customer: string, tMs: number, properties: UsageEvent['properties'], name = 'store'): UsageEvent => ({
  organizationId: orgId,
  customerId: customer,
  eventName: name,
  idempotencyId: `${name}-${customer}-${i}`,
  timeCreatedMs: tMs,
  receivedAtMs: Date.now(),
  properties,
  source: 'api',
});
const metric = (metricId: string, aggregation: MetricDefinition['aggregation'], eventName = 'store', property = 'gb') =>
  insertMetric(pool, { organizationId: orgId, metricId, eventName, aggregation, property, filters: [], groupBy: [] });
const value = async (m: MetricDefinition, customerId: string, from = T0 - 3_600_000, to = T0 + 86_400_000) =>
  (await queryUsage(ch, { metric: m, customerId, from: new Date(from), to: new Date(to) }))[0]?.exact;

beforeAll(async () => {
  backends = await connectBackends(config);
  ({ pool, ch, producer } = backends);
  orgId = (await createTestOrganization(pool)).organizationId;
  agg = await startAggregator(config);
}, 120_000);

afterAll(async () => {
  await agg?.stop();
  await backends?.close();
});

describe('exact decimal rollups', () => {
  it('sums 0.1 + 0.2 to 0.3 and 2272 x 0.01 to 22.72; maxima of 12-digit decimals are exact', async () => {
    const sum = await metric('gb_sum', 'sum');
    const max = await metric('gb_max', 'max');
    const events: UsageEvent[] = [ev(0, 'a', T0 + 1_000, { gb: 0.1 }), ev(1, 'a', T0 + 2_000, { gb: 0.2 })];
    for (let i = 0; i < 2272; i++) events.push(ev(i, 'b', T0 + i * 37, { gb: 0.01 }));
    // beyond a Float64's 15-17 digits: only the text keeps them (numeric strings are numeric properties)
    const bigMax = ['1234567890123.123456789011', '1234567890123.123456789012', '1234567890123.12345678901', '-5'];
    for (const [i, v] of bigMax.entries()) events.push(ev(i, 'c', T0 + 5_000 + i, { gb: v }));
    const negMax = ['-0.3', '-0.1', '-0.2'];
    for (const [i, v] of negMax.entries()) events.push(ev(i, 'd', T0 + 6_000 + i, { gb: Number(v) }));
    await produceEvents(producer, config.kafka.eventsTopic, events);

    const want = {
      a: new X('0.1').plus('0.2').toFixed(),
      b: new X('0.01').times(2272).toFixed(),
      cSum: bigMax.reduce((s, v) => s.plus(v), new X(0)).toFixed(),
      cMax: X.max(...bigMax.map((v) => new X(v))).toFixed(),
      dMax: X.max(...negMax.map((v) => new X(v))).toFixed(),
    };
    expect([want.a, want.b, want.cMax]).toEqual(['0.3', '22.72', '1234567890123.123456789012']);
    const got = await waitFor(
      async () => ({
        a: await value(sum, 'a'),
        b: await value(sum, 'b'),
        cSum: await value(sum, 'c'),
        cMax: await value(max, 'c'),
        dMax: await value(max, 'd'),
      }),
      (g) => JSON.stringify(g) === JSON.stringify(want),
      { timeoutMs: 60_000, what: 'exact sums and maxima' },
    );
    expect(got).toEqual(want);
    // the number accessor for checks is the same value as a JS number
    const [row] = await queryUsage(ch, { metric: sum, customerId: 'a', from: new Date(T0 - 60_000), to: new Date(T0 + 60_000) });
    expect(row!.value).toBe(0.3);
    // a range that cuts minutes (raw events at the edges, rollups in between) is exact too
    const cut = { from: T0 + 15, to: T0 + 2272 * 37 - 20 };
    const inCut = events.filter((e) => e.customerId === 'b' && e.timeCreatedMs >= cut.from && e.timeCreatedMs < cut.to).length;
    expect(await value(sum, 'b', cut.from, cut.to)).toBe(new X('0.01').times(inCut).toFixed());
  });

  it('large sums keep all 12 fractional digits: 5,000 x 12345678901234.000000000001 (26 significant digits)', async () => {
    const sum = await metric('big_sum', 'sum', 'big', 'v');
    const v = '12345678901234.000000000001';
    const events = Array.from({ length: 5_000 }, (_, i) => ev(i, 'big', T0 + i * 11, { v }, 'big'));
    await produceEvents(producer, config.kafka.eventsTopic, events);
    const want = new X(v).times(5_000).toFixed(); // 61728394506170000.000000005
    expect(want).toBe('61728394506170000.000000005');
    const got = await waitFor(
      () => value(sum, 'big'),
      (g) => g === want,
      { timeoutMs: 60_000, what: 'the exact large sum' },
    );
    expect(got).toBe(want);
    // the Float64 column alone could not say this
    expect(String(new X(v).toNumber() * 5_000)).not.toBe(want);
  });

  it('a metric defined after its events is backfilled from the raw events exactly', async () => {
    const events = ['0.7', '0.1', '0.000000000001', '2.675'].map((gb, i) => ev(i, 'late', T0 + 10_000 + i, { gb: Number(gb) }, 'late'));
    await produceEvents(producer, config.kafka.eventsTopic, events);
    const probe = await metric('late_probe', 'count', 'late', 'gb');
    await waitFor(
      () => value(probe, 'late'),
      (c) => c === '4',
      { timeoutMs: 60_000, what: 'the late events stored' },
    );
    const sum = await metric('late_sum', 'sum', 'late');
    const max = await metric('late_max', 'max', 'late');
    await waitFor(
      async () => [await metricVersionStatus(ch, sum), await metricVersionStatus(ch, max)],
      (s) => s.every((x) => x === 'ready'),
      { timeoutMs: 60_000, what: 'backfills done' },
    );
    expect(await value(sum, 'late')).toBe(['0.7', '0.1', '0.000000000001', '2.675'].reduce((s, x) => s.plus(x), new X(0)).toFixed());
    expect(await value(max, 'late')).toBe('2.675');
  });

  it('rows written before the decimal columns read their Float64 rounded to 12 digits; a recompute from events makes them exact', async () => {
    // what a pre-0005 aggregator left: raw events without prop_decimal_values, a rollup row without the
    // decimal columns (Float64 sum only). The metric is not in Postgres: the running aggregator leaves it alone.
    const m: MetricDefinition = {
      organizationId: orgId,
      metricId: 'legacy',
      version: 1,
      eventName: 'legacy',
      aggregation: 'sum',
      property: 'v',
      filters: [],
      groupBy: [],
    };
    const v = '12345678901234.000000000001';
    const topic = uniqueId('legacy_topic');
    const t = T0 + 20_000;
    const sec = Math.floor(t / 1000);
    await ch.command({
      query: `INSERT INTO events (organization_id, customer_id, event_name, idempotency_id, time_created, time_created_ms, received_at, properties,
                source, kafka_topic, kafka_partition, kafka_offset, prop_keys, prop_values, prop_number_values, prop_is_number)
              SELECT ${sqlString(orgId)}, 'old', 'legacy', concat('legacy-', toString(number)), toDateTime(${sec}), ${t}, toDateTime(${sec}),
                ${sqlString(JSON.stringify({ v }))}, 'api', ${sqlString(topic)}, 0, number + 1, ['v'], [${sqlString(v)}], [toFloat64(${sqlString(v)})], [1]
              FROM system.numbers LIMIT 3`,
    });
    const floatSum = Number(v) * 3;
    await ch.command({
      query: `INSERT INTO metric_usage (organization_id, metric_id, metric_version, customer_id, bucket, group_1, group_2, kafka_topic,
                kafka_partition, window_id, version, event_count, sum_value, max_value)
              VALUES (${sqlString(orgId)}, 'legacy', 1, 'old', toDateTime(${Math.floor(t / 60_000) * 60}, 'UTC'), '', '', ${sqlString(topic)},
                0, 0, 3, 3, ${floatSum}, ${Number(v)})`,
    });
    const exact = new X(v).times(3).toFixed(); // 37037036703702.000000000003
    const before = await value(m, 'old');
    expect(before).toBe(new X(floatSum).toDecimalPlaces(12).toFixed()); // the Float64, rounded to 12 digits
    expect(before).not.toBe(exact);
    await recomputeFromEvents(ch, m, agg.windows);
    expect(await value(m, 'old')).toBe(exact);
    await recomputeFromEvents(ch, m, agg.windows); // idempotent
    expect(await value(m, 'old')).toBe(exact);
  });
});
