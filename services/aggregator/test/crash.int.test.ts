// Exactly-once under SIGKILL at random points while events stream (>= 10 kills), and with two aggregator
// instances sharing the partitions (rebalances, zombies), including gateway-slipped duplicates. Totals
// are compared with an independent computation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  createKafka,
  queryUsage,
  sqlString,
  type ClickHouseClient,
  type MetricDefinition,
  type PgPool,
  type UsageEvent,
} from '@meterline/core';
import type { Producer } from 'kafkajs';
import { testConfig, testEnv } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { AggregatorProcess } from './child.ts';
import { expectedUsage, insertMetric, produceEvents, rowsToMap, sorted, connectBackends, type TestBackends } from './helpers.ts';

const overrides = {
  KAFKA_EVENTS_TOPIC: uniqueId('t_crash_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_crash_dlq'),
  KAFKA_EVENTS_PARTITIONS: '4',
  AGGREGATOR_GROUP_ID: uniqueId('g_crash'),
  AGGREGATOR_WINDOW_SIZE: '50',
  AGGREGATOR_METRIC_POLL_MS: '200',
  AGGREGATOR_MAX_BATCH_RECORDS: '200',
  AGGREGATOR_SESSION_TIMEOUT_MS: '10000',
  LOG_LEVEL: 'warn',
};
const config = testConfig(overrides);
const env = testEnv(overrides);
const logFile = path.join(tmpdir(), `${overrides.AGGREGATOR_GROUP_ID}.log`);
const DAY = 86_400_000;
const BASE = Math.floor((Date.now() - 3 * DAY) / DAY) * DAY;

let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let backends: TestBackends;
let orgId: string;
const metrics: MetricDefinition[] = [];
const events: UsageEvent[] = [];
const a = new AggregatorProcess(19205, env, logFile);
const b = new AggregatorProcess(19206, env, logFile);

function makeEvents(n: number, start: number): UsageEvent[] {
  const out: UsageEvent[] = [];
  for (let i = start; i < start + n; i++) {
    const c = `c${i % 7}`;
    out.push({
      organizationId: orgId,
      customerId: c,
      eventName: 'req',
      idempotencyId: `e${i}`,
      timeCreatedMs: BASE + i * 37_000 + (i % 13),
      receivedAtMs: Date.now(),
      properties: { region: ['eu', 'us', 'ap'][i % 3]!, bytes: (i * 7919) % 1000, user: `u${(i * 31) % 97}` },
      source: 'api',
    });
  }
  return out;
}

async function totalsMatch(): Promise<{ ok: boolean; detail: string }> {
  const q = { from: new Date(BASE - DAY), to: new Date(BASE + 2_000 * DAY), window: 'day' as const, includeGroups: true };
  for (const m of metrics) {
    const got = sorted(rowsToMap(await queryUsage(ch, { metric: m, ...q }), m, true));
    const want = sorted(expectedUsage(m, events, q));
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      const g = new Map(got),
        w = new Map(want);
      const diff = [...new Set([...g.keys(), ...w.keys()])]
        .filter((k) => g.get(k) !== w.get(k))
        .slice(0, 10)
        .map((k) => `${k}: got ${g.get(k)} want ${w.get(k)}`);
      return { ok: false, detail: `${m.metricId}: ${diff.length} differing keys, e.g. ${diff.join('; ')}` };
    }
  }
  return { ok: true, detail: '' };
}

beforeAll(async () => {
  backends = await connectBackends(config);
  ({ pool, ch, producer } = backends);
  orgId = (await createTestOrganization(pool)).organizationId;
  const base = { organizationId: orgId, eventName: 'req', filters: [] };
  metrics.push(
    await insertMetric(pool, { ...base, metricId: 'requests', aggregation: 'count', property: null, groupBy: ['region'] }),
    await insertMetric(pool, {
      ...base,
      metricId: 'bytes',
      aggregation: 'sum',
      property: 'bytes',
      filters: [{ property: 'region', operator: 'not_in', values: ['ap'] }],
      groupBy: [],
    }),
    await insertMetric(pool, { ...base, metricId: 'users', aggregation: 'unique_count', property: 'user', groupBy: [] }),
    await insertMetric(pool, { ...base, metricId: 'peak', aggregation: 'max', property: 'bytes', groupBy: ['region'] }),
    await insertMetric(pool, { ...base, metricId: 'last_bytes', aggregation: 'latest', property: 'bytes', groupBy: [] }),
  );
}, 60_000);

afterAll(async () => {
  await a.kill9();
  await b.kill9();
  await backends?.close();
});

describe('exactly once under crashes and concurrency', () => {
  it('SIGKILL at random points (>= 10 times) while events stream leaves every total exact', async () => {
    let streaming = true;
    let produced = 0;
    const stream = (async () => {
      while (streaming || produced < 4000) {
        // ~200 events/s while the kills go on
        const batch = makeEvents(100, produced);
        // every 5th batch repeats ten earlier ids (duplicates that slipped past the gateway)
        const dups =
          produced > 0 && (produced / 100) % 5 === 0
            ? events.slice(produced - 50, produced - 40).map((e) => ({ ...e, properties: { ...e.properties, bytes: 999 } }))
            : [];
        await produceEvents(producer, config.kafka.eventsTopic, [...batch, ...dups]);
        events.push(...batch, ...dups);
        produced += 100;
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    let kills = 0;
    let seed = 7;
    const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const stored = async () =>
      Number(
        (
          await (
            await ch.query({ query: `SELECT count() AS c FROM events WHERE organization_id = ${sqlString(orgId)}`, format: 'JSONEachRow' })
          ).json<{ c: string }>()
        )[0]!.c,
      );
    let killsWhileStoring = 0;
    for (let i = 0; i < 12; i++) {
      await a.start();
      if (i % 2 === 0) {
        // wait until this instance is storing events, then kill it mid-stream at a random moment
        const base = await stored();
        const progressed = await waitFor(stored, (n) => n > base, { timeoutMs: 40_000, intervalMs: 50 }).then(
          () => true,
          () => false,
        );
        if (progressed) killsWhileStoring++;
        await new Promise((r) => setTimeout(r, rand() * 400));
      } else {
        await new Promise((r) => setTimeout(r, 200 + rand() * 1800));
      }
      await a.kill9();
      kills++;
    }
    expect(killsWhileStoring).toBeGreaterThanOrEqual(5);
    streaming = false;
    await stream;
    expect(kills).toBeGreaterThanOrEqual(10);
    // the killed instances did real work (stored events) before the final one starts
    const before = await ch.query({
      query: `SELECT count() AS c FROM events WHERE organization_id = ${sqlString(orgId)}`,
      format: 'JSONEachRow',
    });
    const storedBeforeFinal = Number((await before.json<{ c: string }>())[0]!.c);
    expect(storedBeforeFinal).toBeGreaterThan(0);
    console.log(
      `kills: ${kills} (${killsWhileStoring} while storing); events stored by the killed instances: ${storedBeforeFinal} of ${events.length} produced`,
    );
    await a.start();
    await a.ready();
    const r = await waitFor(totalsMatch, (x) => x.ok, { timeoutMs: 180_000, intervalMs: 500, what: 'exact totals after kills' });
    expect(r.ok).toBe(true);
    // raw events: every distinct id once (FINAL), and no duplicate id stored at all
    const rs = await ch.query({
      query: `SELECT count() AS c, uniqExact(idempotency_id) AS u FROM events FINAL WHERE organization_id = ${sqlString(orgId)}`,
      format: 'JSONEachRow',
    });
    const row = (await rs.json<{ c: string; u: string }>())[0]!;
    expect({ c: Number(row.c), u: Number(row.u) }).toEqual({
      c: new Set(events.map((e) => e.idempotencyId)).size,
      u: new Set(events.map((e) => e.idempotencyId)).size,
    });
  }, 400_000);

  it('two instances sharing the partitions (with a SIGKILL of one) leave every total exact', async () => {
    await b.start();
    await b.ready();
    let produced = 1_000_000;
    for (let round = 0; round < 10; round++) {
      const batch = makeEvents(150, produced);
      const dups = events.slice(-20, -10).map((e) => ({ ...e, properties: { ...e.properties, bytes: 1 } }));
      await produceEvents(producer, config.kafka.eventsTopic, [...batch, ...dups]);
      events.push(...batch, ...dups);
      produced += 150;
      if (round === 4) await b.kill9();
      if (round === 6) await b.start();
      await new Promise((r) => setTimeout(r, 300));
    }
    const r = await waitFor(totalsMatch, (x) => x.ok, { timeoutMs: 180_000, intervalMs: 500, what: 'exact totals with two instances' });
    expect(r.ok).toBe(true);
    // graceful stop (SIGTERM) while events stream: the chunk in flight is finished and committed, then
    // a fresh instance continues from the commit and totals stay exact
    const tail = makeEvents(600, 2_000_000);
    events.push(...tail);
    const sending = produceEvents(producer, config.kafka.eventsTopic, tail, 50);
    await new Promise((r) => setTimeout(r, 300));
    await Promise.all([a.stop(), b.stop()]);
    await sending;
    const admin = createKafka(config.kafka).admin();
    await admin.connect();
    const committed = await admin.fetchOffsets({ groupId: config.aggregator.groupId, topics: [config.kafka.eventsTopic] });
    await admin.disconnect();
    expect(committed[0]!.partitions.some((p) => Number(p.offset) > 0)).toBe(true);
    await a.start();
    await a.ready();
    const r2 = await waitFor(totalsMatch, (x) => x.ok, { timeoutMs: 180_000, intervalMs: 500, what: 'exact totals after graceful stops' });
    expect(r2.ok).toBe(true);
    // the running instance commits up to the end of the topic (also offsets whose records a stopped
    // instance had already stored: replayed, skipped as stored, committed)
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(config.kafka.eventsTopic);
    const committedOf = async () =>
      new Map(
        (await admin.fetchOffsets({ groupId: config.aggregator.groupId, topics: [config.kafka.eventsTopic] }))[0]!.partitions.map((p) => [
          p.partition,
          p.offset,
        ]),
      );
    const nonEmpty = ends.filter((e) => e.high !== '0');
    await waitFor(committedOf, (c) => nonEmpty.every((e) => c.get(e.partition) === e.high), {
      timeoutMs: 60_000,
      what: 'commits at the end of the topic',
    });
    await a.stop();
    const after = await committedOf();
    await admin.disconnect();
    expect(nonEmpty.map((e) => [e.partition, after.get(e.partition)])).toEqual(nonEmpty.map((e) => [e.partition, e.high]));
  }, 400_000);
});
