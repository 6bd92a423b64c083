// Summarises a V8 .cpuprofile (node --cpu-prof; `BENCH_CPU_PROF=billing npm run bench` writes them to
// .cache/bench/prof/): self time aggregated by function+file, and by category (Fastify/ajv/serialization,
// Postgres, Redis, ClickHouse client, Kafka, our code, Node internals, GC/idle).
//   npx tsx bench/prof-summary.ts [file.cpuprofile | dir (newest file in it)] [top N, default 25]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const arg = process.argv[2] ?? '.cache/bench/prof';
const top = Number(process.argv[3] ?? 25);
let file = arg;
if (statSync(arg).isDirectory()) {
  const files = readdirSync(arg)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(arg, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!files[0]) throw new Error(`no .cpuprofile in ${arg}`);
  file = files[0];
}
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));

// self time of a sample = the delta to the next sample (V8's convention: timeDeltas[i] precedes samples[i])
const selfUs = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i + 1] ?? 0;
  selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + dt);
}

export function category(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  const u = url.replace(/\\\\/g, '/');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1];
  if (nm) {
    if (
      /^(fastify|@fastify\/|find-my-way|light-my-request|avvio|fast-json-stringify|ajv|@sinclair|fast-uri|json-schema-ref|rfdc|secure-json-parse|fast-querystring|toad-cache|pino|sonic-boom|thread-stream|abstract-logging|process-warning|fast-redact|on-exit-leak|content-type|proxy-addr|ipaddr|fast-decode|quick-format|safe-stable|real-require)/.test(
        nm,
      )
    )
      return /ajv|fast-json-stringify|fast-uri|@sinclair|secure-json-parse/.test(nm)
        ? 'Fastify: ajv validation / serialization'
        : /pino|sonic-boom|thread-stream/.test(nm)
          ? 'logging (pino)'
          : 'Fastify (routing, hooks, reply)';
    if (/^(pg|pg-pool|pg-protocol|pg-types|postgres-|pgpass|buffer-writer|packet-reader)/.test(nm)) return 'Postgres client (pg)';
    if (/^(ioredis|redis-parser|@ioredis|denque|cluster-key-slot|standard-as-callback)/.test(nm)) return 'Redis client (ioredis)';
    if (/clickhouse/.test(nm)) return 'ClickHouse client';
    if (/^kafkajs/.test(nm)) return 'Kafka client (kafkajs)';
    if (/^prom-client|^tdigest|^bintrees/.test(nm)) return 'metrics (prom-client)';
    if (/^(tsx|esbuild|get-tsconfig)/.test(nm)) return 'tsx loader';
    return `other dependency (${nm})`;
  }
  if (/\/(services|packages)\//.test(u)) {
    const m = /\/(services|packages)\/([^/]+)\//.exec(u)!;
    return `our code (${m[1]}/${m[2]})`;
  }
  if (u.startsWith('node:') || u === '' || !u.includes('/'))
    return u === '' ? 'native / V8 builtins' : 'Node internals (http, net, streams, timers)';
  return 'other';
}

const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const fnAgg = new Map<string, { us: number; cat: string }>();
const catAgg = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const { functionName, url, lineNumber } = n.callFrame;
  const short = url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, '~/')
    .replace(/.*\/(services|packages)\//, '$1/');
  const key = `${functionName || '(anonymous)'}  ${short}${url ? `:${lineNumber + 1}` : ''}`;
  const cat = category(url, functionName);
  const e = fnAgg.get(key) ?? { us: 0, cat };
  e.us += us;
  fnAgg.set(key, e);
  catAgg.set(cat, (catAgg.get(cat) ?? 0) + us);
}
const busy = total - (catAgg.get('idle') ?? 0);
const pct = (us: number, of: number) => `${((100 * us) / of).toFixed(1)}%`;
console.log(`${file}\nprofiled ${(total / 1e6).toFixed(1)} s, busy (not idle) ${(busy / 1e6).toFixed(1)} s\n`);
console.log('by category (self time; % of busy)');
for (const [c, us] of [...catAgg].sort((a, b) => b[1] - a[1]))
  if (c !== 'idle') console.log(`  ${pct(us, busy).padStart(6)}  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${c}`);
console.log(`\ntop ${top} functions by self time (% of busy)`);
for (const [k, v] of [...fnAgg]
  .filter(([, v]) => v.cat !== 'idle')
  .sort((a, b) => b[1].us - a[1].us)
  .slice(0, top))
  console.log(`  ${pct(v.us, busy).padStart(6)}  ${(v.us / 1e3).toFixed(0).padStart(7)} ms  ${k}  [${v.cat}]`);
