// `npm run test:faults`: the full fault drill on a private stack — every fault kind (aggregator, gateway
// and billing kill -9, broker restart, ClickHouse down 30 s, Redis restart, poison records, an
// aggregator stall) injected FAULT_INJECTIONS times (default 10). Prints the fault table, saves it as
// JSON under bench/results/faults-<time>.json, exits 1 if anything was lost or doubled or a kind failed
// its own checks (a poison record not dead-lettered, a stall /readyz did not report, an over-limit grant).
// Environment: FAULT_INJECTIONS (10; FAULTS_REPETITIONS is the old name), FAULTS_KINDS (comma list),
// FAULTS_RATE (events/s, 1000), FAULTS_CHECK_RATE (consuming checks/s, 40), FAULTS_CHECK_LIMIT (hard limit
// per billing customer; default scales with the injections), FAULTS_BASE_PORT (19410; 19800, 19810, ...
// run a second drill side by side), FAULTS_SESSION_TIMEOUT_MS (the aggregator's, 30000).
import { mkdirSync, writeFileSync } from 'node:fs';
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../../bench/lib/proc.ts';
import { FAULT_KINDS, faultTable, rowPasses, runDrill, type FaultKind } from './drill.ts';

const num = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
};

const kinds = (process.env.FAULTS_KINDS?.split(',').map((s) => s.trim()) ?? [...FAULT_KINDS]) as FaultKind[];
for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new Error(`unknown fault kind ${k}; known: ${FAULT_KINDS.join(', ')}`);
const injections = num('FAULT_INJECTIONS', num('FAULTS_REPETITIONS', 10));
const checkRate = num('FAULTS_CHECK_RATE', 40);
const load = os.loadavg();

const report = await runDrill({
  basePort: num('FAULTS_BASE_PORT', 19410),
  faults: kinds,
  repetitions: injections,
  eventsPerSec: num('FAULTS_RATE', 1000),
  batchSize: 50,
  concurrency: 4,
  steadyMs: 4_000,
  clickhouseDownMs: 30_000,
  settleTimeoutMs: 180_000,
  stallAfterMs: 3_000,
  // the production default (30 s): recovery after an aggregator kill -9 includes the group's wait for the dead member
  sessionTimeoutMs: num('FAULTS_SESSION_TIMEOUT_MS', 30_000),
  // ~2 units per check over 2 customers; each injection takes ≥ 5 s: the limit is reached about midway
  billing: {
    limit: num('FAULTS_CHECK_LIMIT', Math.max(200, injections * 250)),
    checksPerSec: checkRate,
    customers: 2,
    exhaustTimeoutMs: 240_000,
  },
});

const loadAfter = os.loadavg();
console.log(
  `\nFault drill — ${os.cpus().length} CPUs, Node ${process.version}, ${report.durationSeconds.toFixed(0)} s, ` +
    `load average at start ${load.map((l) => l.toFixed(1)).join('/')}, at end ${loadAfter.map((l) => l.toFixed(1)).join('/')}`,
);
console.log(faultTable(report.rows));
for (const r of report.rows) {
  if (r.notes.length) console.log(`  ${r.fault}: ${[...new Set(r.notes)].join('; ')}`);
  if (r.poison) console.log(`  ${r.fault}: dead-letter reasons ${JSON.stringify(r.poison.reasons)}`);
  for (const f of r.failures) console.log(`  ${r.fault} FAILURE: ${f}`);
}
const dir = path.join(ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `faults-${report.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ machine: { cpus: os.cpus().length, node: process.version, loadAverageStart: load, loadAverageEnd: loadAfter }, ...report }, null, 2)}\n`,
);
console.log(`results: ${path.relative(ROOT, file)}`);
const bad = report.rows.filter((r) => !rowPasses(r));
if (report.rows.length < kinds.length || bad.length) {
  console.log(
    `FAIL: ${bad.map((r) => `${r.fault} (lost ${r.lost}, doubled ${r.doubled}, raw ${r.countedRaw}, aggregates ${r.countedAggregates}, failures ${r.failures.length})`).join(', ') || ''}${report.rows.length < kinds.length ? ' some fault kinds were not run' : ''}`,
  );
  process.exit(1);
}
process.exit(0);
