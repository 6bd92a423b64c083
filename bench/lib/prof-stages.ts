// Where the gateway's CPU goes per ingest stage, from a V8 .cpuprofile (BENCH_CPU_PROF=gateway):
//   npx tsx bench/lib/prof-stages.ts <file.cpuprofile> [events]
// Each sample is charged to the stage of its innermost recognisable frame (walking from the leaf to the
// root): a native leaf such as JSON.parse or a socket write is charged to whoever called it. Samples before
// the first one under the gateway's ingest code (process start, module loading, readiness) are skipped,
// so the window is the load itself. With `events` (acknowledged in that window, e.g. warm-up + steps
// from the bench JSON) it prints µs per event, and the CPU spent, which the profiler itself inflates a
// little: compare stages within one profile, and totals with the unprofiled run's gatewayCpuUsPerEvent.
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) throw new Error('usage: prof-stages.ts <file.cpuprofile> [events]');
const events = process.argv[3] ? Number(process.argv[3]) : null;
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** The stage a single frame belongs to, or null when it says nothing (native, Node internals, V8). */
function stageOf(f: CallFrame): string | null {
  const u = f.url;
  const fn = f.functionName;
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8 (program)';
  if (/node_modules\/kafkajs\//.test(u)) return 'kafkajs (partition, encode, CRC, produce, socket)';
  if (/node_modules\/avsc\/|core\/src\/events\/(avro|kafka-message|rabin)\.ts/.test(u)) return 'Avro encode (core encodeEvent)';
  if (
    /node_modules\/(ioredis|redis-parser|denque|@ioredis|standard-as-callback|cluster-key-slot)\/|gateway\/src\/dedup\.ts|redis-keys\.ts/.test(
      u,
    )
  )
    return 'dedup (key hash, Redis client)';
  if (/gateway\/src\/(validation|segment)\.ts|core\/src\/events\/contract\.ts/.test(u)) return 'validation';
  if (/gateway\/src\/(body\.ts|routes\/ingest-api\.ts)/.test(u)) return 'body (UTF-8 check, JSON.parse)';
  if (/gateway\/src\/routes\/(replies|events)\.ts|node_modules\/fastify\/lib\/(reply|error-serializer)/.test(u))
    return 'response (serialize, send)';
  if (/gateway\/src\/(ingest|produce-queue)\.ts/.test(u)) return 'ingest orchestration (ingest.ts, produce-queue.ts)';
  if (/node_modules\/prom-client\//.test(u)) return 'metrics (prom-client)';
  if (/node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify)\//.test(u)) return 'Fastify (routing, hooks)';
  if (/node:(_http|http|net|internal\/http|internal\/stream|stream|internal\/streams)/.test(u) || /^node:_http/.test(u))
    return 'HTTP server I/O (node http/net)';
  return null;
}

const stageCache = new Map<number, string>();
function stageOfNode(id: number): string {
  const cached = stageCache.get(id);
  if (cached) return cached;
  let cur: number | undefined = id;
  let stage = 'other (Node internals, timers, microtasks)';
  while (cur !== undefined) {
    const s = stageOf(byId.get(cur)!.callFrame);
    if (s) {
      stage = s;
      break;
    }
    cur = parent.get(cur);
  }
  stageCache.set(id, stage);
  return stage;
}

function underIngest(id: number): boolean {
  let cur: number | undefined = id;
  while (cur !== undefined) {
    if (/gateway\/src\/ingest\.ts/.test(byId.get(cur)!.callFrame.url)) return true;
    cur = parent.get(cur);
  }
  return false;
}

const us = new Map<string, number>();
let started = false;
let windowUs = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i]!;
  if (!started && underIngest(id)) started = true;
  if (!started) continue;
  const dt = prof.timeDeltas[i + 1] ?? 0;
  windowUs += dt;
  const s = stageOfNode(id);
  us.set(s, (us.get(s) ?? 0) + dt);
}
const busy = windowUs - (us.get('idle') ?? 0);
console.log(`${file}\nwindow ${(windowUs / 1e6).toFixed(1)} s from the first ingest sample, busy ${(busy / 1e6).toFixed(2)} s`);
if (events) console.log(`${events} events: ${(busy / events).toFixed(1)} busy µs per event (profiler on)`);
console.log('');
for (const [s, v] of [...us].sort((a, b) => b[1] - a[1])) {
  if (s === 'idle') continue;
  const perEvent = events ? `  ${(v / events).toFixed(2).padStart(7)} µs/event` : '';
  console.log(`  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${(v / 1e3).toFixed(0).padStart(6)} ms${perEvent}  ${s}`);
}
