// `npm run test:faults:entitlements`: the entitlement-check fault drill (issue #11 item 5) on a private
// stack (ports 19470..19479): consuming checks streamed round-robin to 3 billing instances while billing
// instances are kill -9'd (12 times, rotating), Redis is restarted (2) and Kafka is restarted (2).
// Prints the tables, saves JSON under bench/results/faults-entitlements-<time>.json, exits 1 on any
// violation (over-grant, lost granted unit, usage from nowhere, a non-503 failure, a hang, ...).
// Environment: ENT_FAULTS_KILLS (12), ENT_FAULTS_REDIS (2), ENT_FAULTS_KAFKA (2), ENT_FAULTS_RATE (checks/s, 120),
// ENT_FAULTS_INSTANCES (3), ENT_FAULTS_CUSTOMERS (4), ENT_FAULTS_LIMIT (3000).
import { mkdirSync, writeFileSync } from 'node:fs';
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../../bench/lib/proc.ts';
import { fmtNum, table } from '../../bench/lib/stats.ts';
import { customerTable, runEntitlementDrill, windowTable } from './entitlement-drill.ts';

const num = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
};

const report = await runEntitlementDrill({
  basePort: 19470,
  billingInstances: num('ENT_FAULTS_INSTANCES', 3),
  billingKills: num('ENT_FAULTS_KILLS', 12),
  redisRestarts: num('ENT_FAULTS_REDIS', 2),
  kafkaRestarts: num('ENT_FAULTS_KAFKA', 2),
  customers: num('ENT_FAULTS_CUSTOMERS', 4),
  limit: num('ENT_FAULTS_LIMIT', 3000),
  checksPerSec: num('ENT_FAULTS_RATE', 120),
  maxOutstanding: 256,
  requestTimeoutMs: 15_000,
  answerDeadlineMs: 10_000,
  steadyMs: 3_000,
  tailMs: 5_000,
  exhaustTimeoutMs: 120_000,
  settleTimeoutMs: 180_000,
});

console.log(
  `\nEntitlement fault drill — ${os.cpus().length} CPUs, Node ${process.version}, ${report.durationSeconds.toFixed(0)} s total, ` +
    `${report.streamSeconds.toFixed(0)} s streaming, settled in ${report.settleSeconds.toFixed(1)} s`,
);
console.log(
  `${report.checksSent} consuming checks (${fmtNum(report.checksPerSec, 1)}/s, ${report.checksSkipped} skipped at the client cap): ` +
    Object.entries(report.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
);
console.log(
  `denied by reason: ${
    Object.entries(report.deniedByReason)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-'
  }`,
);
console.log(
  `non-200 answers by code: ${
    Object.entries(report.errorCodes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-'
  }`,
);
const l = report.latency;
console.log(
  table([
    ['latency (ms)', 'count', 'p50', 'p99', 'max'],
    ['granted', l.granted.count, l.granted.p50Ms, l.granted.p99Ms, l.granted.maxMs],
    ['denied', l.denied.count, l.denied.p50Ms, l.denied.p99Ms, l.denied.maxMs],
    ['error answers', l.errors.count, l.errors.p50Ms, l.errors.p99Ms, l.errors.maxMs],
  ]),
);
console.log('\nPer customer (final usage = GET /v1/usage after settling):');
console.log(customerTable(report.customers));
console.log('\nPer fault window (checks by the window they were sent in):');
console.log(windowTable(report.windows));
for (const f of report.faults) if (f.notes) console.log(`  ${f.label}: ${(f.durationMs / 1000).toFixed(1)} s, ${f.notes}`);

const dir = path.join(ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `faults-entitlements-${report.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ machine: { cpus: os.cpus().length, node: process.version }, ...report }, null, 2)}\n`);
console.log(`\nresults: ${path.relative(ROOT, file)}`);
if (report.violations.length) {
  console.log(`FAIL: ${report.violations.length} violation(s)`);
  for (const v of report.violations) console.log(`  ${v.rule}: ${v.detail}`);
  process.exit(1);
}
console.log('PASS: no over-grant, no granted unit lost, nothing from nowhere, every dependency failure a 503 with a code');
process.exit(0);
