// Fault drills: stream events with known ids through gateway -> Kafka -> aggregator -> ClickHouse while
// injecting one kind of fault at a time, repeatedly; then check that every acknowledged event is counted
// exactly once in the raw table (FINAL) and in the aggregates (queryUsage), and that no event, acknowledged
// or not, is counted twice after the clients' retries.
//
// Kafka, ClickHouse and Redis are a PrivateStack (own ports and data) because the drill kills them; the
// services run as child processes (`node --import tsx services/<name>/src/main.ts`) so they can be kill -9'd.
// Postgres is the machine's own (never stopped); the drill uses its own database, meterline_faults.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  createClickHouse,
  createPostgres,
  setupBackingServices,
  sqlIdentifier,
  sqlString,
  loadConfig,
  type ClickHouseClient,
  type Config,
} from '@meterline/core';
import { PrivateStack } from '../support/private-stack.ts';
import { ServiceProcess, portInUse, ROOT } from '../../bench/lib/proc.ts';
import { EventSource } from '../../bench/lib/load.ts';
import { createBenchOrg, ensurePostgres, ensureStackInstalled, type BenchOrg } from '../../bench/lib/env.ts';
import { aggregateTotal } from '../../bench/lib/usage.ts';
import { sleep, table } from '../../bench/lib/stats.ts';
import { Streamer } from './streamer.ts';

export const FAULT_KINDS = ['aggregator_kill9', 'gateway_kill9', 'kafka_restart', 'clickhouse_stop_30s', 'redis_restart'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface DrillOptions {
  /** A free range of 10 ports: PrivateStack uses base..base+4, the services base+5..base+7. */
  basePort: number;
  faults?: readonly FaultKind[];
  repetitions: number;
  eventsPerSec: number;
  batchSize: number;
  concurrency: number;
  /** Normal streaming before the first and between injections (ms). */
  steadyMs: number;
  clickhouseDownMs: number;
  /** How long to wait for the counts to settle after streaming stops. */
  settleTimeoutMs: number;
  log?: (msg: string) => void;
}

export interface FaultRow {
  fault: FaultKind;
  injected: number;
  sent: number;
  acknowledged: number;
  unacknowledged: number;
  countedRaw: number;
  countedAggregates: number | null;
  lost: number;
  doubled: number;
  retries: number;
  /** Events first unacknowledged (failed attempt), then posted again with the same ids. */
  retriedEvents: number;
  notes: string[];
}

export interface DrillReport {
  rows: FaultRow[];
  startedAt: string;
  durationSeconds: number;
}

export async function runDrill(opts: DrillOptions): Promise<DrillReport> {
  const log = opts.log ?? ((m: string) => console.error(`[drill] ${m}`));
  const started = Date.now();
  const runId = `f${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const kinds = opts.faults ?? FAULT_KINDS;

  for (let port = opts.basePort; port <= opts.basePort + 7; port++) {
    if (await portInUse(port))
      throw new Error(`port ${port} is in use: an interrupted drill left something running on ${opts.basePort}..${opts.basePort + 7}`);
  }
  ensureStackInstalled();
  ensurePostgres();
  const stack = new PrivateStack(opts.basePort);
  const onSignal = () => {
    void stack.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const env: Record<string, string> = {
    KAFKA_BROKERS: stack.kafkaBrokers,
    CLICKHOUSE_URL: stack.clickhouseUrl,
    REDIS_URL: stack.redisUrl,
    DATABASE_URL: process.env.FAULTS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/meterline_faults',
    CLICKHOUSE_DATABASE: 'meterline_faults',
    KAFKA_EVENTS_TOPIC: `faults_${runId}_events`,
    KAFKA_DEAD_LETTER_TOPIC: `faults_${runId}_dead`,
    AGGREGATOR_GROUP_ID: `faults_${runId}_aggregator`,
    KAFKA_CLIENT_ID: `faults_${runId}`,
    GATEWAY_PORT: String(opts.basePort + 5),
    AGGREGATOR_PORT: String(opts.basePort + 6),
    BILLING_PORT: String(opts.basePort + 7),
    LOG_LEVEL: 'warn',
  };
  const config: Config = loadConfig({ ...process.env, ...env });
  const logDir = path.join(ROOT, '.cache', 'faults', runId);
  const gateway = new ServiceProcess('gateway', opts.basePort + 5, env, logDir);
  const aggregator = new ServiceProcess('aggregator', opts.basePort + 6, env, logDir);
  const pool = createPostgres(config.postgresUrl, { max: 2, applicationName: 'meterline-faults' });
  let ch: ClickHouseClient | null = null;
  const rows: FaultRow[] = [];
  try {
    log(`private stack on ports ${opts.basePort}..${opts.basePort + 4}; logs in ${path.relative(ROOT, logDir)}`);
    await stack.start('redis');
    await stack.start('clickhouse');
    await stack.start('kafka');
    await setupBackingServices(config);
    ch = createClickHouse(config.clickhouse);
    const org = await createBenchOrg(pool, 'drill.call');
    await gateway.start();
    await aggregator.start();
    const fromMs = Date.now() - 60 * 60_000;

    const streamers = new Map<FaultKind, { streamer: Streamer; customers: string[]; injected: number; notes: string[] }>();
    for (const kind of kinds) {
      const customers = Array.from({ length: 5 }, (_, i) => `${kind}_${i}`);
      const streamer = new Streamer(gateway.url, org.apiKey, new EventSource(`${runId}-${kind}`, org.eventName, customers), {
        eventsPerSec: opts.eventsPerSec,
        batchSize: opts.batchSize,
        concurrency: opts.concurrency,
        retryDeadlineMs: 180_000,
      });
      const entry = { streamer, customers, injected: 0, notes: [] as string[] };
      streamers.set(kind, entry);
      log(`${kind}: streaming ${opts.eventsPerSec} events/s`);
      streamer.start();
      await sleep(opts.steadyMs);
      for (let rep = 0; rep < opts.repetitions; rep++) {
        const before = Date.now();
        await inject(kind, { stack, gateway, aggregator, streamer, clickhouseDownMs: opts.clickhouseDownMs, notes: entry.notes });
        entry.injected++;
        // recovered = the services answer again and the pipeline acknowledges new events
        await gateway.start();
        await aggregator.start();
        await streamer.waitForAckAfter(Date.now(), 180_000);
        log(`${kind}: injection ${rep + 1}/${opts.repetitions} done, recovered after ${((Date.now() - before) / 1000).toFixed(1)} s`);
        await sleep(opts.steadyMs);
      }
      await streamer.stop();
      log(`${kind}: sent ${streamer.sent}, acknowledged ${streamer.acked.length}, retries ${streamer.retries}`);
    }

    for (const kind of kinds) {
      const { streamer, customers, injected, notes } = streamers.get(kind)!;
      const counts = await settleClickHouse(ch, config, org, customers, streamer.acked.length, fromMs, opts.settleTimeoutMs);
      rows.push(verdict(kind, injected, streamer, counts, notes));
    }
  } finally {
    await gateway.stop().catch(() => undefined);
    await aggregator.stop().catch(() => undefined);
    await ch?.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await stack.destroy().catch(() => undefined);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { rows, startedAt: new Date(started).toISOString(), durationSeconds: (Date.now() - started) / 1000 };
}

async function inject(
  kind: FaultKind,
  c: {
    stack: PrivateStack;
    gateway: ServiceProcess;
    aggregator: ServiceProcess;
    streamer: Streamer;
    clickhouseDownMs: number;
    notes: string[];
  },
): Promise<void> {
  switch (kind) {
    case 'aggregator_kill9':
      await c.aggregator.kill9();
      await sleep(500);
      await c.aggregator.start();
      return;
    case 'gateway_kill9': {
      // prefer a moment with several requests outstanding; at least one
      let inFlight = await c.streamer.waitForInFlight(2, 5_000);
      if (inFlight === 0) inFlight = await c.streamer.waitForInFlight(1, 10_000);
      await c.gateway.kill9();
      c.notes.push(`requests in flight at kill: ${inFlight}`);
      await sleep(500);
      await c.gateway.start();
      return;
    }
    case 'kafka_restart':
      await c.stack.restart('kafka');
      return;
    case 'clickhouse_stop_30s':
      await c.stack.stop('clickhouse');
      await sleep(c.clickhouseDownMs);
      await c.stack.start('clickhouse');
      return;
    case 'redis_restart':
      await c.stack.restart('redis');
      return;
  }
}

interface Counts {
  /** idempotency id -> rows in the raw table (FINAL) */
  perId: Map<string, number>;
  aggregates: number | null;
}

async function rawPerId(
  ch: ClickHouseClient,
  db: string,
  organizationId: string,
  customers: readonly string[],
): Promise<Map<string, number>> {
  const rs = await ch.query({
    query: `SELECT idempotency_id, count() AS c FROM ${sqlIdentifier(db)}.events FINAL
            WHERE organization_id = ${sqlString(organizationId)} AND customer_id IN (${customers.map(sqlString).join(',')})
            GROUP BY idempotency_id`,
    format: 'JSONEachRow',
  });
  const m = new Map<string, number>();
  for (const r of await rs.json<{ idempotency_id: string; c: string | number }>()) m.set(r.idempotency_id, Number(r.c));
  return m;
}

/** Polls until raw and aggregates agree with each other and hold at least every acknowledged event (or the deadline). */
async function settleClickHouse(
  ch: ClickHouseClient,
  config: Config,
  org: BenchOrg,
  customers: string[],
  acked: number,
  fromMs: number,
  timeoutMs: number,
): Promise<Counts> {
  const deadline = Date.now() + timeoutMs;
  let last: Counts = { perId: new Map(), aggregates: null };
  for (;;) {
    try {
      const perId = await rawPerId(ch, config.clickhouse.database, org.organizationId, customers);
      const aggregates = await aggregateTotal(ch, {
        organizationId: org.organizationId,
        metricId: org.metricId,
        eventName: org.eventName,
        customers,
        fromMs,
        toMs: Date.now() + 60 * 60_000,
      });
      last = { perId, aggregates };
      if (perId.size >= acked && aggregates === perId.size) return last;
    } catch {
      /* ClickHouse still starting */
    }
    if (Date.now() > deadline) return last;
    await sleep(500);
  }
}

/** Before the aggregator exists: read the whole events topic and count each id's records. */
function verdict(kind: FaultKind, injected: number, s: Streamer, counts: Counts, notes: string[]): FaultRow {
  let lost = 0;
  for (const id of s.acked) if (!counts.perId.has(id)) lost++;
  let doubled = 0;
  for (const c of counts.perId.values()) if (c > 1) doubled += c - 1;
  const distinct = counts.perId.size;
  if (counts.aggregates !== null) {
    if (counts.aggregates < distinct) lost += distinct - counts.aggregates;
    if (counts.aggregates > distinct) doubled += counts.aggregates - distinct;
  }
  return {
    fault: kind,
    injected,
    sent: s.sent,
    acknowledged: s.acked.length,
    unacknowledged: s.unacked.length,
    countedRaw: distinct,
    countedAggregates: counts.aggregates,
    lost,
    doubled,
    retries: s.retries,
    retriedEvents: s.retriedEvents,
    notes,
  };
}

export function faultTable(rows: FaultRow[]): string {
  return table([
    [
      'fault',
      'times injected',
      'events sent',
      'acknowledged',
      'counted (raw)',
      'counted (aggregates)',
      'lost',
      'doubled',
      'retried requests',
      'retried events',
    ],
    ...rows.map((r) => [
      r.fault,
      r.injected,
      r.sent,
      r.acknowledged,
      r.countedRaw ?? '-',
      r.countedAggregates ?? '-',
      r.lost,
      r.doubled,
      r.retries,
      r.retriedEvents,
    ]),
  ]);
}
