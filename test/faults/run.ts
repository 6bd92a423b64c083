// `npm run test:faults`: the full fault drill (every fault kind, 3 times each) on a private stack.
// Prints the fault table, saves it as JSON under bench/results/, exits 1 if anything was lost or doubled.
// Environment: FAULTS_REPETITIONS (default 3), FAULTS_KINDS (comma list), FAULTS_RATE (events/s, default 1000).
import { mkdirSync, writeFileSync } from 'node:fs';
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../../bench/lib/proc.ts';
import { FAULT_KINDS, faultTable, runDrill, type FaultKind } from './drill.ts';

const kinds = (process.env.FAULTS_KINDS?.split(',').map((s) => s.trim()) ?? [...FAULT_KINDS]) as FaultKind[];
for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new Error(`unknown fault kind ${k}; known: ${FAULT_KINDS.join(', ')}`);

const report = await runDrill({
  basePort: 19410,
  faults: kinds,
  repetitions: Number(process.env.FAULTS_REPETITIONS ?? 3),
  eventsPerSec: Number(process.env.FAULTS_RATE ?? 1000),
  batchSize: 50,
  concurrency: 4,
  steadyMs: 4_000,
  clickhouseDownMs: 30_000,
  settleTimeoutMs: 180_000,
});

console.log(`\nFault drill — ${os.cpus().length} CPUs, Node ${process.version}, ${report.durationSeconds.toFixed(0)} s`);
console.log(faultTable(report.rows));
for (const r of report.rows) if (r.notes.length) console.log(`  ${r.fault}: ${r.notes.join('; ')}`);
const dir = path.join(ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `faults-${report.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ machine: { cpus: os.cpus().length, node: process.version }, ...report }, null, 2) + '\n');
console.log(`results: ${path.relative(ROOT, file)}`);
const bad = report.rows.filter((r) => r.lost > 0 || r.doubled > 0 || r.countedAggregates !== r.countedRaw);
if (report.rows.length < kinds.length || bad.length) {
  console.log(
    `FAIL: ${bad.map((r) => `${r.fault} (lost ${r.lost}, doubled ${r.doubled}, raw ${r.countedRaw}, aggregates ${r.countedAggregates})`).join(', ') || ''}${report.rows.length < kinds.length ? ' some fault kinds were not run' : ''}`,
  );
  process.exit(1);
}
process.exit(0);
