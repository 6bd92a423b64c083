// `npm run bench`: Meterline benchmarks next to their baselines, on the local stack.
//
// Phases (each bounded in events and time; a failing phase is reported and the run continues):
//   floor       plain Redis GET round trips from Node
//   kafka       raw kafkajs producer, same Avro-encoded events, batches of 1/100/1000
//   ingest      gateway (child process) POST /v1/events, batches of 1/100/1000
//   e2e         >= 1,000,000 events through gateway -> Kafka -> aggregator -> ClickHouse aggregates
//   freshness   ingest at half the maximum rate; probe events' time from ack to visible in aggregates
//   chkafka     ClickHouse Kafka engine consuming the same events (JSONEachRow, parallel topic)
//   entitlement billing customer_access/check latency while ingest runs at half the maximum rate: a short
//               closed loop, then open-loop rows (check and customer_access at 2,000 req/s, check +
//               send_event at 500 req/s) each next to an open-loop Redis GET floor at the same rate
//   close       one scheduler pass closing BENCH_CLOSE_SUBSCRIPTIONS (10,000) subscriptions due at the same
//               instant, each with usage (bench/lib/close.ts), next to the old one-at-a-time path on a sample
//
// BENCH_CPU_PROF=billing (comma list of service names) runs those children with --cpu-prof
// (profiles in .cache/bench/prof/, written when the child stops; summarise: npx tsx bench/prof-summary.ts).
//
// Environment: BENCH_EVENTS (e2e events, default 1000000), BENCH_PHASES (comma list, default all),
// BENCH_SECONDS (per throughput step, default 6). Results: bench/results/<time>-<run>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
import os from 'node:os';
import path from 'node:path';
import {
  createClickHouse,
  createKafka,
  ensureTopics,
  metricVersionStatus,
  sqlString,
  type ClickHouseClient,
  type MetricDefinition,
  type PgPool,
} from '@meterline/core';
import { ServiceProcess, portInUse, readCpuSeconds, ROOT, type ServiceName } from './lib/proc.ts';
import { readFileSync } from 'node:fs';
import {
  bringUpSharedStack,
  ensurePostgres,
  ensureStackInstalled,
  createBenchOrg,
  pgPool,
  prepare,
  runEnv,
  type BenchOrg,
  type RunEnv,
} from './lib/env.ts';
import { closedLoop, openLoop, EventSource, GatewayClient } from './lib/load.ts';
import { ClickHouseKafkaEngine, jsonEncoder, kafkaProducerBaseline, redisGetFloor } from './lib/baselines.ts';
import { aggregateTotal, rawCount, type UsageQuery } from './lib/usage.ts';
import { fmtInt, fmtNum, nowMs, sleep, summarize, table, type LatencySummary } from './lib/stats.ts';
import { entitlementPhase, type OpenRowName, type OpenRowResult } from './lib/entitlement.ts';
import { closePhase } from './lib/close.ts';
import { PrivateStack } from '../test/support/private-stack.ts';

// BENCH_BATCHES=1000 (comma list of 1, 100, 1000) runs only those kafka/ingest steps, e.g. to profile one.
const BATCH_SIZES = (process.env.BENCH_BATCHES ?? '1,100,1000')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((b) => b === 1 || b === 100 || b === 1000);
const CONCURRENCY: Record<number, number> = { 1: 64, 100: 16, 1000: 8 };
const STEP_MS = Number(process.env.BENCH_SECONDS ?? 6) * 1000;
const E2E_EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const PHASES = new Set(
  (process.env.BENCH_PHASES ?? 'floor,kafka,ingest,e2e,freshness,trickle,chkafka,metrics,close,entitlement')
    .split(',')
    .map((s) => s.trim()),
);
// BENCH_BASE_PORT moves the whole range (base..base+7) so two benches can run at once on one machine.
const BASE_PORT = Number(process.env.BENCH_BASE_PORT ?? 19400);
const PORTS = { gateway: BASE_PORT + 5, aggregator: BASE_PORT + 6, billing: BASE_PORT + 7 } as const;
const CUSTOMERS = Array.from({ length: 20 }, (_, i) => `cust_${i}`);
const TOTAL_BUDGET_MS = Number(process.env.BENCH_BUDGET_S ?? 720) * 1000;
// entitlement phase: BENCH_INGEST_RATE (background events/s; default half the ingest phase's maximum,
// 10,000 without an ingest phase), BENCH_ENT_SECONDS (per open-loop row, default 20), BENCH_ENT_ROWS
// (comma list of check,customer_access,check_send_event; default all), BENCH_ENT_CLOSED=0 skips the closed loop.
const ENT_INGEST_RATE = process.env.BENCH_INGEST_RATE ? Number(process.env.BENCH_INGEST_RATE) : null;
const ENT_SECONDS = Number(process.env.BENCH_ENT_SECONDS ?? 20);
const ENT_ROWS = (process.env.BENCH_ENT_ROWS ?? 'check,customer_access,check_send_event').split(',').map((x) => x.trim()) as OpenRowName[];
const ENT_CLOSED = process.env.BENCH_ENT_CLOSED !== '0';
// close phase: BENCH_CLOSE_SUBSCRIPTIONS (default 10000), BENCH_CLOSE_BASELINE (old-path sample, default 300),
// BENCH_CLOSE_CONCURRENCY (close transactions at a time, default the scheduler's 8)
const CLOSE_SUBSCRIPTIONS = Number(process.env.BENCH_CLOSE_SUBSCRIPTIONS ?? 10_000);
const CLOSE_BASELINE = Number(process.env.BENCH_CLOSE_BASELINE ?? 300);
const CLOSE_CONCURRENCY = process.env.BENCH_CLOSE_CONCURRENCY ? Number(process.env.BENCH_CLOSE_CONCURRENCY) : undefined;

type PhaseStatus = { status: 'ok' } | { status: 'skipped' | 'failed'; reason: string };
const phases: Record<string, PhaseStatus & Record<string, unknown>> = {};
const started = Date.now();
const loadavgAtStart = os.loadavg();
const log = (msg: string) => console.error(`[bench +${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`);
const budgetLeft = () => TOTAL_BUDGET_MS - (Date.now() - started);

async function phase(name: string, fn: () => Promise<Record<string, unknown>>): Promise<void> {
  if (!PHASES.has(name)) return;
  if (budgetLeft() < 20_000) {
    phases[name] = { status: 'skipped', reason: 'time budget exhausted' };
    return;
  }
  log(`${name}: start`);
  try {
    phases[name] = { status: 'ok', ...(await fn()) };
    log(`${name}: done`);
  } catch (err) {
    phases[name] = { status: 'failed', reason: (err as Error).stack ?? String(err) };
    log(`${name}: FAILED ${(err as Error).message}`);
  }
}

function lat(samples: number[]): LatencySummary {
  return summarize(samples);
}

// ------------------------------------------------------------------------------------------------
const runId = `b${Date.now().toString(36)}`;
// Default: a private Kafka/ClickHouse/Redis (ports BENCH_BASE_PORT..+4, default 19400..19404, fresh data, removed afterwards), so the
// numbers do not depend on what other runs left in the shared stack and a load-induced crash of a backing
// service cannot take the shared stack down. BENCH_STACK=shared uses the shared local stack instead.
const usePrivate = (process.env.BENCH_STACK ?? 'private') !== 'shared';
let privateStack: PrivateStack | null = null;
const stackOverrides: Record<string, string> = {};
if (usePrivate) {
  ensurePostgres();
  ensureStackInstalled();
  log(`run ${runId}: starting a private Kafka, ClickHouse and Redis on ports ${BASE_PORT}..${BASE_PORT + 4}`);
  privateStack = new PrivateStack(BASE_PORT);
  const ps = privateStack;
  for (let port = BASE_PORT; port <= BASE_PORT + 7; port++) {
    if (await portInUse(port))
      throw new Error(
        `port ${port} is in use: a previous bench run was interrupted? Stop what listens on ${BASE_PORT}..${BASE_PORT + 7} first`,
      );
  }
  const cleanup = (code: number) => () => {
    void ps.destroy().finally(() => process.exit(code));
  };
  process.once('SIGINT', cleanup(130));
  process.once('SIGTERM', cleanup(143));
  process.once('uncaughtException', (err) => {
    console.error(err);
    cleanup(1)();
  });
  await ps.start('redis');
  await ps.start('clickhouse');
  await ps.start('kafka');
  Object.assign(stackOverrides, { KAFKA_BROKERS: ps.kafkaBrokers, CLICKHOUSE_URL: ps.clickhouseUrl, REDIS_URL: ps.redisUrl });
} else {
  log(`run ${runId}: bringing up the shared local stack`);
  bringUpSharedStack();
}
const run: RunEnv = runEnv(runId, stackOverrides);
await prepare(run);
const logDir = path.join(ROOT, '.cache', 'bench', runId);
const pool: PgPool = pgPool(run);
const ch: ClickHouseClient = createClickHouse(run.config.clickhouse);
// Every service child process of the run (peak RSS is reported per service name over all of them).
const allProcesses: ServiceProcess[] = [];
const services: Partial<Record<ServiceName, ServiceProcess>> = {};
const portsEnv = { GATEWAY_PORT: String(PORTS.gateway), AGGREGATOR_PORT: String(PORTS.aggregator), BILLING_PORT: String(PORTS.billing) };
const service = (name: ServiceName) => {
  if (!services[name]) allProcesses.push((services[name] = new ServiceProcess(name, PORTS[name], { ...run.env, ...portsEnv }, logDir)));
  return services[name]!;
};

async function newTopic(suffix: string, partitions = run.config.kafka.eventsPartitions): Promise<string> {
  const topic = `bench_${runId}_${suffix}`;
  const admin = createKafka(run.config.kafka).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, { ...run.config.kafka, eventsTopic: topic, eventsPartitions: partitions, deadLetterTopic: `${topic}_dlq` });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

// Aggregator issue #18: CPU per 1,000 events of the aggregator and of ClickHouse (the private stack's
// server; null on the shared stack, whose ClickHouse serves everyone), which load on the machine skews
// far less than wall-clock rates, and ClickHouse storage per event.
function clickhouseCpuSeconds(): number | null {
  if (!privateStack) return null;
  try {
    const pid = Number(readFileSync(path.join(privateStack.stateDir, 'clickhouse', 'clickhouse.pid'), 'utf8').trim());
    return pid ? readCpuSeconds(pid) : null;
  } catch {
    return null;
  }
}
function cpuMeter(agg: ServiceProcess) {
  const a0 = agg.cpuSeconds();
  const c0 = clickhouseCpuSeconds();
  const t0 = Date.now();
  return (events: number) => {
    const a1 = agg.cpuSeconds();
    const c1 = clickhouseCpuSeconds();
    const seconds = (Date.now() - t0) / 1000;
    const per1k = (x0: number | null, x1: number | null) =>
      x0 === null || x1 === null ? null : ((x1 - x0) * 1000 * 1000) / Math.max(1, events);
    const share = (x0: number | null, x1: number | null) => (x0 === null || x1 === null ? null : (x1 - x0) / seconds);
    return {
      aggregatorCpuMsPer1kEvents: per1k(a0, a1),
      clickhouseCpuMsPer1kEvents: per1k(c0, c1),
      aggregatorCoreShare: share(a0, a1),
      clickhouseCoreShare: share(c0, c1),
      measuredSeconds: seconds,
    };
  };
}
// ClickHouse's own counters (system.events): how many statements, inserts and merges a phase cost —
// on 18.16 every INSERT is a new part with a fixed price, whatever its size.
const CH_COUNTERS = ['Query', 'InsertQuery', 'SelectQuery', 'InsertedRows', 'MergedRows', 'MergesTimeMilliseconds'] as const;
async function clickhouseCounters(): Promise<Record<string, number>> {
  const rs = await ch.query({
    query: `SELECT event, value FROM system.events WHERE event IN (${CH_COUNTERS.map((c) => `'${c}'`).join(', ')})`,
    format: 'JSONEachRow',
  });
  const out: Record<string, number> = {};
  for (const r of await rs.json<{ event: string; value: string }>()) out[r.event] = Number(r.value);
  return out;
}
async function clickhouseCounterMeter() {
  const c0 = await clickhouseCounters();
  const t0 = Date.now();
  return async () => {
    const c1 = await clickhouseCounters();
    const seconds = (Date.now() - t0) / 1000;
    const perSecond: Record<string, number> = {};
    for (const k of CH_COUNTERS) perSecond[k] = ((c1[k] ?? 0) - (c0[k] ?? 0)) / seconds;
    return perSecond;
  };
}

/**
 * Freshness probe: posts one event and polls queryUsage until `expected` events are visible. null when
 * the gateway did not acknowledge it; visibleMs null when it was not visible within timeoutMs.
 */
async function probeOnce(
  client: GatewayClient,
  source: EventSource,
  q: UsageQuery,
  expected: number,
  timeoutMs: number,
): Promise<{ ackMs: number; visibleMs: number | null } | null> {
  const sentAt = nowMs();
  const r = await client.post(JSON.stringify({ batch: source.next(1) }));
  if (r.status !== 200 && r.status !== 202) return null;
  const ackMs = nowMs() - sentAt;
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await aggregateTotal(ch, q).catch(() => 0)) >= expected) return { ackMs, visibleMs: nowMs() - sentAt };
    await sleep(20);
  }
  return { ackMs, visibleMs: null };
}

async function storagePerEvent(events: number): Promise<Record<string, unknown>> {
  const rs = await ch.query({
    query: `SELECT table, sum(active) AS active_parts, sum(NOT active) AS inactive_parts,
                   sumIf(data_compressed_bytes, active) AS compressed, sumIf(rows, active) AS rows
              FROM system.parts WHERE database = ${sqlString(run.config.clickhouse.database)}
               AND table IN ('events', 'events_by_offset', 'metric_usage') GROUP BY table ORDER BY table`,
    format: 'JSONEachRow',
  });
  const out: Record<string, unknown> = {};
  let total = 0;
  for (const r of await rs.json<{ table: string; active_parts: string; inactive_parts: string; compressed: string; rows: string }>()) {
    total += Number(r.compressed);
    out[r.table] = {
      bytesPerEvent: Number(r.compressed) / Math.max(1, events),
      rows: Number(r.rows),
      activeParts: Number(r.active_parts),
      inactiveParts: Number(r.inactive_parts),
    };
  }
  return { ...out, totalBytesPerEvent: total / Math.max(1, events), note: 'all organizations of the run (e2e dominates)' };
}

// cpuUsPerEvent: CPU time per acknowledged event, a number that load on the machine skews far less than
// events/s — for the baseline the bench process's own (load generator + kafkajs producer in one process),
// for the gateway the gateway process's alone (its load generator is the bench process).
const kafkaResults: Record<
  number,
  { eventsPerSec: number; sendLatency: LatencySummary; events: number; concurrency: number; cpuUsPerEvent: number }
> = {};
const ingestResults: Record<
  number,
  {
    eventsPerSec: number;
    requestLatency: LatencySummary;
    events: number;
    concurrency: number;
    statusCounts: Record<string, number>;
    gatewayCpuUsPerEvent: number | null;
    loadGeneratorCpuUsPerEvent: number;
    loadavg1m: number;
  }
> = {};
let maxIngestRate = 0;
let org: BenchOrg | null = null;
// Created up front, before any aggregator starts, so that it knows every metric from its first poll.
let e2eOrg: BenchOrg, fOrg: BenchOrg, eOrg: BenchOrg;

try {
  org = await createBenchOrg(pool, 'bench.call');
  e2eOrg = await createBenchOrg(pool, 'bench.e2e');
  // a second metric on the e2e events (issue #18 measures storage per event with 2 metrics)
  await pool.query(
    `INSERT INTO billable_metrics (organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by)
     VALUES ($1, 'tokens', 1, 'bench tokens', $2, 'sum', 'tokens', '[]'::jsonb, '["region"]'::jsonb)`,
    [e2eOrg.organizationId, e2eOrg.eventName],
  );
  fOrg = await createBenchOrg(pool, 'bench.fresh');
  eOrg = await createBenchOrg(pool, 'bench.ent');

  await phase('floor', async () => {
    const single = await redisGetFloor({ redisUrl: run.config.redisUrl, concurrency: 1, durationMs: 2_000, maxRequests: 50_000 });
    const conc = await redisGetFloor({ redisUrl: run.config.redisUrl, concurrency: 32, durationMs: 3_000, maxRequests: 500_000 });
    return {
      concurrency1: { requestsPerSec: single.requestsPerSec, latency: lat(single.latency) },
      concurrency32: { requestsPerSec: conc.requestsPerSec, latency: lat(conc.latency) },
    };
  });

  await phase('kafka', async () => {
    const topic = await newTopic('baseline');
    // One connected producer for every step, warmed up like the gateway is (metadata, leaders, JIT).
    const producer = createKafka(run.config.kafka).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await kafkaProducerBaseline({
      config: run.config,
      topic,
      organizationId: org!.organizationId,
      source: new EventSource(`${runId}kw`, 'bench.warmup', CUSTOMERS),
      batchSize: 100,
      concurrency: 4,
      durationMs: 1_000,
      maxEvents: 20_000,
      producer,
    });
    for (const b of BATCH_SIZES) {
      const cpu0 = process.cpuUsage();
      const r = await kafkaProducerBaseline({
        config: run.config,
        topic,
        organizationId: org!.organizationId,
        source: new EventSource(`${runId}k${b}`, 'bench.call', CUSTOMERS),
        batchSize: b,
        concurrency: CONCURRENCY[b]!,
        durationMs: STEP_MS,
        maxEvents: 2_000_000,
        producer,
      });
      const cpu = process.cpuUsage(cpu0);
      const cpuUsPerEvent = (cpu.user + cpu.system) / Math.max(1, r.events);
      kafkaResults[b] = {
        eventsPerSec: r.eventsPerSec,
        sendLatency: lat(r.sendLatency),
        events: r.events,
        concurrency: r.concurrency,
        cpuUsPerEvent,
      };
      log(`kafka baseline batch ${b}: ${fmtInt(r.eventsPerSec)} events/s, ${fmtNum(cpuUsPerEvent, 1)} CPU µs/event (bench process)`);
    }
    await producer.disconnect();
    return { topic, byBatch: kafkaResults };
  });

  await phase('ingest', async () => {
    // Its own topic, so that the aggregator of the later phases does not have to chew through these events.
    const topic = await newTopic('ingest');
    const gw = new ServiceProcess(
      'gateway',
      PORTS.gateway,
      { ...run.env, ...portsEnv, KAFKA_EVENTS_TOPIC: topic },
      path.join(logDir, 'ingest'),
    );
    allProcesses.push(gw);
    await gw.start();
    const client = new GatewayClient(gw.url, org!.apiKey, 64);
    let warmupEvents = 0;
    try {
      // warm-up: API key cache, Kafka metadata, JIT
      const warmup = await closedLoop({
        client,
        source: new EventSource(`${runId}w`, 'bench.warmup', CUSTOMERS),
        batchSize: 100,
        concurrency: 4,
        durationMs: 1_000,
        maxEvents: 20_000,
      });
      warmupEvents = warmup.acceptedEvents;
      for (const b of BATCH_SIZES) {
        const gwCpu0 = gw.cpuSeconds();
        const cpu0 = process.cpuUsage();
        const r = await closedLoop({
          client,
          source: new EventSource(`${runId}g${b}`, 'bench.call', CUSTOMERS),
          batchSize: b,
          concurrency: CONCURRENCY[b]!,
          durationMs: STEP_MS,
          maxEvents: 2_000_000,
        });
        const gwCpu1 = gw.cpuSeconds();
        const cpu = process.cpuUsage(cpu0);
        const events = Math.max(1, r.acceptedEvents);
        const gatewayCpuUsPerEvent = gwCpu0 !== null && gwCpu1 !== null ? ((gwCpu1 - gwCpu0) * 1e6) / events : null;
        ingestResults[b] = {
          eventsPerSec: r.eventsPerSec,
          requestLatency: lat(r.requestLatency),
          events: r.acceptedEvents,
          concurrency: r.concurrency,
          statusCounts: r.statusCounts,
          gatewayCpuUsPerEvent,
          loadGeneratorCpuUsPerEvent: (cpu.user + cpu.system) / events,
          loadavg1m: os.loadavg()[0]!,
        };
        maxIngestRate = Math.max(maxIngestRate, r.eventsPerSec);
        log(
          `gateway batch ${b}: ${fmtInt(r.eventsPerSec)} events/s, gateway ${fmtNum(gatewayCpuUsPerEvent ?? Number.NaN, 1)} CPU µs/event (statuses ${JSON.stringify(r.statusCounts)})`,
        );
      }
    } finally {
      client.close();
      await gw.stop();
    }
    const ratios = Object.fromEntries(
      BATCH_SIZES.map((b) => [
        b,
        kafkaResults[b] && ingestResults[b] ? ingestResults[b]!.eventsPerSec / kafkaResults[b]!.eventsPerSec : null,
      ]),
    );
    // warmupEvents: for a CPU profile of the gateway (its window includes the warm-up), see bench/lib/prof-stages.ts
    return { byBatch: ingestResults, ratioGatewayToKafka: ratios, maxEventsPerSec: maxIngestRate, warmupEvents };
  });

  await phase('e2e', async () => {
    const gw = service('gateway');
    await gw.start();
    const agg = service('aggregator');
    await agg.start();
    const client = new GatewayClient(gw.url, e2eOrg.apiKey, 16);
    const fromMs = Date.now() - 60 * 60_000;
    const t0 = Date.now();
    const cpu = cpuMeter(agg);
    const load = await closedLoop({
      client,
      source: new EventSource(`${runId}e`, 'bench.e2e', CUSTOMERS),
      batchSize: 1000,
      concurrency: 8,
      durationMs: Math.max(60_000, budgetLeft() - 150_000),
      maxEvents: E2E_EVENTS,
      retry: true,
    });
    client.close();
    const acked = load.acceptedEvents;
    log(`e2e: ${fmtInt(acked)} events acknowledged in ${fmtNum(load.elapsedMs / 1000, 1)} s; waiting for aggregates`);
    const q = {
      organizationId: e2eOrg.organizationId,
      metricId: e2eOrg.metricId,
      eventName: e2eOrg.eventName,
      customers: CUSTOMERS,
      fromMs,
      toMs: Date.now() + 60 * 60_000,
    };
    let seen = 0;
    let visibleAt = 0;
    let lastProgressAt = Date.now();
    let stalled = false;
    const deadline = Date.now() + Math.max(60_000, budgetLeft() - 120_000);
    for (;;) {
      const before = seen;
      seen = await aggregateTotal(ch, q).catch(() => seen);
      if (seen !== before) lastProgressAt = Date.now();
      if (seen >= acked) {
        visibleAt = Date.now();
        break;
      }
      // no progress for 90 s: the pipeline is stuck, report it instead of burning the time budget
      if (Date.now() - lastProgressAt > 90_000) {
        stalled = true;
        log(`e2e: no progress for 90 s at ${fmtInt(seen)} of ${fmtInt(acked)}`);
        break;
      }
      if (Date.now() > deadline) break;
      await sleep(250);
    }
    const cpuUse = cpu(acked);
    const raw = await rawCount(ch, run.config.clickhouse.database, e2eOrg.organizationId);
    const totalMs = visibleAt ? visibleAt - t0 : null;
    log(
      `e2e: aggregator ${fmtNum(cpuUse.aggregatorCpuMsPer1kEvents ?? Number.NaN)} / ClickHouse ${fmtNum(cpuUse.clickhouseCpuMsPer1kEvents ?? Number.NaN)} CPU ms per 1,000 events`,
    );
    return {
      events: E2E_EVENTS,
      cpu: cpuUse,
      storage: await storagePerEvent(acked).catch((err) => ({ error: String(err) })),
      acknowledged: acked,
      ingestSeconds: load.elapsedMs / 1000,
      ingestEventsPerSec: load.eventsPerSec,
      visibleInAggregates: seen,
      rawFinalCount: raw,
      complete: visibleAt > 0,
      stalled,
      firstPostToAllVisibleSeconds: totalMs === null ? null : totalMs / 1000,
      sustainedEventsPerSec: totalMs === null ? null : acked / (totalMs / 1000),
    };
  });

  await phase('freshness', async () => {
    // half of the maximum rate the whole pipeline sustains (the e2e run), else of the gateway's
    const e2eRate = (phases.e2e as { sustainedEventsPerSec?: number } | undefined)?.sustainedEventsPerSec;
    const maxRate = Math.min(maxIngestRate || Infinity, e2eRate || Infinity);
    const rate = Math.max(500, Math.floor((Number.isFinite(maxRate) ? maxRate : 10_000) / 2));
    const gw = service('gateway');
    await gw.start();
    await service('aggregator').start();
    const loadClient = new GatewayClient(gw.url, fOrg.apiKey, 16);
    const probeClient = new GatewayClient(gw.url, fOrg.apiKey, 2);
    const fromMs = Date.now() - 60 * 60_000;
    let stop = false;
    const loadP = openLoop({
      client: loadClient,
      source: new EventSource(`${runId}f`, 'bench.fresh', CUSTOMERS),
      eventsPerSec: rate,
      batchSize: 100,
      durationMs: 40_000,
      shouldStop: () => stop,
    });
    const samples: number[] = [];
    const ackLatency: number[] = [];
    const probeCustomer = 'probe_customer';
    const probeSource = new EventSource(`${runId}p`, 'bench.fresh', [probeCustomer]);
    const q = {
      organizationId: fOrg.organizationId,
      metricId: fOrg.metricId,
      eventName: fOrg.eventName,
      customers: [probeCustomer],
      fromMs,
      toMs: Date.now() + 60 * 60_000,
    };
    let expected = 0;
    let misses = 0;
    const phaseEnd = Date.now() + 30_000;
    await sleep(2_000); // let the open loop reach its rate before probing
    while (Date.now() < phaseEnd) {
      const p = await probeOnce(probeClient, probeSource, q, expected + 1, 30_000);
      if (!p) {
        misses++;
        continue;
      }
      expected++;
      ackLatency.push(p.ackMs);
      if (p.visibleMs !== null) samples.push(p.visibleMs);
      else misses++;
    }
    stop = true;
    const loadRes = await loadP;
    loadClient.close();
    probeClient.close();
    return {
      targetEventsPerSec: rate,
      achievedEventsPerSec: loadRes.achievedEventsPerSec,
      failedRequests: loadRes.failedRequests,
      probes: samples.length,
      probeMisses: misses,
      freshnessDefinition: 'time from posting a probe event until queryUsage includes it (polled every 20 ms)',
      freshness: lat(samples),
      probeAckLatency: lat(ackLatency),
    };
  });

  // trickle (issue #18): an idle-ish deployment at BENCH_TRICKLE_RATE (20) events/s, one event per
  // request, for BENCH_TRICKLE_SECONDS (45): aggregator and ClickHouse CPU per 1,000 events and share of
  // a core, next to 10 s with no events at all. Compare with the e2e phase's burst CPU per 1,000 events.
  await phase('trickle', async () => {
    const rate = Number(process.env.BENCH_TRICKLE_RATE ?? 20);
    const seconds = Number(process.env.BENCH_TRICKLE_SECONDS ?? 45);
    const gw = service('gateway');
    await gw.start();
    const agg = service('aggregator');
    await agg.start();
    // The phases before (1M events e2e) leave ClickHouse merging their parts for a minute or more; an
    // idle-ish deployment has no such backlog, so wait (bounded) until no merge has run for 5 s.
    const settleStarted = Date.now();
    let quietSince = Date.now();
    while (Date.now() - settleStarted < 180_000 && Date.now() - quietSince < 5_000) {
      const rs = await ch.query({ query: 'SELECT count() AS n FROM system.merges', format: 'JSONEachRow' });
      if (Number((await rs.json<{ n: string }>())[0]?.n ?? 0) > 0) quietSince = Date.now();
      await sleep(500);
    }
    const mergeSettleSeconds = (Date.now() - settleStarted) / 1000;
    log(`trickle: waited ${fmtNum(mergeSettleSeconds, 1)} s for ClickHouse's merges of the earlier phases to finish`);
    const idleMeter = cpuMeter(agg);
    const idleCounters = await clickhouseCounterMeter();
    await sleep(10_000);
    const idle = idleMeter(0);
    const idleClickhousePerSecond = await idleCounters();
    const client = new GatewayClient(gw.url, e2eOrg.apiKey, 4);
    const meter = cpuMeter(agg);
    const counters = await clickhouseCounterMeter();
    const r = await openLoop({
      client,
      source: new EventSource(`${runId}t`, e2eOrg.eventName, CUSTOMERS),
      eventsPerSec: rate,
      batchSize: 1,
      durationMs: seconds * 1000,
      maxInFlight: 4,
    });
    const use = meter(r.accepted);
    const clickhousePerSecond = await counters();
    client.close();
    log(
      `trickle ${rate}/s: ClickHouse per second ${Object.entries(clickhousePerSecond)
        .map(([k, v]) => `${k} ${fmtNum(v, 1)}`)
        .join(', ')}`,
    );
    log(
      `trickle ${rate}/s: aggregator ${fmtNum(use.aggregatorCpuMsPer1kEvents ?? Number.NaN)} / ClickHouse ${fmtNum(use.clickhouseCpuMsPer1kEvents ?? Number.NaN)} CPU ms per 1,000 events; core share ${fmtNum(use.aggregatorCoreShare ?? Number.NaN, 3)} / ${fmtNum(use.clickhouseCoreShare ?? Number.NaN, 3)}`,
    );
    return {
      rate,
      accepted: r.accepted,
      achievedEventsPerSec: r.achievedEventsPerSec,
      cpu: use,
      clickhousePerSecond,
      mergeSettleSeconds,
      idle: {
        aggregatorCoreShare: idle.aggregatorCoreShare,
        clickhouseCoreShare: idle.clickhouseCoreShare,
        seconds: idle.measuredSeconds,
        clickhousePerSecond: idleClickhousePerSecond,
      },
    };
  });

  // metrics (issue #18): many metrics on ONE event name. For each count in BENCH_METRICS_COUNTS (100,1000):
  // a fresh organization with that many metrics of every kind (count, sum, max, unique, latest; filters
  // and groups), all backfilled before measuring, then BENCH_METRICS_RATE (200) events/s for
  // BENCH_METRICS_SECONDS (20) with a probe each second: freshness (post -> visible in queryUsage of the
  // first metric), and aggregator / ClickHouse CPU per 1,000 events. Target: 1,000 metrics, p99 < 2 s.
  await phase('metrics', async () => {
    const counts = (process.env.BENCH_METRICS_COUNTS ?? '100,1000').split(',').map(Number);
    const rate = Number(process.env.BENCH_METRICS_RATE ?? 200);
    const seconds = Number(process.env.BENCH_METRICS_SECONDS ?? 20);
    const gw = service('gateway');
    await gw.start();
    const agg = service('aggregator');
    await agg.start();
    const out: Record<string, unknown> = {};
    for (const count of counts) {
      const eventName = `bench.metrics${count}`;
      const o = await createBenchOrg(pool, eventName);
      const kinds = [
        { aggregation: 'sum', property: 'tokens', filters: [], groupBy: ['region'] },
        { aggregation: 'max', property: 'tokens', filters: [{ property: 'region', operator: 'equals', value: 'eu' }], groupBy: [] },
        { aggregation: 'unique_count', property: 'tokens', filters: [], groupBy: [] },
        { aggregation: 'latest', property: 'tokens', filters: [{ property: 'tokens', operator: 'gt', value: 2 }], groupBy: [] },
        { aggregation: 'count', property: null, filters: [{ property: 'tokens', operator: 'lt', value: 8 }], groupBy: ['region'] },
      ];
      const defs: MetricDefinition[] = [];
      for (let i = 1; i < count; i++) {
        const k = kinds[i % kinds.length]!;
        defs.push({ organizationId: o.organizationId, metricId: `m${i}`, version: 1, eventName, ...k } as MetricDefinition);
      }
      for (let i = 0; i < defs.length; i += 200) {
        const part = defs.slice(i, i + 200);
        await pool.query(
          `INSERT INTO billable_metrics (organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by)
           SELECT $1, m, 1, m, $2, a, p, f::jsonb, g::jsonb FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS t(m, a, p, f, g)`,
          [
            o.organizationId,
            eventName,
            part.map((d) => d.metricId),
            part.map((d) => d.aggregation),
            part.map((d) => d.property),
            part.map((d) => JSON.stringify(d.filters)),
            part.map((d) => JSON.stringify(d.groupBy)),
          ],
        );
      }
      // every version backfilled (no events yet: quick) before the measurement
      const readyStarted = Date.now();
      const first: MetricDefinition = {
        organizationId: o.organizationId,
        metricId: o.metricId,
        version: 1,
        eventName,
        aggregation: 'count',
        property: null,
        filters: [],
        groupBy: [],
      };
      for (const d of [first, ...defs]) {
        while (Date.now() - readyStarted < 300_000 && (await metricVersionStatus(ch, d).catch(() => 'pending')) !== 'ready')
          await sleep(250);
      }
      const readySeconds = (Date.now() - readyStarted) / 1000;
      const client = new GatewayClient(gw.url, o.apiKey, 4);
      const probeClient = new GatewayClient(gw.url, o.apiKey, 1);
      const meter = cpuMeter(agg);
      let stop = false;
      const loadP = openLoop({
        client,
        source: new EventSource(`${runId}m${count}`, eventName, CUSTOMERS),
        eventsPerSec: rate,
        batchSize: 10,
        durationMs: seconds * 1000,
        shouldStop: () => stop,
      });
      const probe = new EventSource(`${runId}mp${count}`, eventName, ['probe_customer']);
      const q = {
        organizationId: o.organizationId,
        metricId: o.metricId,
        eventName,
        customers: ['probe_customer'],
        fromMs: Date.now() - 3_600_000,
        toMs: Date.now() + 3_600_000,
      };
      const samples: number[] = [];
      let expected = 0;
      let misses = 0;
      const end = Date.now() + seconds * 1000;
      await sleep(1_000);
      while (Date.now() < end) {
        const sentAt = nowMs();
        const p = await probeOnce(probeClient, probe, q, expected + 1, 60_000);
        if (!p) {
          misses++;
          continue;
        }
        expected++;
        if (p.visibleMs !== null) samples.push(p.visibleMs);
        else misses++;
        await sleep(Math.max(0, 1_000 - (nowMs() - sentAt)));
      }
      stop = true;
      const load = await loadP;
      const use = meter(load.accepted + expected);
      client.close();
      probeClient.close();
      const fresh = lat(samples);
      log(
        `metrics ${count} on one event name @ ${rate}/s: freshness p50 ${fmtNum(fresh.p50Ms, 0)} / p99 ${fmtNum(fresh.p99Ms, 0)} ms (${samples.length} probes, ${misses} missed); CPU per 1,000 events aggregator ${fmtNum(use.aggregatorCpuMsPer1kEvents ?? Number.NaN)} / ClickHouse ${fmtNum(use.clickhouseCpuMsPer1kEvents ?? Number.NaN)} ms; backfilled in ${fmtNum(readySeconds, 1)} s`,
      );
      out[String(count)] = {
        rate,
        seconds,
        accepted: load.accepted,
        freshness: fresh,
        probes: samples.length,
        probeMisses: misses,
        cpu: use,
        readySeconds,
      };
    }
    return out;
  });

  await phase('chkafka', async () => {
    const events = E2E_EVENTS;
    const partitions = run.config.kafka.eventsPartitions;
    const topic = await newTopic('json', partitions);
    const engine = new ClickHouseKafkaEngine(
      ch,
      run.config,
      run.config.clickhouse.database,
      `bench_${runId}_chk`,
      topic,
      `bench_${runId}_chk`,
    );
    await engine.create(partitions);
    try {
      const chOrg = `org_chk_${runId}`;
      const t0 = Date.now();
      const ch0 = clickhouseCpuSeconds();
      const prod = await kafkaProducerBaseline({
        config: run.config,
        topic,
        organizationId: chOrg,
        source: new EventSource(`${runId}c`, 'bench.call', CUSTOMERS),
        batchSize: 1000,
        concurrency: 8,
        durationMs: Math.max(60_000, budgetLeft() - 150_000),
        maxEvents: events,
        encode: jsonEncoder,
      });
      const produceMs = Date.now() - t0;
      log(`chkafka: ${fmtInt(prod.events)} JSON events produced in ${fmtNum(produceMs / 1000, 1)} s; waiting for the Kafka engine`);
      const w = await engine.waitForCount(chOrg, prod.events, Math.max(60_000, budgetLeft() - 90_000));
      const totalMs = w.atMs - t0;
      const ch1 = clickhouseCpuSeconds();
      const clickhouseCpuMsPer1kEvents = ch0 === null || ch1 === null ? null : ((ch1 - ch0) * 1e6) / Math.max(1, prod.events);
      // Consumption alone: a second Kafka-engine table (new group, offsets at 0) drains the full topic.
      let drain: Record<string, unknown> = {};
      if (w.reached && budgetLeft() > 60_000) {
        const drainer = new ClickHouseKafkaEngine(
          ch,
          run.config,
          run.config.clickhouse.database,
          `bench_${runId}_chd`,
          topic,
          `bench_${runId}_chd`,
        );
        const d0 = Date.now();
        await drainer.create(partitions);
        try {
          const dw = await drainer.waitForCount(chOrg, prod.events, Math.max(30_000, budgetLeft() - 60_000));
          drain = {
            drainComplete: dw.reached,
            drainSeconds: (dw.atMs - d0) / 1000,
            drainEventsPerSec: dw.reached ? prod.events / ((dw.atMs - d0) / 1000) : null,
          };
        } finally {
          await drainer.drop();
        }
      }
      return {
        ...drain,
        format: 'JSONEachRow on a parallel topic (18.16 has no Avro input format)',
        clickhouseCpuMsPer1kEvents,
        events: prod.events,
        produceSeconds: produceMs / 1000,
        produceEventsPerSec: prod.eventsPerSec,
        complete: w.reached,
        counted: w.count,
        firstProduceToAllVisibleSeconds: totalMs / 1000,
        sustainedEventsPerSec: w.reached ? prod.events / (totalMs / 1000) : null,
      };
    } finally {
      await engine.drop();
    }
  });

  await phase('close', () =>
    closePhase({
      config: run.config,
      pool,
      ch,
      subscriptions: CLOSE_SUBSCRIPTIONS,
      baselineSample: CLOSE_BASELINE,
      concurrency: CLOSE_CONCURRENCY,
      log,
    }),
  );

  await phase('entitlement', async () => {
    const gw = service('gateway');
    await gw.start();
    await service('aggregator').start();
    const billing = service('billing');
    await billing.start();
    // Background ingest at half the gateway's maximum (the ingest phase's best events/s) or BENCH_INGEST_RATE;
    // without either, 10,000 events/s (half the 20,000 assumed maximum).
    const rate = ENT_INGEST_RATE ?? Math.max(1000, Math.floor((maxIngestRate || 20_000) / 2));
    const rateSource = ENT_INGEST_RATE
      ? 'BENCH_INGEST_RATE'
      : maxIngestRate
        ? 'half the ingest phase maximum'
        : 'default (no ingest phase)';
    const loadClient = new GatewayClient(gw.url, eOrg.apiKey, 16);
    let stop = false;
    const loadP = openLoop({
      client: loadClient,
      source: new EventSource(`${runId}n`, 'bench.ent', CUSTOMERS),
      eventsPerSec: rate,
      batchSize: 100,
      durationMs: 400_000,
      shouldStop: () => stop,
    });
    try {
      const res = await entitlementPhase({
        billingUrl: billing.url,
        redisUrl: run.config.redisUrl,
        org: eOrg,
        pool,
        customers: CUSTOMERS,
        durationMs: ENT_CLOSED ? 12_000 : 0,
        concurrency: 32,
        open: {
          seconds: ENT_SECONDS,
          warmupSeconds: 2,
          rows: ENT_ROWS,
          maxOutstanding: 1_000,
          timeoutMs: 2_000,
          tag: `${runId}ck`,
        },
        log,
      });
      // Diagnostic: core's queryUsage alone (what a check waits for on a usage-cache miss), same load.
      const monthStart = new Date();
      monthStart.setUTCDate(1);
      monthStart.setUTCHours(0, 0, 0, 0);
      const qLat: number[] = [];
      const qEnd = nowMs() + 4_000;
      for (let i = 0; nowMs() < qEnd; i++) {
        const t = nowMs();
        await aggregateTotal(ch, {
          organizationId: eOrg.organizationId,
          metricId: 'bench_api_calls',
          eventName: eOrg.eventName,
          customers: [CUSTOMERS[i % CUSTOMERS.length]!],
          fromMs: monthStart.getTime(),
          toMs: Date.now() + 86_400_000 + 1,
        });
        qLat.push(nowMs() - t);
      }
      stop = true;
      const l = await loadP;
      return {
        ingestTargetEventsPerSec: rate,
        ingestRateSource: rateSource,
        backgroundIngest: { achievedEventsPerSec: l.achievedEventsPerSec, failedRequests: l.failedRequests, seconds: l.elapsedMs / 1000 },
        ...res,
        queryUsageLatency: lat(qLat),
      };
    } finally {
      stop = true;
      const l = await loadP;
      loadClient.close();
      log(`entitlement: background ingest ${fmtInt(l.achievedEventsPerSec)} events/s (target ${fmtInt(rate)})`);
    }
  });
} finally {
  for (const s of allProcesses) await s.stop().catch(() => undefined);
  await ch.close().catch(() => undefined);
  await pool.end().catch(() => undefined);
  await privateStack?.destroy().catch(() => undefined);
}

// ------------------------------------------------------------------------------------------------
const memory: Record<string, { peakRssMiB: number; processes: number }> = {};
for (const s of allProcesses) {
  const m = (memory[s.name] ??= { peakRssMiB: 0, processes: 0 });
  m.peakRssMiB = Math.max(m.peakRssMiB, s.peakRssBytes / 1024 / 1024);
  m.processes += s.starts;
}
const result = {
  runId,
  startedAt: new Date(started).toISOString(),
  durationSeconds: (Date.now() - started) / 1000,
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadavgAtStart,
    loadavgAtEnd: os.loadavg(),
  },
  stack: usePrivate ? `private (Kafka 384 MiB heap, ClickHouse, Redis on ports ${BASE_PORT}..${BASE_PORT + 4})` : 'shared local stack',
  settings: { stepSeconds: STEP_MS / 1000, e2eEvents: E2E_EVENTS, concurrency: CONCURRENCY, partitions: run.config.kafka.eventsPartitions },
  phases,
  memory,
};
const resultsDir = path.join(ROOT, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `${new Date(started).toISOString().replace(/[:.]/g, '-')}-${runId}.json`);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');

// One-screen summary.
// biome-ignore lint/suspicious/noExplicitAny: the summary reads whichever fields each phase reported
const P = phases as Record<string, any>;
const st = (n: string) => (P[n] ? (P[n].status === 'ok' ? '' : ` (${P[n].status})`) : ' (not run)');
const rows: (string | number)[][] = [['measurement', 'meterline', 'baseline', 'ratio']];
for (const b of BATCH_SIZES) {
  const g = ingestResults[b]?.eventsPerSec;
  const k = kafkaResults[b]?.eventsPerSec;
  rows.push([
    `ingest events/s, batch ${b} (c=${CONCURRENCY[b]})${st('ingest')}`,
    fmtInt(g),
    `${fmtInt(k)} kafkajs`,
    g && k ? fmtNum(g / k) : '-',
  ]);
}
const e2e = P.e2e ?? {};
const chk = P.chkafka ?? {};
rows.push([
  `e2e ${fmtInt(E2E_EVENTS)} events: first post -> all visible (s)${st('e2e')}`,
  fmtNum(e2e.firstPostToAllVisibleSeconds, 1),
  `${fmtNum(chk.firstProduceToAllVisibleSeconds, 1)} CH Kafka engine`,
  '-',
]);
rows.push([
  `e2e sustained events/s${st('e2e')}`,
  fmtInt(e2e.sustainedEventsPerSec),
  `${fmtInt(chk.sustainedEventsPerSec)} CH Kafka engine`,
  e2e.sustainedEventsPerSec && chk.sustainedEventsPerSec ? fmtNum(e2e.sustainedEventsPerSec / chk.sustainedEventsPerSec) : '-',
]);
rows.push([
  `e2e CPU ms per 1,000 events: aggregator / ClickHouse${st('e2e')}`,
  e2e.cpu ? `${fmtNum(e2e.cpu.aggregatorCpuMsPer1kEvents)} / ${fmtNum(e2e.cpu.clickhouseCpuMsPer1kEvents)}` : '-',
  chk.clickhouseCpuMsPer1kEvents != null ? `${fmtNum(chk.clickhouseCpuMsPer1kEvents)} CH Kafka engine` : '-',
  '-',
]);
const tr = P.trickle ?? {};
rows.push([
  `trickle ${fmtInt(tr.rate)} ev/s CPU ms per 1,000 events: aggregator / ClickHouse${st('trickle')}`,
  tr.cpu ? `${fmtNum(tr.cpu.aggregatorCpuMsPer1kEvents)} / ${fmtNum(tr.cpu.clickhouseCpuMsPer1kEvents)}` : '-',
  e2e.cpu ? `${fmtNum(e2e.cpu.aggregatorCpuMsPer1kEvents)} / ${fmtNum(e2e.cpu.clickhouseCpuMsPer1kEvents)} burst (e2e)` : '-',
  tr.cpu && e2e.cpu
    ? `${fmtNum(tr.cpu.aggregatorCpuMsPer1kEvents / e2e.cpu.aggregatorCpuMsPer1kEvents, 1)} / ${fmtNum(tr.cpu.clickhouseCpuMsPer1kEvents / e2e.cpu.clickhouseCpuMsPer1kEvents, 1)}`
    : '-',
]);
rows.push([
  `trickle share of a core: aggregator / ClickHouse; target < 0.05${st('trickle')}`,
  tr.cpu ? `${fmtNum(tr.cpu.aggregatorCoreShare, 3)} / ${fmtNum(tr.cpu.clickhouseCoreShare, 3)}` : '-',
  tr.idle ? `${fmtNum(tr.idle.aggregatorCoreShare, 3)} / ${fmtNum(tr.idle.clickhouseCoreShare, 3)} idle` : '-',
  '-',
]);
rows.push([
  `storage bytes/event compressed (events / by_offset / metric_usage)${st('e2e')}`,
  e2e.storage?.totalBytesPerEvent != null
    ? `${fmtNum(e2e.storage.totalBytesPerEvent)} (${['events', 'events_by_offset', 'metric_usage'].map((t) => fmtNum(e2e.storage[t]?.bytesPerEvent)).join(' / ')})`
    : '-',
  '-',
  '-',
]);
const fr = P.freshness?.freshness;
rows.push([
  `freshness p50 / p99 ms @ ${fmtInt(P.freshness?.targetEventsPerSec)} ev/s${st('freshness')}`,
  fr ? `${fmtInt(fr.p50Ms)} / ${fmtInt(fr.p99Ms)}` : '-',
  '-',
  '-',
]);
const floor = P.floor?.concurrency32;
const ent = P.entitlement ?? {};
for (const ep of ['customer_access', 'check']) {
  const e = ent[ep];
  rows.push([
    `${ep} p50 / p99 ms${st('entitlement')}`,
    e ? `${fmtNum(e.latency.p50Ms)} / ${fmtNum(e.latency.p99Ms)}` : '-',
    floor ? `${fmtNum(floor.latency.p50Ms)} / ${fmtNum(floor.latency.p99Ms)} Redis GET` : '-',
    e && floor ? fmtNum(e.latency.p50Ms / floor.latency.p50Ms, 1) : '-',
  ]);
  rows.push([
    `${ep} requests/s${st('entitlement')}`,
    e ? fmtInt(e.requestsPerSec) : '-',
    floor ? `${fmtInt(floor.requestsPerSec)} Redis GET` : '-',
    e && floor ? fmtNum(e.requestsPerSec / floor.requestsPerSec) : '-',
  ]);
}
const ms3 = (l: { p50Ms: number; p99Ms: number; p999Ms: number }) => `${fmtNum(l.p50Ms)} / ${fmtNum(l.p99Ms)} / ${fmtNum(l.p999Ms)}`;
for (const r of Object.values(ent.openLoop ?? {}) as OpenRowResult[]) {
  rows.push([
    `open ${r.label} @ ${fmtInt(r.ratePerSec)}/s p50 / p99 / p99.9 ms${st('entitlement')}`,
    ms3(r.latency),
    `${ms3(r.floor.latency)} Redis GET`,
    fmtNum(r.latency.p99Ms / r.floor.latency.p99Ms, 1),
  ]);
  rows.push([
    `open ${r.label}: achieved/s, errors; target p99 < ${r.targetP99Ms} ms`,
    `${fmtInt(r.achievedPerSec)}, ${fmtInt(r.errorCount)}; ${r.met ? 'met' : 'MISSED'} (${r.marginMs >= 0 ? `${fmtNum(r.marginMs)} ms under` : Number.isFinite(r.marginMs) ? `${fmtNum(-r.marginMs)} ms over` : 'errors > 1%'})`,
    `${fmtInt(r.floor.achievedPerSec)}, ${fmtInt(r.floor.errorCount)} Redis GET`,
    '-',
  ]);
}
const cl = P.close ?? {};
rows.push([
  `close ${fmtInt(CLOSE_SUBSCRIPTIONS)} subscriptions, one pass (s; subs/s)${st('close')}`,
  cl.batched ? `${fmtNum(cl.batched.seconds, 1)}; ${fmtInt(cl.batched.subscriptionsPerSec)}` : '-',
  cl.baseline ? `~${fmtNum(cl.baseline.extrapolatedSeconds, 0)} one at a time (${fmtNum(cl.baseline.msPerSubscription, 1)} ms each)` : '-',
  cl.batched && cl.baseline ? fmtNum(cl.baseline.extrapolatedSeconds / cl.batched.seconds, 1) : '-',
]);
rows.push([
  `close: usage queries; target < 30 s${st('close')}`,
  cl.batched ? `${fmtInt(cl.batched.clickhouseQueries)}; ${cl.met ? 'met' : 'MISSED'}` : '-',
  cl.baseline ? `${fmtInt(cl.baseline.clickhouseQueries)} for ${fmtInt(cl.baseline.subscriptions)} one at a time` : '-',
  '-',
]);
for (const s of ['gateway', 'aggregator', 'billing'] as const) {
  rows.push([`peak RSS ${s} (MiB)`, memory[s] ? fmtInt(memory[s].peakRssMiB) : '-', '-', '-']);
}
console.log(
  `\nMeterline bench ${runId} — ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, ${fmtNum(result.durationSeconds, 0)} s, load average ${fmtNum(loadavgAtStart[0], 1)} at start (other work on the machine skews every number)`,
);
console.log(table(rows));
for (const [n, p] of Object.entries(P)) if (p.status !== 'ok') console.log(`  ${n}: ${p.status} — ${String(p.reason).split('\n')[0]}`);
console.log(`results: ${path.relative(ROOT, file)}`);
process.exit(0);
