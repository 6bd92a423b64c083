// No noisy neighbours in the aggregator (issue #18 item 2; README "Metric versions and backfill"):
// while one organization has dozens of metric versions backfilling over thousands of older events,
// (1) a new metric of a fresh organization counts its recent events within 5 s, (2) another
// organization's live events stay fresh, (3) after a restart in the middle of the backlog, completed
// backfills are not redone (no new metric_backfills row, exactly one 'done' per version) and the
// incomplete ones resume, and (4) every backfilled total equals an independently computed count/sum —
// including live events sent while the backfills ran (no double count at the backfill/live boundary).
// The full-size measurement (1,800 metrics across 200 organizations) is `npm run bench:fairness`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryUsage, sqlString, type ClickHouseClient, type MetricDefinition, type PgPool, type UsageEvent } from '@meterline/core';
import type { Producer } from 'kafkajs';
import { startAggregator, type Aggregator } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { connectBackends, insertMetric, produceEvents, type TestBackends } from './helpers.ts';

const BIG_METRICS = 30;
const BIG_EVENTS = 3_000;
const config = testConfig({
  KAFKA_EVENTS_TOPIC: uniqueId('t_fair_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_fair_dlq'),
  KAFKA_EVENTS_PARTITIONS: '3',
  AGGREGATOR_GROUP_ID: uniqueId('g_fair'),
  AGGREGATOR_PORT: '0',
  AGGREGATOR_METRIC_POLL_MS: '250',
  AGGREGATOR_WINDOW_SIZE: '500',
});
// small slices: every big-org version takes several (recorded) slices, so the backlog is long
const deps = { backfillSettleMs: 1_000, backfillSlices: { sliceTargetRows: 1_000, sliceTargetMs: 60_000 } };
const NOW = Date.now();
const DAY = 86_400_000;

let backends: TestBackends;
let pool: PgPool;
let ch: ClickHouseClient;
let producer: Producer;
let big: string;
let fresh: string;
let other: string;
const aggs: Aggregator[] = [];
const sent: UsageEvent[] = [];

function ev(org: string, name: string, i: number, timeMs: number, props: Record<string, string | number>): UsageEvent {
  return {
    organizationId: org,
    customerId: `c${i % 4}`,
    eventName: name,
    idempotencyId: `${name}-${i}`,
    timeCreatedMs: timeMs,
    receivedAtMs: Date.now(),
    properties: props,
    source: 'api',
  };
}
async function send(events: UsageEvent[]): Promise<void> {
  await produceEvents(producer, config.kafka.eventsTopic, events);
  sent.push(...events);
}
const bigMetric = (i: number): Omit<MetricDefinition, 'version'> =>
  i % 2 === 0
    ? { organizationId: big, metricId: `m${i}`, eventName: 'call', aggregation: 'count', property: null, filters: [], groupBy: [] }
    : {
        organizationId: big,
        metricId: `m${i}`,
        eventName: 'call',
        aggregation: 'sum',
        property: 'tokens',
        filters: [{ property: 'tier', operator: 'equals', value: 'pro' }],
        groupBy: [],
      };
// the reference, from the events sent (independent of the SQL)
function expected(m: Omit<MetricDefinition, 'version'>): number {
  const mine = sent.filter((e) => e.organizationId === m.organizationId && e.eventName === m.eventName);
  if (m.aggregation === 'count') return mine.length;
  return mine.filter((e) => e.properties['tier'] === 'pro').reduce((s, e) => s + Number(e.properties['tokens']), 0);
}
async function total(m: MetricDefinition, from = new Date(0), to = new Date(NOW + DAY)): Promise<number> {
  const rows = await queryUsage(ch, { metric: m, from, to });
  return rows.reduce((s, r) => s + r.value, 0);
}
async function statusRows(org: string): Promise<{ metric_id: string; status: string; n: number }[]> {
  const rs = await ch.query({
    query: `SELECT metric_id, status, toUInt32(count()) AS n FROM metric_backfills WHERE organization_id = ${sqlString(org)} GROUP BY metric_id, status`,
    format: 'JSONEachRow',
  });
  return (await rs.json<{ metric_id: string; status: string; n: number | string }>()).map((r) => ({ ...r, n: Number(r.n) }));
}
const doneIds = (rows: { metric_id: string; status: string }[]) => new Set(rows.filter((r) => r.status === 'done').map((r) => r.metric_id));

beforeAll(async () => {
  backends = await connectBackends(config);
  ({ pool, ch, producer } = backends);
  big = (await createTestOrganization(pool, { name: 'fair-big' })).organizationId;
  fresh = (await createTestOrganization(pool, { name: 'fair-fresh' })).organizationId;
  other = (await createTestOrganization(pool, { name: 'fair-other' })).organizationId;
});

afterAll(async () => {
  for (const a of aggs) await a.stop();
  // archived: later test aggregators on this shared database do not load these definitions
  await pool?.query('UPDATE billable_metrics SET archived_at = now() WHERE organization_id = ANY($1)', [[big, fresh, other]]);
  await backends?.close();
});

describe('backfills are fair across organizations and never redone', () => {
  it('a fresh organization counts within 5 s during a big backlog; restart resumes, redoes nothing; totals exact', async () => {
    aggs.push(await startAggregator(config, deps));
    // the other organization's metric exists (and is backfilled) before the backlog starts
    const otherMetric = await insertMetric(pool, {
      organizationId: other,
      metricId: 'live',
      eventName: 'ping',
      aggregation: 'count',
      property: null,
      filters: [],
      groupBy: [],
    });
    // older events: the big organization's spread over 10 days, the fresh one's 3 days old and recent
    await send(
      Array.from({ length: BIG_EVENTS }, (_, i) =>
        ev(big, 'call', i, NOW - 10 * DAY + Math.floor((i * 10 * DAY) / BIG_EVENTS), {
          tokens: (i % 7) + 1,
          tier: i % 3 === 0 ? 'pro' : 'free',
        }),
      ),
    );
    await send(Array.from({ length: 10 }, (_, i) => ev(fresh, 'req', i, NOW - 3 * DAY + i * 1000, {})));
    await send(Array.from({ length: 30 }, (_, i) => ev(fresh, 'req', 100 + i, NOW - 20 * 60_000 + i * 1000, {})));
    await waitFor(
      async () => {
        const rs = await ch.query({
          query: `SELECT toUInt32(count()) AS c FROM (SELECT 1 FROM events WHERE organization_id IN (${sqlString(big)}, ${sqlString(fresh)}) LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset)`,
          format: 'JSONEachRow',
        });
        return Number((await rs.json<{ c: number }>())[0]?.c);
      },
      (c) => c === BIG_EVENTS + 40,
      { timeoutMs: 30_000, what: 'raw events stored' },
    );

    // the backlog: BIG_METRICS new versions of one organization over 3,000 older events
    const bigMetrics: MetricDefinition[] = [];
    for (let i = 0; i < BIG_METRICS; i++) bigMetrics.push(await insertMetric(pool, bigMetric(i)));
    const a1 = aggs[0] as Aggregator;
    await waitFor(
      async () => a1.backfiller.slicesRun.preview,
      (n) => n >= 3,
      { timeoutMs: 15_000, what: 'big backlog started' },
    );

    // (1) a new metric of a fresh organization: its recent events count within 5 s
    const created = Date.now();
    const freshMetric = await insertMetric(pool, {
      organizationId: fresh,
      metricId: 'reqs',
      eventName: 'req',
      aggregation: 'count',
      property: null,
      filters: [],
      groupBy: [],
    });
    await waitFor(
      () => total(freshMetric, new Date(NOW - 3_600_000), new Date(NOW + 3_600_000)),
      (v) => v === 30,
      { timeoutMs: 5_000, intervalMs: 50, what: 'fresh metric counts its recent events within 5 s' },
    );
    const freshMs = Date.now() - created;
    const backlogLeft = a1.backfiller.pending;
    // it really competed: most of the big organization's versions were still waiting
    expect(backlogLeft).toBeGreaterThan(BIG_METRICS / 2);

    // (2) another organization's live event, sent now, is counted within 5 s
    const sentAt = Date.now();
    await send([ev(other, 'ping', 1, Date.now(), {})]);
    await waitFor(
      () => total(otherMetric),
      (v) => v === 1,
      { timeoutMs: 5_000, intervalMs: 50, what: "another organization's live event during the backlog" },
    );
    const otherMs = Date.now() - sentAt;

    // live events of the big organization while its versions backfill (the backfill/live boundary)
    await send(
      Array.from({ length: 200 }, (_, i) => ev(big, 'call', 10_000 + i, Date.now() - i * 500, { tokens: 3, tier: i % 2 ? 'pro' : 'free' })),
    );

    // (3) restart in the middle of the backlog
    await waitFor(
      () => statusRows(big),
      (rows) => doneIds(rows).size >= 3,
      { timeoutMs: 40_000, what: 'some big versions done' },
    );
    await a1.stop();
    const atStop = await statusRows(big);
    const doneAtStop = doneIds(atStop);
    const rs = await ch.query({
      query: `SELECT DISTINCT metric_id FROM metric_backfills WHERE organization_id = ${sqlString(big)} AND resume_before > 0`,
      format: 'JSONEachRow',
    });
    const resumable = new Set((await rs.json<{ metric_id: string }>()).map((r) => r.metric_id).filter((id) => !doneAtStop.has(id)));
    expect(doneAtStop.size).toBeLessThan(BIG_METRICS); // the restart really interrupts the backlog

    // status rows merge in the background (ReplacingMergeTree), so "not touched" is asserted on time:
    // nothing written for a completed version after the second the restart began
    const stopSec = Math.floor(Date.now() / 1000);
    await waitFor(
      async () => Math.floor(Date.now() / 1000),
      (s) => s > stopSec,
      { timeoutMs: 2_000, intervalMs: 20, what: 'next second' },
    );
    const a2 = await startAggregator(config, deps);
    aggs.push(a2);
    await waitFor(
      () => statusRows(big),
      (rows) => doneIds(rows).size === BIG_METRICS,
      { timeoutMs: 40_000, intervalMs: 250, what: 'all big versions done after the restart' },
    );
    const after = await statusRows(big);
    // completed before the restart: not touched again (not a single status row written)
    const touched = await ch.query({
      query: `SELECT toUInt32(count()) AS c FROM metric_backfills WHERE organization_id = ${sqlString(big)}
                AND metric_id IN (${[...doneAtStop].map(sqlString).join(', ')}) AND toUInt32(updated_at) > ${stopSec}`,
      format: 'JSONEachRow',
    });
    expect(Number((await touched.json<{ c: number }>())[0]?.c)).toBe(0);
    expect(after.filter((r) => doneAtStop.has(r.metric_id)).length).toBe(doneAtStop.size); // not a single running row
    // every version completed exactly once
    for (const r of after.filter((x) => x.status === 'done')) expect(r.n, r.metric_id).toBe(1);
    // versions with recorded progress resumed (no preview of them again); only the rest were previewed
    // (+1: the fresh organization's version, if it was not done at the restart)
    expect(a2.backfiller.slicesRun.preview).toBeLessThanOrEqual(BIG_METRICS - doneAtStop.size - resumable.size + 1);

    // (4) totals equal the independent computation, live events during the backfill included
    await waitFor(
      async () => Promise.all(bigMetrics.map((m) => total(m))),
      (got) => got.every((v, i) => v === expected(bigMetric(i))),
      { timeoutMs: 15_000, what: 'big totals exact' },
    );
    for (let i = 0; i < BIG_METRICS; i++) expect(await total(bigMetrics[i] as MetricDefinition)).toBe(expected(bigMetric(i)));
    await waitFor(
      () => total(freshMetric),
      (v) => v === 40,
      { timeoutMs: 15_000, what: 'fresh metric complete (older events too)' },
    );
    console.log(
      `fairness: fresh metric counted its recent events in ${freshMs} ms with ${backlogLeft} big versions waiting; ` +
        `other org's live event visible in ${otherMs} ms; ${doneAtStop.size}/${BIG_METRICS} done at restart, ` +
        `after restart ${a2.backfiller.slicesRun.preview} previews + ${a2.backfiller.slicesRun.slice} slices`,
    );
  }, 120_000);
});
