// Cluster drill (issue #13 items 3–4): several instances of each service against the local cluster —
// 2 gateways (the clients' own round-robin list with failover), 3 aggregators in one consumer group
// (the 3rd joins late, one leaves gracefully and rejoins), 2 billing instances — while events stream
// and consuming checks run against both billing instances; sequentially kill -9 + restart the Kafka
// controller, another broker, a ClickHouse replica, an aggregator, a gateway and a billing instance.
// After each step: time until every partition is fresh again (freshness.ts). At the end: every
// acknowledged event counted exactly once (raw FINAL and aggregates) read from EACH replica, and no
// consuming check granted past the hard limit.
//
// Aggregators and billing instances all read and write through replica 1 (clickhouse1), the deployment's
// writer replica (infra/local/cluster/README.md "Exactly-once on replicated tables"): replication is
// asynchronous, and both the aggregator's recomputes and billing's usage watermarks need to read what
// the aggregators wrote (measured before the guard below: a billing instance reading replica 2 granted 12
// units past a limit of 1,000 after an aggregator takeover — its reading lagged the watermarks). Since
// then an instance pointed at another replica refuses to start (core's writer-replica.ts; checked here
// on the cluster); CLUSTER_AGGREGATOR_REPLICAS / CLUSTER_BILLING_REPLICAS=…2… show that refusal.
// Killing clickhouse2 (the default CLUSTER_KILL_REPLICA) stops nothing; killing clickhouse1 pauses the
// aggregators until it is back.
// Both replicas are read for the final counts. On the cluster, a preflight (dedup-check.ts) shows that a
// retried raw INSERT reaches the materialized view on the replicated tables.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createClickHouse,
  createKafka,
  createPostgres,
  loadConfig,
  migratePostgres,
  queryUsage,
  setupBackingServices,
  sqlIdentifier,
  sqlString,
  type ClickHouseClient,
  type Config,
} from '@meterline/core';
import { EventSource } from '../../bench/lib/load.ts';
import { ServiceProcess, portInUse, ROOT, type ServiceName } from '../../bench/lib/proc.ts';
import { createBenchOrg, ensurePostgres } from '../../bench/lib/env.ts';
import { aggregateTotal, metricDefinition } from '../../bench/lib/usage.ts';
import { sleep, summarize, type LatencySummary } from '../../bench/lib/stats.ts';
import { createTestOrganization } from '../support/fixtures.ts';
import { waitFor } from '../support/wait.ts';
import { checkRetriedInsertsReachTheView, checkWriterReplicaGuard, type DedupCheck } from './dedup-check.ts';
import { Api, CHECK_FEATURE, CheckStreamer, judgeCustomer, setupCheckCatalog, type CustomerVerdict } from './checks.ts';
import { FreshnessProbe, probeCustomers } from './freshness.ts';
import { RoundRobinStreamer, Segment } from './streamer.ts';
import { BROKERS, type Member, type Topology } from './topology.ts';

export const STEP_KINDS = [
  'aggregator_join',
  'kafka_controller_kill9',
  'kafka_broker_kill9',
  'clickhouse_replica_kill9',
  'aggregator_kill9',
  'gateway_kill9',
  'billing_kill9',
  'aggregator_leave',
  'aggregator_rejoin',
] as const;
/** Steps only run when named in CLUSTER_STEPS. */
export const OPTIONAL_STEPS = ['zookeeper_kill9'] as const;
export type StepKind = (typeof STEP_KINDS)[number] | (typeof OPTIONAL_STEPS)[number];

/** Service ports (assigned range 19670–19679). */
export const PORTS = { gateways: [19670, 19671], aggregators: [19672, 19673, 19674], billing: [19675, 19676] } as const;

export interface ClusterDrillOptions {
  topology: Topology;
  steps?: readonly StepKind[];
  eventsPerSec: number;
  batchSize: number;
  concurrency: number;
  /** normal streaming before the first step and between steps (ms) */
  steadyMs: number;
  /** how long a killed broker / replica stays down before it is started again (ms) */
  memberDownMs: number;
  /** which replica the ClickHouse step kills */
  killReplica: 'clickhouse1' | 'clickhouse2';
  /** which replica (0 = clickhouse1, 1 = clickhouse2) each of the 3 aggregators writes to and reads from */
  aggregatorReplicas: readonly [0 | 1, 0 | 1, 0 | 1];
  /** which replica each of the 2 billing instances reads (default both clickhouse1, the writer replica) */
  billingReplicas: readonly [0 | 1, 0 | 1];
  checksPerSec: number;
  checkCustomers: number;
  checkLimit: number;
  probeIntervalMs: number;
  recoverTimeoutMs: number;
  settleTimeoutMs: number;
  log?: (msg: string) => void;
}

export interface StepRow {
  step: StepKind | 'steady (first)' | 'freshness probes';
  target: string;
  sent: number;
  acknowledged: number;
  unacknowledged: number;
  /** distinct acknowledged-or-not ids in the raw table (FINAL), per replica */
  countedRaw: number[];
  /** queryUsage total, per replica */
  countedAggregates: (number | null)[];
  lost: number;
  doubled: number;
  retries: number;
  retriedEvents: number;
  failovers: number;
  /** kill → restart returned (ms) */
  downMs: number | null;
  /** restart returned → every partition fresh again (ms) */
  recoverMs: number | null;
  /** freshness of the probes that showed it recovered */
  freshnessAtRecoveryMs: number | null;
  /** worst (visible − acknowledged) of a probe acknowledged during the step */
  maxStalenessMs: number | null;
  notes: string[];
}

export interface ClusterDrillReport {
  topology: Topology['kind'];
  startedAt: string;
  durationSeconds: number;
  settleSeconds: number;
  machine: { cpus: number; loadavgStart: number[]; loadavgEnd: number[]; node: string };
  options: Omit<ClusterDrillOptions, 'log' | 'topology'>;
  rows: StepRow[];
  totals: { sent: number; acknowledged: number; lost: number; doubled: number };
  steadyFreshness: LatencySummary;
  /** CPU seconds of each service kind per 1,000 events during the first steady phase (all instances) */
  cpuPerThousandEvents: Record<ServiceName, number | null>;
  /** the same for each backing member (Kafka nodes, ZooKeeper, ClickHouse replicas, Redis), per 1,000 pipeline events */
  memberCpuPerThousandEvents: Record<string, number | null>;
  /** what CPU per event is measured over: the first steady phase's second half */
  steadyWindow: { seconds: number; events: number; checks: number; checkUnits: number };
  steadyEventsPerSec: number;
  checks: {
    sent: number;
    skipped: number;
    outcomes: Record<string, number>;
    errorCodes: Record<string, number>;
    latency: LatencySummary;
    customers: CustomerVerdict[];
  };
  /** cluster only: retried raw INSERTs reach events_by_offset (dedup-check.ts) */
  dedupCheck: DedupCheck | null;
  perGateway: { attempts: number; acked: number; failed: number }[];
  violations: string[];
}

/** utime + stime of a live process, in seconds (null when gone). */
function cpuSeconds(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** The drill's own topic, created before any service (their ensureTopics would create RF 1). */
async function createTopics(config: Config, t: Topology): Promise<void> {
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const topics = [
      { topic: config.kafka.eventsTopic, numPartitions: config.kafka.eventsPartitions },
      { topic: config.kafka.deadLetterTopic, numPartitions: 1 },
    ].filter((x) => !existing.has(x.topic));
    if (topics.length)
      await admin.createTopics({
        // kafkajs' own leader wait gives up on UNKNOWN_TOPIC_OR_PARTITION, which a KRaft broker answers
        // while the new topic's metadata is still propagating: wait for the leaders below instead
        waitForLeaders: false,
        topics: topics.map((x) => ({
          ...x,
          replicationFactor: t.replicationFactor,
          configEntries: [{ name: 'min.insync.replicas', value: String(t.minInsyncReplicas) }],
        })),
      });
    const names = [config.kafka.eventsTopic, config.kafka.deadLetterTopic];
    await waitFor(
      async () => (await admin.fetchTopicMetadata({ topics: names })).topics, // throws while a broker does not know them yet
      (meta) => meta.length === names.length && meta.every((m) => m.partitions.length > 0 && m.partitions.every((p) => p.leader >= 0)),
      { timeoutMs: 60_000, intervalMs: 250, what: 'leaders for the drill topics' },
    );
  } finally {
    await admin.disconnect();
  }
}

interface RawCounts {
  /** customer → idempotency id → rows (FINAL) */
  perId: Map<string, number>;
  byCustomer: Map<string, number>;
}

async function rawCounts(ch: ClickHouseClient, db: string, organizationId: string): Promise<RawCounts> {
  const rs = await ch.query({
    query: `SELECT customer_id, idempotency_id, count() AS c FROM ${sqlIdentifier(db)}.events FINAL
            WHERE organization_id = ${sqlString(organizationId)} GROUP BY customer_id, idempotency_id`,
    format: 'JSONEachRow',
  });
  const perId = new Map<string, number>();
  const byCustomer = new Map<string, number>();
  for (const r of await rs.json<{ customer_id: string; idempotency_id: string; c: string | number }>()) {
    perId.set(r.idempotency_id, Number(r.c));
    byCustomer.set(r.customer_id, (byCustomer.get(r.customer_id) ?? 0) + 1);
  }
  return { perId, byCustomer };
}

async function orgRawTotal(ch: ClickHouseClient, db: string, organizationId: string): Promise<number> {
  const rs = await ch.query({
    query: `SELECT count() AS c FROM ${sqlIdentifier(db)}.events FINAL WHERE organization_id = ${sqlString(organizationId)}`,
    format: 'JSONEachRow',
  });
  return Number((await rs.json<{ c: string | number }>())[0]?.c ?? 0);
}

export async function runClusterDrill(opts: ClusterDrillOptions): Promise<ClusterDrillReport> {
  const log = opts.log ?? ((m: string) => console.error(`[cluster-drill ${new Date().toISOString().slice(11, 19)}] ${m}`));
  const t = opts.topology;
  const steps = opts.steps ?? STEP_KINDS;
  const started = Date.now();
  const loadavgStart = os.loadavg();
  const runId = `c${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const allPorts = [...PORTS.gateways, ...PORTS.aggregators, ...PORTS.billing];
  for (const p of allPorts)
    if (await portInUse(p)) throw new Error(`port ${p} is in use: an interrupted drill left a service running on 19670..19676`);
  ensurePostgres();
  log(`bringing up the ${t.kind} topology`);
  await t.up();

  const env: Record<string, string> = {
    ...t.serviceEnv,
    KAFKA_BROKERS: t.kafkaBrokers,
    CLICKHOUSE_URL: t.clickhouseUrls[0],
    CLICKHOUSE_DATABASE: t.clickhouseDatabase,
    REDIS_URL: t.redisUrl,
    DATABASE_URL: t.postgresUrl,
    KAFKA_EVENTS_TOPIC: `cluster_${runId}_events`,
    KAFKA_DEAD_LETTER_TOPIC: `cluster_${runId}_dead`,
    KAFKA_EVENTS_PARTITIONS: '6',
    AGGREGATOR_GROUP_ID: `cluster_${runId}_aggregator`,
    AGGREGATOR_LAG_INTERVAL_MS: '1000',
    KAFKA_CLIENT_ID: `cluster_${runId}`,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
  };
  const config = loadConfig({ ...process.env, ...env });
  if (t.kind === 'private') await setupBackingServices(config);
  else await migratePostgres(config.postgresUrl); // ClickHouse: `up --cluster` migrated the replicated shape
  await createTopics(config, t);
  const dedupCheck =
    t.kind === 'cluster' ? await checkRetriedInsertsReachTheView({ ...config.clickhouse, url: t.clickhouseUrls[0] }) : null;

  const logDir = path.join(ROOT, '.cache', 'cluster-drill', runId);
  const withCh = (replica: 0 | 1, extra: Record<string, string>) => ({ ...env, CLICKHOUSE_URL: t.clickhouseUrls[replica], ...extra });
  const gateways = PORTS.gateways.map(
    (port, i) => new ServiceProcess('gateway', port, withCh(0, { GATEWAY_PORT: String(port) }), path.join(logDir, `gateway-${i + 1}`)),
  );
  const aggReplica = opts.aggregatorReplicas;
  const aggregators = PORTS.aggregators.map(
    (port, i) =>
      new ServiceProcess(
        'aggregator',
        port,
        withCh(aggReplica[i]!, { AGGREGATOR_PORT: String(port) }),
        path.join(logDir, `aggregator-${i + 1}`),
      ),
  );
  const billing = PORTS.billing.map(
    (port, i) =>
      new ServiceProcess(
        'billing',
        port,
        withCh(opts.billingReplicas[i]!, { BILLING_PORT: String(port) }),
        path.join(logDir, `billing-${i + 1}`),
      ),
  );
  const services = [...gateways, ...aggregators, ...billing];
  const replicas = t.clickhouseUrls.map((url) => createClickHouse({ ...config.clickhouse, url }));
  const pool = createPostgres(config.postgresUrl, { max: 2, applicationName: 'meterline-cluster-drill' });
  const onSignal = () => {
    void Promise.all(services.map((s) => s.kill9())).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let streamer: RoundRobinStreamer | null = null;
  let probe: FreshnessProbe | null = null;
  let checks: CheckStreamer | null = null;
  const apis: Api[] = [];
  const violations: string[] = [];
  const rows: StepRow[] = [];
  const stepInfo = new Map<
    Segment,
    Omit<
      StepRow,
      | 'sent'
      | 'acknowledged'
      | 'unacknowledged'
      | 'countedRaw'
      | 'countedAggregates'
      | 'lost'
      | 'doubled'
      | 'retries'
      | 'retriedEvents'
      | 'failovers'
    >
  >();
  try {
    const org = await createBenchOrg(pool, 'cluster.call');
    const checkOrg = await createTestOrganization(pool, { name: `cluster drill checks ${runId}` });
    log(`logs in ${path.relative(ROOT, logDir)}; starting 2 gateways, 2 aggregators (the 3rd joins later), 2 billing`);
    await Promise.all([...gateways, aggregators[0]!, aggregators[1]!, ...billing].map((s) => s.start(120_000)));
    const aggActive = [true, true, false];
    if (t.kind === 'cluster') violations.push(...(await checkWriterReplicaGuard(config.clickhouse, t.clickhouseUrls, t.redisUrl)));

    // catalog for the checks, then both billing instances must grant a non-consuming check
    const checkCustomers = Array.from({ length: opts.checkCustomers }, (_, i) => `${runId}_c${i}`);
    for (const b of billing) apis.push(new Api(b.url, checkOrg.apiKey));
    await setupCheckCatalog(apis[0]!, checkCustomers, opts.checkLimit);
    for (const [i, a] of apis.entries())
      await waitFor(
        () => a.call('POST', '/v1/check', { customer_id: checkCustomers[0], feature_id: CHECK_FEATURE }),
        (r) => r.status === 200 && r.json.allowed === true,
        { timeoutMs: 30_000, what: `billing-${i + 1} to grant a non-consuming check` },
      );

    const gatewayUrls = gateways.map((g) => g.url);
    const newSegment = (label: string) =>
      new Segment(
        label,
        new EventSource(
          `${runId}-${label}`,
          org.eventName,
          Array.from({ length: 5 }, (_, i) => `${label}_${i}`),
        ),
      );
    const first = newSegment('s0_steady');
    stepInfo.set(first, {
      step: 'steady (first)',
      target: '-',
      downMs: null,
      recoverMs: null,
      freshnessAtRecoveryMs: null,
      maxStalenessMs: null,
      notes: [],
    });
    streamer = new RoundRobinStreamer(gatewayUrls, org.apiKey, first, {
      eventsPerSec: opts.eventsPerSec,
      batchSize: opts.batchSize,
      concurrency: opts.concurrency,
      retryDeadlineMs: 240_000,
    });
    probe = new FreshnessProbe(gatewayUrls, org.apiKey, probeCustomers(org.organizationId, config.kafka.eventsPartitions, 'probe_'), {
      runId,
      eventName: org.eventName,
      organizationId: org.organizationId,
      database: t.clickhouseDatabase,
      replicas,
      intervalMs: opts.probeIntervalMs,
    });
    checks = new CheckStreamer(
      billing.map((b) => b.url),
      checkOrg.apiKey,
      checkCustomers,
      { checksPerSec: opts.checksPerSec, maxOutstanding: 128, requestTimeoutMs: 15_000 },
    );
    const st = streamer;
    const pr = probe;
    const ck = checks;

    // a service that exits on its own (not killed by the drill) is a finding: record it, start it again
    const expectedDown = new Set<ServiceProcess>();
    const revive = async (during: string) => {
      for (const s of services) {
        const isLateAgg = aggregators.indexOf(s) >= 0 && !aggActive[aggregators.indexOf(s)];
        if (s.running || expectedDown.has(s) || isLateAgg) continue;
        violations.push(`service_exited: ${s.name} :${s.port} exited on its own during ${during}; log ${path.relative(ROOT, s.logFile)}`);
        await s.start(120_000);
      }
    };

    log(
      `streaming ${opts.eventsPerSec} events/s (batches of ${opts.batchSize}), ${opts.checksPerSec} consuming checks/s, probes every ${opts.probeIntervalMs} ms on ${pr.customers.length} partitions`,
    );
    st.start();
    pr.start();
    ck.start();
    // the first steady phase, twice as long, is also where CPU per event is measured (its second half)
    const cpuKinds: ServiceName[] = ['gateway', 'aggregator', 'billing'];
    // (after a warm-up of one steady period: the workers start staggered and the JIT warms up)
    await sleep(opts.steadyMs);
    const cpu0 = services.map((s) => cpuSeconds(s.pid));
    const memberPids = t.memberPids();
    const memberCpu0 = Object.fromEntries(Object.entries(memberPids).map(([m, pid]) => [m, cpuSeconds(pid)]));
    const acked0 = first.acked.length + pr.probes.length;
    const tSteady0 = Date.now();
    const checks0 = ck.records.length;
    await sleep(opts.steadyMs);
    const cpu1 = services.map((s) => cpuSeconds(s.pid));
    const memberCpuPerThousandEvents: Record<string, number | null> = {};
    const steadySeconds = (Date.now() - tSteady0) / 1000;
    const steadyEvents = first.acked.length + pr.probes.length - acked0;
    const checksAnswered = ck.records.slice(checks0).filter((r) => r.status === 200).length;
    const checkUnits = ck.records
      .slice(checks0)
      .filter((r) => r.outcome === 'granted')
      .reduce((a, r) => a + r.units, 0);
    const cpuPerThousandEvents = {} as Record<ServiceName, number | null>;
    for (const kind of cpuKinds) {
      let sum = 0;
      let ok = false;
      services.forEach((s, i) => {
        if (s.name !== kind || cpu0[i] === null || cpu1[i] === null) return;
        sum += cpu1[i]! - cpu0[i]!;
        ok = true;
      });
      // billing's work is checks, not gateway events: per 1,000 answered checks instead; the aggregator
      // also counts the granted checks' events
      const denom = kind === 'billing' ? checksAnswered : kind === 'aggregator' ? steadyEvents + checkUnits : steadyEvents;
      cpuPerThousandEvents[kind] = ok && denom > 0 ? (sum / denom) * 1000 : null;
    }
    // backing members: per 1,000 events through the pipeline (gateway events + granted check units)
    for (const [m, pid] of Object.entries(memberPids)) {
      const a = memberCpu0[m];
      const b = cpuSeconds(pid);
      memberCpuPerThousandEvents[m] =
        a != null && b !== null && steadyEvents + checkUnits > 0 ? ((b - a) / (steadyEvents + checkUnits)) * 1000 : null;
    }
    log(
      `steady: ${(steadyEvents / steadySeconds).toFixed(0)} events/s acknowledged; CPU s per 1,000: ${JSON.stringify(cpuPerThousandEvents)} ${JSON.stringify(memberCpuPerThousandEvents)}`,
    );

    let lastKilledBroker: Member | null = null;
    for (const [si, kind] of steps.entries()) {
      const seg = newSegment(`s${si + 1}_${kind}`);
      st.switchTo(seg);
      ck.activeCustomers = Math.min(
        checkCustomers.length,
        Math.max(ck.activeCustomers, 1 + Math.floor(((si + 1) * checkCustomers.length) / (steps.length + 1))),
      );
      const info = {
        step: kind,
        target: '',
        downMs: null as number | null,
        recoverMs: null as number | null,
        freshnessAtRecoveryMs: null as number | null,
        maxStalenessMs: null as number | null,
        notes: [] as string[],
      };
      stepInfo.set(seg, info);
      const injectedAt = Date.now();
      switch (kind) {
        case 'aggregator_join':
          info.target = 'aggregator-3';
          aggActive[2] = true;
          await aggregators[2]!.start(120_000);
          break;
        case 'kafka_controller_kill9':
        case 'kafka_broker_kill9': {
          const ctrl = await t.controller();
          const target: Member =
            kind === 'kafka_controller_kill9'
              ? ctrl
              : (BROKERS.find((b) => b !== ctrl && b !== lastKilledBroker) ?? BROKERS.find((b) => b !== ctrl)!);
          info.target = kind === 'kafka_controller_kill9' ? `${target} (controller)` : `${target} (controller: ${ctrl})`;
          lastKilledBroker = target;
          await t.kill9(target);
          await sleep(opts.memberDownMs);
          await t.start(target);
          if (t.kind === 'cluster') info.notes.push(`controller after restart: ${await t.controller().catch((e) => String(e))}`);
          break;
        }
        case 'zookeeper_kill9':
          // replicas turn read-only without ZooKeeper: inserts fail (transient), partitions pause
          info.target = 'zookeeper';
          await t.kill9('zookeeper');
          await sleep(opts.memberDownMs);
          await t.start('zookeeper');
          break;
        case 'clickhouse_replica_kill9':
          info.target = opts.killReplica;
          await t.kill9(opts.killReplica);
          await sleep(opts.memberDownMs);
          await t.start(opts.killReplica);
          break;
        case 'aggregator_kill9': {
          info.target = 'aggregator-1';
          const a = aggregators[0]!;
          expectedDown.add(a);
          await a.kill9();
          await sleep(1_000);
          await a.start(120_000);
          expectedDown.delete(a);
          break;
        }
        case 'gateway_kill9': {
          info.target = 'gateway-1';
          const inFlight = await st.waitForInFlight(2, 5_000);
          const g = gateways[0]!;
          expectedDown.add(g);
          await g.kill9();
          info.notes.push(`${inFlight} requests in flight at the kill`);
          await sleep(2_000);
          await g.start(120_000);
          expectedDown.delete(g);
          break;
        }
        case 'billing_kill9': {
          info.target = 'billing-1';
          const inFlight = await ck.waitForInFlight(0, 3_000);
          const b = billing[0]!;
          expectedDown.add(b);
          ck.down.add(0);
          await b.kill9();
          info.notes.push(`${inFlight} checks in flight at the kill`);
          await sleep(1_000);
          await b.start(120_000);
          ck.down.delete(0);
          expectedDown.delete(b);
          const since = Date.now();
          await waitFor(
            async () => ck.lastOkAt[0]!,
            (x) => x > since,
            { timeoutMs: 60_000, what: 'billing-1 to answer a check after its restart' },
          );
          break;
        }
        case 'aggregator_leave': {
          info.target = 'aggregator-2 (SIGTERM)';
          const a = aggregators[1]!;
          expectedDown.add(a);
          await a.stop(30_000);
          break;
        }
        case 'aggregator_rejoin': {
          info.target = 'aggregator-2';
          const a = aggregators[1]!;
          await a.start(120_000);
          expectedDown.delete(a);
          break;
        }
      }
      const restoredAt = Date.now();
      info.downMs = restoredAt - injectedAt;
      await revive(kind);
      try {
        const r = await waitFor(
          async () => {
            await revive(kind);
            return pr.recovery(restoredAt);
          },
          (x) => x.freshAt !== null,
          { timeoutMs: opts.recoverTimeoutMs, intervalMs: 100, what: `every partition fresh after ${kind}` },
        );
        info.recoverMs = r.freshAt! - restoredAt;
        info.freshnessAtRecoveryMs = r.worstFreshnessMs;
      } catch (err) {
        info.notes.push(`not fresh again within ${opts.recoverTimeoutMs} ms`);
        violations.push(`not_recovered: ${kind}: ${(err as Error).message.slice(0, 300)}`);
      }
      info.maxStalenessMs = pr.maxStalenessMs(injectedAt, Date.now());
      log(
        `${kind} (${info.target}): down ${(info.downMs / 1000).toFixed(1)} s, fresh ${info.recoverMs === null ? 'NOT' : `${(info.recoverMs / 1000).toFixed(1)} s`} after the restart, worst staleness ${((info.maxStalenessMs ?? 0) / 1000).toFixed(1)} s${info.notes.length ? `; ${info.notes.join('; ')}` : ''}`,
      );
      await sleep(opts.steadyMs);
    }

    // tail: consuming checks continue until every customer was denied at its limit (so "never past the limit" means something)
    ck.activeCustomers = checkCustomers.length;
    await st.stop();
    await pr.stop();
    log('streaming stopped; checks continue until every customer reached its limit');
    try {
      await waitFor(
        async () => ck.exhaustedAt.filter((x) => x !== null).length,
        (n) => n === checkCustomers.length,
        {
          timeoutMs: 180_000,
          intervalMs: 250,
          what: 'every check customer to reach its limit',
        },
      );
    } catch (err) {
      violations.push(`limit_not_reached: ${(err as Error).message.slice(0, 300)}`);
    }
    await ck.stop();
    await revive('the tail');
    await pr.pollOnce();

    // ---- settle: on EACH replica the org's raw count covers every acknowledged event, the aggregates
    // equal it, and two readings 2 s apart agree (replication and rollups done)
    const settleStart = Date.now();
    const segments = st.segments;
    const ackedTotal = segments.reduce((a, s) => a + s.acked.length, 0) + pr.probes.length;
    const allCustomers = [...segments.flatMap((s) => s.customers), ...pr.customers];
    const fromMs = started - 60 * 60_000;
    const readTotals = () =>
      Promise.all(
        replicas.map(async (ch) => {
          const raw = await orgRawTotal(ch, t.clickhouseDatabase, org.organizationId);
          const agg = await aggregateTotal(ch, {
            organizationId: org.organizationId,
            metricId: org.metricId,
            eventName: org.eventName,
            customers: allCustomers,
            fromMs,
            toMs: Date.now() + 60 * 60_000,
          });
          return { raw, agg };
        }),
      );
    let prev = '';
    try {
      await waitFor(
        readTotals,
        (r) => {
          const key = JSON.stringify(r);
          const ok = key === prev && r.every((x) => x.raw >= ackedTotal && x.agg === x.raw);
          prev = key;
          return ok;
        },
        { timeoutMs: opts.settleTimeoutMs, intervalMs: 2_000, what: `both replicas to hold ${ackedTotal} events, aggregates = raw` },
      );
    } catch (err) {
      violations.push(`not_settled: ${(err as Error).message.slice(0, 400)}`);
    }
    // checks: billing usage (per instance) equals raw on every replica, stable
    const checkRead = async () => {
      const toIso = new Date(Date.now() + 60 * 60_000).toISOString();
      const fromIso = new Date(fromMs).toISOString();
      const usage: number[][] = [];
      for (const a of apis) {
        const u: number[] = [];
        for (const c of checkCustomers) {
          const r = await a.call(
            'GET',
            `/v1/usage?customer_id=${encodeURIComponent(c)}&feature_id=${CHECK_FEATURE}&from=${encodeURIComponent(fromIso)}&to=${encodeURIComponent(toIso)}`,
          );
          if (r.status !== 200) throw new Error(`GET /v1/usage answered ${r.status}: ${JSON.stringify(r.json)}`);
          u.push(Number(r.json.total));
        }
        usage.push(u);
      }
      const raw = await Promise.all(
        replicas.map(async (ch) => {
          const counts = await rawCounts(ch, t.clickhouseDatabase, checkOrg.organizationId);
          return checkCustomers.map((c) => counts.byCustomer.get(c) ?? 0);
        }),
      );
      return { usage, raw };
    };
    let checkState: Awaited<ReturnType<typeof checkRead>> | null = null;
    prev = '';
    try {
      checkState = await waitFor(
        checkRead,
        (r) => {
          const key = JSON.stringify(r);
          const flat = [...r.usage, ...r.raw];
          const ok = key === prev && flat.every((row) => JSON.stringify(row) === JSON.stringify(flat[0]));
          prev = key;
          return ok;
        },
        { timeoutMs: opts.settleTimeoutMs, intervalMs: 2_000, what: 'check usage equal on both billing instances and both replicas' },
      );
    } catch (err) {
      violations.push(`checks_not_settled: ${(err as Error).message.slice(0, 400)}`);
      checkState = await checkRead().catch(() => null);
    }
    const settleSeconds = (Date.now() - settleStart) / 1000;
    log(`settled in ${settleSeconds.toFixed(1)} s`);

    // ---- verdicts per segment, per replica
    const perReplica = await Promise.all(replicas.map((ch) => rawCounts(ch, t.clickhouseDatabase, org.organizationId)));
    const aggPerReplica = await Promise.all(
      replicas.map(async (ch) => {
        const rows = await queryUsage(ch, {
          metric: metricDefinition({ organizationId: org.organizationId, metricId: org.metricId, eventName: org.eventName }),
          from: new Date(fromMs),
          to: new Date(Date.now() + 60 * 60_000),
        });
        return new Map(rows.map((r) => [r.customerId, Number(r.value)]));
      }),
    );
    const judge = (
      label: StepRow['step'],
      info: Omit<
        StepRow,
        | 'sent'
        | 'acknowledged'
        | 'unacknowledged'
        | 'countedRaw'
        | 'countedAggregates'
        | 'lost'
        | 'doubled'
        | 'retries'
        | 'retriedEvents'
        | 'failovers'
      >,
      customers: readonly string[],
      idPrefix: string,
      acked: readonly string[],
      counts: { sent: number; unacked: number; retries: number; retriedEvents: number; failovers: number },
    ): StepRow => {
      let lost = 0;
      let doubled = 0;
      const countedRaw: number[] = [];
      const countedAggregates: (number | null)[] = [];
      perReplica.forEach((rc, r) => {
        let l = 0;
        for (const id of acked) if (!rc.perId.has(id)) l++;
        let d = 0;
        let distinct = 0;
        for (const c of customers) distinct += rc.byCustomer.get(c) ?? 0;
        // doubles: ids of this segment (acknowledged or not) stored more than once (FINAL)
        for (const [id, n] of rc.perId) if (n > 1 && id.startsWith(idPrefix)) d += n - 1;
        const agg = customers.reduce((a, c) => a + (aggPerReplica[r]!.get(c) ?? 0), 0);
        if (agg < distinct) l += distinct - agg;
        if (agg > distinct) d += agg - distinct;
        lost = Math.max(lost, l);
        doubled = Math.max(doubled, d);
        countedRaw.push(distinct);
        countedAggregates.push(agg);
      });
      return {
        ...info,
        step: label,
        sent: counts.sent,
        acknowledged: acked.length,
        unacknowledged: counts.unacked,
        countedRaw,
        countedAggregates,
        lost,
        doubled,
        retries: counts.retries,
        retriedEvents: counts.retriedEvents,
        failovers: counts.failovers,
      };
    };
    for (const seg of segments) {
      const info = stepInfo.get(seg)!;
      rows.push(
        judge(info.step, info, seg.customers, `${seg.source.runId}-`, seg.acked, {
          sent: seg.sent,
          unacked: seg.unacked.length,
          retries: seg.retries,
          retriedEvents: seg.retriedEvents,
          failovers: seg.failovers,
        }),
      );
    }
    rows.push(
      judge(
        'freshness probes',
        {
          step: 'freshness probes',
          target: `${pr.customers.length} partitions`,
          downMs: null,
          recoverMs: null,
          freshnessAtRecoveryMs: null,
          maxStalenessMs: null,
          notes: [],
        },
        pr.customers,
        `${runId}-probe-`,
        pr.probes.map((p) => p.id),
        { sent: pr.sent, unacked: pr.unacked.length, retries: 0, retriedEvents: 0, failovers: 0 },
      ),
    );
    if (dedupCheck) violations.push(...dedupCheck.violations);
    for (const r of rows) if (r.lost || r.doubled) violations.push(`exactly_once: ${r.step}: lost ${r.lost}, doubled ${r.doubled}`);

    const customers = checkCustomers.map((_, ci) =>
      judgeCustomer(
        ck,
        ci,
        opts.checkLimit,
        checkState ? checkState.usage.map((u) => u[ci]!) : [Number.NaN],
        checkState ? checkState.raw.map((u) => u[ci]!) : [Number.NaN],
      ),
    );
    for (const c of customers) violations.push(...c.violations);
    const outcomes: Record<string, number> = {};
    const errorCodes: Record<string, number> = {};
    for (const r of ck.records) {
      outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
      if (r.status !== 200) errorCodes[`${r.status} ${r.code}`] = (errorCodes[`${r.status} ${r.code}`] ?? 0) + 1;
    }
    if (outcomes.server_error) violations.push(`checks: ${outcomes.server_error} 5xx answers other than 503`);
    if (outcomes.timeout) violations.push(`checks: ${outcomes.timeout} checks to a live instance unanswered (hang)`);
    if (outcomes.unexpected) violations.push(`checks: ${outcomes.unexpected} unexpected answers`);

    const segTotals = rows.filter((r) => r.step !== 'freshness probes');
    return {
      topology: t.kind,
      startedAt: new Date(started).toISOString(),
      durationSeconds: (Date.now() - started) / 1000,
      settleSeconds,
      machine: { cpus: os.cpus().length, loadavgStart, loadavgEnd: os.loadavg(), node: process.version },
      options: { ...opts, topology: undefined, log: undefined } as unknown as ClusterDrillReport['options'],
      rows,
      totals: {
        sent: segTotals.reduce((a, r) => a + r.sent, 0) + pr.sent,
        acknowledged: ackedTotal,
        lost: rows.reduce((a, r) => a + r.lost, 0),
        doubled: rows.reduce((a, r) => a + r.doubled, 0),
      },
      steadyFreshness: summarize(pr.freshnessSamples(tSteady0, tSteady0 + steadySeconds * 1000)),
      cpuPerThousandEvents,
      memberCpuPerThousandEvents,
      steadyWindow: { seconds: steadySeconds, events: steadyEvents, checks: checksAnswered, checkUnits },
      steadyEventsPerSec: steadyEvents / steadySeconds,
      checks: {
        sent: ck.records.length,
        skipped: ck.skipped,
        outcomes,
        errorCodes,
        latency: summarize(ck.records.filter((r) => r.status === 200).map((r) => r.latencyMs)),
        customers,
      },
      dedupCheck,
      perGateway: st.perGateway,
      violations,
    };
  } finally {
    await streamer?.stop().catch(() => undefined);
    await probe?.stop().catch(() => undefined);
    await checks?.stop().catch(() => undefined);
    for (const a of apis) a.close();
    await Promise.all(services.map((s) => s.stop().catch(() => undefined)));
    await Promise.all(replicas.map((r) => r.close().catch(() => undefined)));
    await pool.end().catch(() => undefined);
    await t.release().catch(() => undefined);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
