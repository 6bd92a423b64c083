// `npm run test:cluster`: the cluster drill (issue #13 items 3–4, "done when"). Brings the local cluster
// up (`stack.sh up --cluster`, reused when it runs), runs 2 gateways, 3 aggregators, 2 billing instances
// on ports 19670..19676, streams events and consuming checks while it kills and restarts a Kafka
// controller, another broker, a ClickHouse replica, an aggregator, a gateway and a billing instance
// (plus an aggregator joining late, leaving and rejoining), then prints the fault table (as
// `npm run test:faults`) with the time to recover freshness, saves bench/results/cluster-<time>.json and
// exits 1 on any lost or doubled event, a check granted past its limit, or a step that did not recover.
//
// Environment: CLUSTER_TOPOLOGY=cluster|private (private: a single-node PrivateStack on 19680..19684,
// for developing the drill), CLUSTER_STEPS (comma list, default all but the optional zookeeper_kill9;
// `none` = streaming only), CLUSTER_RATE (events/s, 300), CLUSTER_BATCH (events per request, 25),
// CLUSTER_STEADY_MS (8000), CLUSTER_DOWN_MS (how long a killed broker/replica stays down, 10000),
// CLUSTER_KILL_REPLICA (clickhouse2), CLUSTER_AGGREGATOR_REPLICAS (1,1,1), CLUSTER_BILLING_REPLICAS (1,1), CLUSTER_CHECK_RATE (checks/s,
// 30), CLUSTER_CHECK_LIMIT (1000).
import { mkdirSync, writeFileSync } from 'node:fs';
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
import path from 'node:path';
import { ROOT } from '../../bench/lib/proc.ts';
import { fmtNum, table } from '../../bench/lib/stats.ts';
import { OPTIONAL_STEPS, runClusterDrill, STEP_KINDS, type ClusterDrillReport, type StepKind } from './drill.ts';
import { clusterTopology, privateTopology } from './topology.ts';

const num = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
};
// CLUSTER_STEPS=none: streaming only (a steady-state measurement of CPU per event, no faults)
const steps = (
  process.env.CLUSTER_STEPS === 'none' ? [] : (process.env.CLUSTER_STEPS?.split(',').map((s) => s.trim()) ?? [...STEP_KINDS])
) as StepKind[];
const known: readonly string[] = [...STEP_KINDS, ...OPTIONAL_STEPS];
for (const s of steps) if (!known.includes(s)) throw new Error(`unknown step ${s}; known: ${known.join(', ')}`);
const kind = process.env.CLUSTER_TOPOLOGY ?? 'cluster';
if (kind !== 'cluster' && kind !== 'private') throw new Error('CLUSTER_TOPOLOGY must be cluster or private');
const killReplica = process.env.CLUSTER_KILL_REPLICA ?? 'clickhouse2';
if (killReplica !== 'clickhouse1' && killReplica !== 'clickhouse2')
  throw new Error('CLUSTER_KILL_REPLICA must be clickhouse1 or clickhouse2');

// CLUSTER_AGGREGATOR_REPLICAS=1,1,1 / CLUSTER_BILLING_REPLICAS=1,1: the replica each instance uses. Default:
// all on clickhouse1, the writer replica (drill.ts header); 2 = clickhouse2, to show what breaks.
function replicas<N extends number>(name: string, n: N, fallback: string): (0 | 1)[] {
  const v = (process.env[name] || fallback).split(',').map((x) => Number(x.trim()) - 1);
  if (v.length !== n || v.some((x) => x !== 0 && x !== 1)) throw new Error(`${name} must be ${n} of 1 or 2, e.g. ${fallback}`);
  return v as (0 | 1)[];
}

const report = await runClusterDrill({
  topology: kind === 'cluster' ? await clusterTopology() : privateTopology(),
  steps,
  eventsPerSec: num('CLUSTER_RATE', 300),
  batchSize: num('CLUSTER_BATCH', 25),
  concurrency: 8,
  steadyMs: num('CLUSTER_STEADY_MS', 8_000),
  memberDownMs: num('CLUSTER_DOWN_MS', 10_000),
  killReplica,
  aggregatorReplicas: replicas('CLUSTER_AGGREGATOR_REPLICAS', 3, '1,1,1') as [0 | 1, 0 | 1, 0 | 1],
  billingReplicas: replicas('CLUSTER_BILLING_REPLICAS', 2, '1,1') as [0 | 1, 0 | 1],
  checksPerSec: num('CLUSTER_CHECK_RATE', 30),
  checkCustomers: 4,
  checkLimit: num('CLUSTER_CHECK_LIMIT', 1000),
  probeIntervalMs: 500,
  recoverTimeoutMs: 180_000,
  settleTimeoutMs: 240_000,
});

function clusterTable(r: ClusterDrillReport): string {
  const s = (ms: number | null) => (ms === null ? '-' : (ms / 1000).toFixed(1));
  return table([
    [
      'step',
      'target',
      'events sent',
      'acknowledged',
      'counted raw r1/r2',
      'counted aggregates r1/r2',
      'lost',
      'doubled',
      'retried requests',
      'failovers',
      'fault s',
      'fresh after restart s',
      'worst staleness s',
    ],
    ...r.rows.map((x) => [
      x.step,
      x.target,
      x.sent,
      x.acknowledged,
      x.countedRaw.join('/'),
      x.countedAggregates.map((v) => v ?? '-').join('/'),
      x.lost,
      x.doubled,
      x.retries,
      x.failovers,
      s(x.downMs),
      s(x.recoverMs),
      s(x.maxStalenessMs),
    ]),
  ]);
}

const m = report.machine;
console.log(
  `\nCluster drill (${report.topology}) — ${m.cpus} CPUs shared, load average ${m.loadavgStart.map((x) => x.toFixed(1)).join(' ')} at the start, ` +
    `${m.loadavgEnd.map((x) => x.toFixed(1)).join(' ')} at the end; Node ${m.node}; ${report.durationSeconds.toFixed(0)} s, settled in ${report.settleSeconds.toFixed(1)} s`,
);
console.log(clusterTable(report));
for (const x of report.rows) if (x.notes.length) console.log(`  ${x.step}: ${x.notes.join('; ')}`);
const f = report.steadyFreshness;
console.log(
  `steady: ${fmtNum(report.steadyEventsPerSec, 0)} events/s acknowledged; freshness (gateway 200 -> visible in a replica, 250 ms polls) p50 ${f.p50Ms} / p99 ${f.p99Ms} / max ${f.maxMs} ms; ` +
    `CPU s per 1,000 events: ${Object.entries(report.cpuPerThousandEvents)
      .map(([k, v]) => `${k} ${fmtNum(v, 3)}`)
      .join(', ')} (billing: per 1,000 answered checks; aggregator: events + granted check units)`,
);
const mc = Object.entries(report.memberCpuPerThousandEvents);
if (mc.length) console.log(`backing members, CPU s per 1,000 pipeline events: ${mc.map(([k, v]) => `${k} ${fmtNum(v, 3)}`).join(', ')}`);
console.log(`gateways (attempts/acked/failed): ${report.perGateway.map((g) => `${g.attempts}/${g.acked}/${g.failed}`).join(', ')}`);
const c = report.checks;
console.log(
  `consuming checks: ${c.sent} sent (${c.skipped} skipped at the client cap): ${Object.entries(c.outcomes)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}; non-200: ${
    Object.entries(c.errorCodes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-'
  }; 200 latency p50 ${c.latency.p50Ms} / p99 ${c.latency.p99Ms} ms`,
);
console.log(
  table([
    ['customer', 'limit', 'checks', 'granted units', 'denied at limit', 'indeterminate units', '503 units', 'usage b1/b2', 'raw r1/r2'],
    ...c.customers.map((x) => [
      x.customerId,
      x.limit,
      x.checks,
      x.grantedUnits,
      x.deniedAtLimit,
      x.indeterminateUnits,
      x.unavailableUnits,
      x.usage.join('/'),
      x.raw.join('/'),
    ]),
  ]),
);
const dir = path.join(ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `cluster-${report.topology === 'private' ? 'private-' : ''}${report.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.log(`results: ${path.relative(ROOT, file)}`);
if (report.violations.length) {
  console.log(`FAIL: ${report.violations.length} violation(s)`);
  for (const v of report.violations) console.log(`  ${v}`);
  process.exit(1);
}
console.log(
  `PASS: ${report.totals.acknowledged} acknowledged events counted exactly once on both replicas (0 lost, 0 doubled); no check granted past its limit`,
);
process.exit(0);
