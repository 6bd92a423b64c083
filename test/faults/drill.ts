// Fault drills: stream events with known ids through gateway -> Kafka -> aggregator -> ClickHouse while
// injecting one kind of fault at a time, repeatedly; then check that every acknowledged event is counted
// exactly once in the raw table (FINAL) and in the aggregates (queryUsage), and that no event, acknowledged
// or not, is counted twice after the clients' retries.
//
// Kinds: kill -9 of the aggregator / gateway, broker restart, ClickHouse down 30 s, Redis restart (the
// infrastructure faults); poison records produced straight to the topic (poison.ts); the aggregator
// stalled on refused writes longer than its stall threshold (stall.ts); kill -9 of a billing instance
// during consuming entitlement checks (billing-checks.ts). After each injection the drill measures how
// long until freshness is back: an event acknowledged after the fault cleared is visible in ClickHouse.
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
import { percentile, sleep, table } from '../../bench/lib/stats.ts';
import { Streamer } from './streamer.ts';
import { PoisonInjector, verifyPoison, type PoisonRecord, type PoisonVerdict } from './poison.ts';
import { stallAggregator, waitReady } from './stall.ts';
import { BillingCheckLoad, checkEventsPerCustomer, type BillingCounts } from './billing-checks.ts';
import { EVENT as CHECK_EVENT, METRIC as CHECK_METRIC } from './entitlement-drill.ts';

export const FAULT_KINDS = [
  'aggregator_kill9',
  'gateway_kill9',
  'kafka_restart',
  'clickhouse_stop_30s',
  'redis_restart',
  'poison_record',
  'aggregator_stall',
  'billing_kill9',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface DrillOptions {
  /** A free range of 10 ports: PrivateStack uses base..base+4, gateway base+5, aggregator base+6, billing base+7, base+8. */
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
  /** The aggregator's AGGREGATOR_STALL_AFTER_MS in the drill (the stall fault outlasts it). */
  stallAfterMs?: number;
  /** billing_kill9: hard limit per customer, consuming checks per second (both instances), customers. */
  billing?: { limit: number; checksPerSec: number; customers: number; exhaustTimeoutMs: number };
  /** The aggregator's AGGREGATOR_SESSION_TIMEOUT_MS: after its kill -9 the group waits this long for the dead member. */
  sessionTimeoutMs?: number;
  /**
   * Run the kinds that fault one stateless service or the topic's content (gateway_kill9, poison_record,
   * billing_kill9) at the same time as the others (compound faults; the counts stay exact per kind, the
   * recovery times overlap): the reduced drill's way to stay short. Off for measured recovery times.
   */
  overlapServiceFaults?: boolean;
  log?: (msg: string) => void;
}

export interface Injection {
  /** injection start -> fault cleared (service restarted and ready, broker back, table attached, ...) */
  faultMs: number;
  /** fault cleared -> an event acknowledged after it is visible in ClickHouse (null: not within the deadline) */
  freshAfterMs: number | null;
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
  injections: Injection[];
  /** injection start -> fresh again (s): median and worst over the injections */
  recoverP50S: number | null;
  recoverMaxS: number | null;
  /** injection start -> cleared, and cleared -> fresh again (s), medians and worst */
  faultP50S: number | null;
  freshP50S: number | null;
  freshMaxS: number | null;
  /** billing_kill9 only (units: sent = units requested, acknowledged = units granted) */
  checks?: BillingCounts;
  /** poison_record only */
  poison?: PoisonVerdict;
  /** aggregator_stall only: ms from the block to /readyz 503 naming the stalled partitions, per injection */
  stallNotReadyAfterMs?: (number | null)[];
  /** anything besides lost/doubled that fails the kind (a stall not reported, a poison record not dead-lettered, ...) */
  failures: string[];
  notes: string[];
}

export interface DrillReport {
  rows: FaultRow[];
  startedAt: string;
  durationSeconds: number;
  options: Omit<DrillOptions, 'log'>;
}

interface KindState {
  customers: string[];
  streamer: Streamer | null;
  injections: Injection[];
  notes: string[];
  failures: string[];
  /** events produced straight to the topic that must be counted once (poison_record's valid oddities) */
  mustCount: string[];
  poison: PoisonRecord[];
  stallNotReady: (number | null)[];
}

export async function runDrill(opts: DrillOptions): Promise<DrillReport> {
  const log = opts.log ?? ((m: string) => console.error(`[drill] ${m}`));
  const started = Date.now();
  const runId = `f${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const kinds = opts.faults ?? FAULT_KINDS;
  const billingOpts = opts.billing ?? { limit: 3000, checksPerSec: 40, customers: 2, exhaustTimeoutMs: 120_000 };
  const withBilling = kinds.includes('billing_kill9');
  const stallAfterMs = opts.stallAfterMs ?? 3_000;

  for (let port = opts.basePort; port <= opts.basePort + 8; port++) {
    if (await portInUse(port))
      throw new Error(`port ${port} is in use: an interrupted drill left something running on ${opts.basePort}..${opts.basePort + 8}`);
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
    // the stall fault must outlast the threshold; a short one keeps the drill short (default 30 s)
    AGGREGATOR_STALL_AFTER_MS: String(stallAfterMs),
    AGGREGATOR_LAG_INTERVAL_MS: '500',
    ...(opts.sessionTimeoutMs ? { AGGREGATOR_SESSION_TIMEOUT_MS: String(opts.sessionTimeoutMs) } : {}),
    LOG_LEVEL: 'warn',
  };
  const config: Config = loadConfig({ ...process.env, ...env });
  const logDir = path.join(ROOT, '.cache', 'faults', runId);
  const gateway = new ServiceProcess('gateway', opts.basePort + 5, env, logDir);
  const aggregator = new ServiceProcess('aggregator', opts.basePort + 6, env, logDir);
  const billing = withBilling
    ? [0, 1].map(
        (i) =>
          new ServiceProcess(
            'billing',
            opts.basePort + 7 + i,
            { ...env, BILLING_PORT: String(opts.basePort + 7 + i) },
            path.join(logDir, `billing-${i + 1}`),
          ),
      )
    : [];
  const pool = createPostgres(config.postgresUrl, { max: 2, applicationName: 'meterline-faults' });
  let ch: ClickHouseClient | null = null;
  let poisoner = null as PoisonInjector | null;
  let checks = null as BillingCheckLoad | null;
  const rows: FaultRow[] = [];
  try {
    log(`private stack on ports ${opts.basePort}..${opts.basePort + 4}; logs in ${path.relative(ROOT, logDir)}`);
    // independent components (own data dirs and ports): started side by side to keep the drill short
    // (once more after a failed start: on a machine at load 20-30 a JVM can miss stack.sh's 90 s readiness wait)
    const startComponent = (c: 'redis' | 'clickhouse' | 'kafka') =>
      stack.start(c).catch(async (err) => {
        log(`${c} did not start (${(err as Error).message.split('\n').slice(-2).join(' ')}); stopping and starting it once more`);
        await stack.stop(c).catch(() => undefined);
        await stack.start(c);
      });
    await Promise.all([startComponent('redis'), startComponent('clickhouse'), startComponent('kafka')]);
    await setupBackingServices(config);
    ch = createClickHouse(config.clickhouse);
    const org = await createBenchOrg(pool, 'drill.call');
    await Promise.all([gateway.start(), aggregator.start(), ...billing.map((b) => b.start())]);
    const fromMs = Date.now() - 60 * 60_000;
    const db = config.clickhouse.database;

    const states = new Map<FaultKind, KindState>();
    // services the drill itself has taken down right now (a kill -9 before its restart): not "exited on their own"
    const held = new Set<ServiceProcess>();
    const ensureUp = async (svc: ServiceProcess) => {
      if (!held.has(svc)) await svc.start();
    };
    const runKind = async (kind: FaultKind) => {
      const st: KindState = {
        customers: Array.from({ length: 5 }, (_, i) => `${kind}_${i}`),
        streamer: null,
        injections: [],
        notes: [],
        failures: [],
        mustCount: [],
        poison: [],
        stallNotReady: [],
      };
      states.set(kind, st);
      // a service that exits on its own (not killed by the drill) is a finding: record it, start it again
      const revive = async (during: string) => {
        for (const s of [gateway, aggregator, ...billing]) {
          if (s.running || held.has(s)) continue;
          st.failures.push(`${s.name} (port ${s.port}) exited on its own during ${during}; log: ${s.logFile}`);
          await s.start();
        }
      };

      if (kind === 'billing_kill9') {
        checks = new BillingCheckLoad(billing, org.apiKey, runId, billingOpts, held);
        await checks.setup();
        st.customers = checks.customers;
        log(`${kind}: ${billingOpts.checksPerSec} consuming checks/s to 2 billing instances, hard limit ${billingOpts.limit}`);
        checks.start();
      } else {
        st.streamer = new Streamer(gateway.url, org.apiKey, new EventSource(`${runId}-${kind}`, org.eventName, st.customers), {
          eventsPerSec: opts.eventsPerSec,
          batchSize: opts.batchSize,
          concurrency: opts.concurrency,
          retryDeadlineMs: 180_000,
        });
        log(`${kind}: streaming ${opts.eventsPerSec} events/s`);
        st.streamer.start();
      }
      if (kind === 'poison_record') poisoner = new PoisonInjector(config, org.organizationId, org.eventName, st.customers, runId);
      await sleep(opts.steadyMs);
      for (let rep = 0; rep < opts.repetitions; rep++) {
        const t0 = Date.now();
        let clearedAt: number;
        switch (kind) {
          case 'billing_kill9': {
            const r = await checks!.inject();
            st.notes.push(r.note);
            clearedAt = r.clearedAt;
            break;
          }
          case 'poison_record': {
            const batch = await poisoner!.inject();
            st.poison.push(...batch.poison);
            st.mustCount.push(...batch.mustCount);
            clearedAt = Date.now();
            break;
          }
          case 'aggregator_stall': {
            const r = await stallAggregator(ch!, config, aggregator.url, {
              minBlockMs: stallAfterMs + 1_000,
              maxBlockMs: stallAfterMs + 30_000,
            });
            st.stallNotReady.push(r.notReadyAfterMs);
            if (r.notReadyAfterMs === null)
              st.failures.push(`injection ${rep + 1}: /readyz never answered 503 naming a stalled partition in ${r.blockedMs} ms`);
            clearedAt = Date.now();
            const readyAgain = await waitReady(aggregator.url, 60_000);
            st.notes.push(
              `blocked ${(r.blockedMs / 1000).toFixed(1)} s, /readyz 503 after ${r.notReadyAfterMs === null ? '-' : (r.notReadyAfterMs / 1000).toFixed(1)} s, 200 again ${readyAgain === null ? 'never (60 s)' : `${(readyAgain / 1000).toFixed(1)} s`} after the unblock`,
            );
            if (readyAgain === null) st.failures.push(`injection ${rep + 1}: /readyz not 200 within 60 s after the unblock`);
            break;
          }
          default: {
            await injectInfra(kind, {
              stack,
              gateway,
              aggregator,
              held,
              streamer: st.streamer!,
              clickhouseDownMs: opts.clickhouseDownMs,
              notes: st.notes,
            });
            // cleared = the services answer again (a kill's restart happened inside the injection)
            await ensureUp(gateway);
            await ensureUp(aggregator);
            clearedAt = Date.now();
          }
        }
        const freshAfterMs = await freshness(kind, st, checks, ch!, db, org, clearedAt, 180_000);
        if (freshAfterMs === null)
          st.failures.push(`injection ${rep + 1}: no event acknowledged after the fault became visible within 180 s`);
        st.injections.push({ faultMs: clearedAt - t0, freshAfterMs });
        await revive(`${kind} injection ${rep + 1}`);
        log(
          `${kind}: injection ${rep + 1}/${opts.repetitions}: fault ${((clearedAt - t0) / 1000).toFixed(1)} s, fresh again ${freshAfterMs === null ? 'never' : `${(freshAfterMs / 1000).toFixed(1)} s`} later`,
        );
        await sleep(opts.steadyMs);
      }
      if (kind === 'billing_kill9') {
        const note = await checks!.finish(billingOpts.exhaustTimeoutMs);
        if (note) st.failures.push(note);
      } else {
        await st.streamer!.stop();
        log(`${kind}: sent ${st.streamer!.sent}, acknowledged ${st.streamer!.acked.length}, retries ${st.streamer!.retries}`);
      }
    };
    const overlapping: readonly FaultKind[] = opts.overlapServiceFaults ? ['gateway_kill9', 'poison_record', 'billing_kill9'] : [];
    const lane = async (ks: readonly FaultKind[]) => {
      for (const k of ks) await runKind(k);
    };
    await Promise.all([lane(kinds.filter((k) => !overlapping.includes(k))), lane(kinds.filter((k) => overlapping.includes(k)))]);

    for (const kind of kinds) {
      const st = states.get(kind);
      if (!st) continue;
      if (kind === 'billing_kill9') {
        const c = checks!.counts(new Map());
        const q = { ...org, metricId: CHECK_METRIC, eventName: CHECK_EVENT };
        const counts = await settleClickHouse(ch, config, q, st.customers, c.grantedUnits, fromMs, opts.settleTimeoutMs);
        const perCustomer = await checkEventsPerCustomer(ch, db, org.organizationId, st.customers);
        rows.push(billingVerdict(st, checks!.counts(perCustomer), counts));
        continue;
      }
      const expected = [...st.streamer!.acked, ...st.mustCount];
      const counts = await settleClickHouse(ch, config, org, st.customers, expected.length, fromMs, opts.settleTimeoutMs);
      const row = verdict(kind, st, expected, counts);
      if (kind === 'poison_record') {
        const poison = await waitForPoison(ch, config, org.organizationId, st.poison, 60_000);
        row.poison = poison;
        if (poison.missing.length) row.failures.push(`poison records without a dead letter: ${poison.missing.join(', ')}`);
        if (poison.counted) row.failures.push(`${poison.counted} poison records were counted as events`);
      }
      if (kind === 'aggregator_stall') row.stallNotReadyAfterMs = st.stallNotReady;
      rows.push(row);
    }
  } finally {
    await checks?.streamer?.stop().catch(() => undefined);
    await poisoner?.close().catch(() => undefined);
    await Promise.all([gateway, aggregator, ...billing].map((s) => s.stop().catch(() => undefined)));
    await ch?.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await stack.destroy().catch(() => undefined);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return {
    rows,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    options: { ...opts, log: undefined } as Omit<DrillOptions, 'log'>,
  };
}

async function injectInfra(
  kind: FaultKind,
  c: {
    stack: PrivateStack;
    gateway: ServiceProcess;
    aggregator: ServiceProcess;
    held: Set<ServiceProcess>;
    streamer: Streamer;
    clickhouseDownMs: number;
    notes: string[];
  },
): Promise<void> {
  switch (kind) {
    case 'aggregator_kill9':
      c.held.add(c.aggregator);
      await c.aggregator.kill9();
      await sleep(500);
      await c.aggregator.start();
      c.held.delete(c.aggregator);
      return;
    case 'gateway_kill9': {
      // prefer a moment with several requests outstanding; at least one
      let inFlight = await c.streamer.waitForInFlight(2, 5_000);
      if (inFlight === 0) inFlight = await c.streamer.waitForInFlight(1, 10_000);
      c.held.add(c.gateway);
      await c.gateway.kill9();
      c.notes.push(`requests in flight at kill: ${inFlight}`);
      await sleep(500);
      await c.gateway.start();
      c.held.delete(c.gateway);
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
    default:
      throw new Error(`${kind} is not an infrastructure fault`);
  }
}

/**
 * Fault cleared -> fresh again: for the gateway streams, the first batch acknowledged after `clearedAt`
 * is visible in the raw table; for billing, every unit granted so far is. Null when not within `timeoutMs`.
 */
async function freshness(
  kind: FaultKind,
  st: KindState,
  checks: BillingCheckLoad | null,
  ch: ClickHouseClient,
  db: string,
  org: BenchOrg,
  clearedAt: number,
  timeoutMs: number,
): Promise<number | null> {
  const deadline = clearedAt + timeoutMs;
  let probe: () => Promise<boolean>;
  if (kind === 'billing_kill9') {
    const target = checks!.grantedUnitsSoFar();
    probe = async () => {
      const per = await checkEventsPerCustomer(ch, db, org.organizationId, st.customers);
      let n = 0;
      for (const v of per.values()) n += v;
      return n >= target;
    };
  } else {
    let id: string;
    try {
      id = (await st.streamer!.ackedIdAfter(clearedAt, timeoutMs)).id;
    } catch {
      return null;
    }
    probe = async () => {
      const rs = await ch.query({
        query: `SELECT count() AS c FROM ${sqlIdentifier(db)}.events
                WHERE organization_id = ${sqlString(org.organizationId)} AND idempotency_id = ${sqlString(id)}`,
        format: 'JSONEachRow',
      });
      return Number((await rs.json<{ c: string | number }>())[0]?.c ?? 0) > 0;
    };
  }
  while (Date.now() < deadline) {
    try {
      if (await probe()) return Date.now() - clearedAt;
    } catch {
      /* ClickHouse still coming back */
    }
    await sleep(100);
  }
  return null;
}

async function waitForPoison(
  ch: ClickHouseClient,
  config: Config,
  organizationId: string,
  poison: readonly PoisonRecord[],
  timeoutMs: number,
): Promise<PoisonVerdict> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await verifyPoison(ch, config, organizationId, poison).catch(() => null);
    if (v && (v.missing.length === 0 || Date.now() > deadline)) return v;
    if (!v && Date.now() > deadline)
      return { expected: poison.length, deadLettered: 0, missing: ['(ClickHouse unreadable)'], counted: 0, reasons: {} };
    await sleep(500);
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

/**
 * Polls until raw and aggregates agree with each other, hold at least every acknowledged event, and two
 * readings 1 s apart are equal (late, unacknowledged-but-delivered events land too) — or the deadline.
 */
async function settleClickHouse(
  ch: ClickHouseClient,
  config: Config,
  org: Pick<BenchOrg, 'organizationId' | 'metricId' | 'eventName'>,
  customers: string[],
  acked: number,
  fromMs: number,
  timeoutMs: number,
): Promise<Counts> {
  const deadline = Date.now() + timeoutMs;
  let last: Counts = { perId: new Map(), aggregates: null };
  let prevKey: string | null = null;
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
      let rows = 0;
      for (const c of perId.values()) rows += c;
      const key = `${perId.size}/${rows}/${aggregates}`;
      if (perId.size >= acked && aggregates === perId.size && key === prevKey) return last;
      prevKey = key;
    } catch {
      /* ClickHouse still starting */
    }
    if (Date.now() > deadline) return last;
    await sleep(1_000);
  }
}

type Recovery = Pick<FaultRow, 'recoverP50S' | 'recoverMaxS' | 'faultP50S' | 'freshP50S' | 'freshMaxS'>;

function recoverySummary(injections: Injection[]): Recovery {
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  const done = injections.filter((i) => i.freshAfterMs !== null);
  const totals = sorted(done.map((i) => (i.faultMs + i.freshAfterMs!) / 1000));
  const fresh = sorted(done.map((i) => i.freshAfterMs! / 1000));
  const fault = sorted(injections.map((i) => i.faultMs / 1000));
  return {
    recoverP50S: totals.length ? percentile(totals, 50) : null,
    recoverMaxS: totals.length ? totals[totals.length - 1]! : null,
    faultP50S: fault.length ? percentile(fault, 50) : null,
    freshP50S: fresh.length ? percentile(fresh, 50) : null,
    freshMaxS: fresh.length ? fresh[fresh.length - 1]! : null,
  };
}

function doubledOf(counts: Counts): number {
  let doubled = 0;
  for (const c of counts.perId.values()) if (c > 1) doubled += c - 1;
  return doubled;
}

function verdict(kind: FaultKind, st: KindState, expected: readonly string[], counts: Counts): FaultRow {
  const s = st.streamer!;
  let lost = 0;
  for (const id of expected) if (!counts.perId.has(id)) lost++;
  let doubled = doubledOf(counts);
  const distinct = counts.perId.size;
  if (counts.aggregates !== null) {
    if (counts.aggregates < distinct) lost += distinct - counts.aggregates;
    if (counts.aggregates > distinct) doubled += counts.aggregates - distinct;
  }
  return {
    fault: kind,
    injected: st.injections.length,
    sent: s.sent + st.mustCount.length,
    acknowledged: expected.length,
    unacknowledged: s.unacked.length,
    countedRaw: distinct,
    countedAggregates: counts.aggregates,
    lost,
    doubled,
    retries: s.retries,
    retriedEvents: s.retriedEvents,
    injections: st.injections,
    ...recoverySummary(st.injections),
    failures: st.failures,
    notes: st.notes,
  };
}

/** Units: acknowledged = granted; an indeterminate check (cut off by the kill) may or may not have counted. */
function billingVerdict(st: KindState, c: BillingCounts, counts: Counts): FaultRow {
  const distinct = counts.perId.size;
  let lost = Math.max(0, c.grantedUnits - distinct);
  let doubled = doubledOf(counts) + Math.max(0, distinct - c.grantedUnits - c.indeterminateUnits);
  if (counts.aggregates !== null) {
    if (counts.aggregates < distinct) lost += distinct - counts.aggregates;
    if (counts.aggregates > distinct) doubled += counts.aggregates - distinct;
  }
  const failures = [...st.failures];
  if (c.overLimitGrants) failures.push(`${c.overLimitGrants} units granted or counted beyond the hard limit`);
  if (c.badAnswers) failures.push(`${c.badAnswers} checks answered with a 5xx other than 503, a hang or an unparsable 200`);
  if (!c.limitReached) failures.push('not every customer reached its limit (over-limit grants not exercised)');
  return {
    fault: 'billing_kill9',
    injected: st.injections.length,
    sent: c.sentUnits,
    acknowledged: c.grantedUnits,
    unacknowledged: c.sentUnits - c.grantedUnits,
    countedRaw: distinct,
    countedAggregates: counts.aggregates,
    lost,
    doubled,
    retries: 0,
    retriedEvents: 0,
    injections: st.injections,
    ...recoverySummary(st.injections),
    checks: c,
    failures,
    notes: st.notes,
  };
}

export function faultTable(rows: FaultRow[]): string {
  const s = (v: number | null) => (v === null ? '-' : v.toFixed(1));
  return table([
    [
      'fault',
      'injections',
      'sent',
      'acknowledged',
      'counted (raw)',
      'counted (aggregates)',
      'lost',
      'doubled',
      'retried events',
      'fault s p50',
      'fresh after s p50/max',
      'recover s p50/max',
      'checks',
      'granted',
      'over-limit grants',
      'dead-lettered',
      'failures',
    ],
    ...rows.map((r) => [
      r.fault,
      r.injected,
      r.sent,
      r.acknowledged,
      r.countedRaw,
      r.countedAggregates ?? '-',
      r.lost,
      r.doubled,
      r.retriedEvents,
      s(r.faultP50S),
      `${s(r.freshP50S)}/${s(r.freshMaxS)}`,
      `${s(r.recoverP50S)}/${s(r.recoverMaxS)}`,
      r.checks?.checks ?? '-',
      r.checks?.grantedChecks ?? '-',
      r.checks?.overLimitGrants ?? '-',
      r.poison ? `${r.poison.deadLettered}/${r.poison.expected}` : '-',
      r.failures.length,
    ]),
  ]);
}

/** A kind passes when nothing is lost or doubled, raw and aggregates agree, and no failure was recorded. */
export function rowPasses(r: FaultRow): boolean {
  return r.lost === 0 && r.doubled === 0 && r.countedAggregates === r.countedRaw && r.failures.length === 0;
}
