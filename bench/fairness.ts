// `npm run bench:fairness` — issue #18 item 2, "no noisy neighbours in the aggregator", at full size:
// ~1,800 metric definitions across 200 organizations (one with 500), the aggregator as a child process.
//
//   restart   the aggregator restarts with every version's backfill complete: how many completed
//             backfills are redone (status rows written for them after the restart) and how long until
//             a metric created in a fresh organization right after the restart counts its recent events
//   backlog   the big organization changes all 500 definitions at once (500 new versions to backfill):
//             time until a new metric of a fresh organization counts its recent events, and another
//             organization's live freshness (event produced -> visible in queryUsage) during the backlog
//             next to the same probe with no backlog; backlog progress after BENCH_FAIR_BACKLOG_S, and
//             the aggregator's CPU time
//
// Runs on the shared stack with databases of its own (Postgres and ClickHouse `meterline_fair_<run>`,
// dropped at the end unless BENCH_FAIR_KEEP=1) and its own topic, on port 19850 (private range
// 19850-19869). BENCH_FAIR_AGGREGATOR_SRC runs another aggregator source tree (e.g. a copy of the
// previous version for a before/after comparison). Setup shortcut: the 1,800 first versions are
// recorded as backfilled (the rows a completed backfill leaves, as long after their creation); the
// backlog phase's 500 new versions are really backfilled. Results: bench/results/<time>-fairness.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
import {
  createClickHouse,
  createKafka,
  createPostgres,
  encodeEvent,
  eventKey,
  loadConfig,
  queryUsage,
  setupBackingServices,
  sqlString,
  type MetricDefinition,
  type UsageEvent,
} from '@meterline/core';
import { createTestOrganization } from '../test/support/fixtures.ts';
import { waitFor } from '../test/support/wait.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const RUN = Date.now().toString(36);
const DB = `meterline_fair_${RUN}`;
const PORT = Number(process.env.BENCH_FAIR_PORT ?? 19850);
const ORGS = Number(process.env.BENCH_FAIR_ORGS ?? 200);
const BIG = Number(process.env.BENCH_FAIR_BIG_METRICS ?? 500);
const TOTAL = Number(process.env.BENCH_FAIR_METRICS ?? 1800);
const BIG_EVENTS = Number(process.env.BENCH_FAIR_BIG_EVENTS ?? 20_000);
const BACKLOG_S = Number(process.env.BENCH_FAIR_BACKLOG_S ?? 60);
const SRC = path.resolve(ROOT, process.env.BENCH_FAIR_AGGREGATOR_SRC ?? 'services/aggregator/src');
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${DB}`,
  CLICKHOUSE_DATABASE: DB,
  KAFKA_EVENTS_TOPIC: `${DB}.events`,
  KAFKA_DEAD_LETTER_TOPIC: `${DB}.dlq`,
  KAFKA_EVENTS_PARTITIONS: '6',
  AGGREGATOR_GROUP_ID: `${DB}-aggregator`,
  AGGREGATOR_PORT: String(PORT),
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
};
const config = loadConfig(env);
const log = (s: string) => console.log(`[fairness ${new Date().toISOString().slice(11, 19)}] ${s}`);
const NOW = Date.now();
const DAY = 86_400_000;

class Child {
  private p: ChildProcess | null = null;
  async start(): Promise<number> {
    const t0 = Date.now();
    this.p = spawn(process.execPath, ['--import', 'tsx', path.join(SRC, 'main.ts')], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await waitFor(
      () =>
        fetch(`http://127.0.0.1:${PORT}/readyz`)
          .then((r) => r.status)
          .catch(() => 0),
      (s) => s === 200,
      { timeoutMs: 120_000, intervalMs: 100, what: 'aggregator ready' },
    );
    return Date.now() - t0;
  }
  /** User + system CPU seconds of the child so far (/proc/<pid>/stat, clock ticks of 100 Hz). */
  cpuSeconds(): number {
    if (!this.p?.pid) return 0;
    const f = readFileSync(`/proc/${this.p.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) / 100;
  }
  async stop(): Promise<void> {
    const p = this.p;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
    this.p = null;
  }
  async metric(name: string): Promise<number> {
    const text = await fetch(`http://127.0.0.1:${PORT}/metrics`).then((r) => r.text());
    return text
      .split('\n')
      .filter((l) => l.startsWith(name))
      .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : Number.NaN;
};

await setupBackingServices(config);
const pool = createPostgres(config.postgresUrl, { max: 4 });
const ch = createClickHouse(config.clickhouse);
const kafka = createKafka(config.kafka);
const producer = kafka.producer();
await producer.connect();
const agg = new Child();
const result: Record<string, unknown> = {
  run: RUN,
  source: path.relative(ROOT, SRC),
  load_average: (await import('node:os')).loadavg(),
  orgs: ORGS,
  metrics: TOTAL,
  big_metrics: BIG,
};

async function produce(events: UsageEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 1000) {
    await producer.send({
      topic: config.kafka.eventsTopic,
      acks: -1,
      messages: events.slice(i, i + 1000).map((e) => ({ key: eventKey(e), value: encodeEvent(e) })),
    });
  }
}
const ev = (org: string, name: string, id: string, timeMs: number, customerId = 'c1'): UsageEvent => ({
  organizationId: org,
  customerId,
  eventName: name,
  idempotencyId: id,
  timeCreatedMs: timeMs,
  receivedAtMs: Date.now(),
  properties: { tokens: 1 },
  source: 'api',
});
async function insertMetric(m: Omit<MetricDefinition, 'version'>, version = 1): Promise<MetricDefinition> {
  await pool.query(
    `INSERT INTO billable_metrics (organization_id, metric_id, version, event_name, aggregation, property, filters, group_by)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
    [m.organizationId, m.metricId, version, m.eventName, m.aggregation, m.property, JSON.stringify(m.filters), JSON.stringify(m.groupBy)],
  );
  return { ...m, version };
}
const count = (org: string, id: string): Omit<MetricDefinition, 'version'> => ({
  organizationId: org,
  metricId: id,
  eventName: 'req',
  aggregation: 'count',
  property: null,
  filters: [],
  groupBy: [],
});
async function total(m: MetricDefinition, from: Date, customerId?: string): Promise<number> {
  const rows = await queryUsage(ch, { metric: m, from, to: new Date(Date.now() + DAY), ...(customerId ? { customerId } : {}) });
  return rows.reduce((s, r) => s + r.value, 0);
}
async function doneCount(org?: string): Promise<number> {
  const rs = await ch.query({
    query: `SELECT toUInt32(count()) AS c FROM (SELECT organization_id, metric_id, metric_version FROM metric_backfills
              ${org ? `WHERE organization_id = ${sqlString(org)}` : ''} GROUP BY organization_id, metric_id, metric_version HAVING max(status_rank) = 2)`,
    format: 'JSONEachRow',
  });
  return Number((await rs.json<{ c: number }>())[0]?.c ?? 0);
}
/** A new metric in a fresh organization with 50 events of the last 20 minutes: ms until all count. */
async function freshMetricMs(label: string): Promise<number> {
  const org = (await createTestOrganization(pool, { name: `fair-${label}` })).organizationId;
  await produce(Array.from({ length: 50 }, (_, i) => ev(org, 'req', `${label}-${i}`, Date.now() - 20 * 60_000 + i * 1000)));
  await waitFor(
    async () => {
      const rs = await ch.query({
        query: `SELECT toUInt32(count()) AS c FROM events WHERE organization_id = ${sqlString(org)}`,
        format: 'JSONEachRow',
      });
      return Number((await rs.json<{ c: number }>())[0]?.c);
    },
    (c) => c >= 50,
    { timeoutMs: 60_000, what: `${label} events stored` },
  );
  const t0 = Date.now();
  const m = await insertMetric(count(org, 'reqs'));
  await waitFor(
    () => total(m, new Date(Date.now() - 3_600_000)),
    (v) => v === 50,
    { timeoutMs: 180_000, intervalMs: 50, what: `${label}: new metric counts its recent events` },
  );
  return Date.now() - t0;
}
/** Live freshness of one organization's existing metric: produce one event, ms until visible (sequential probes). */
async function probeFreshness(
  m: MetricDefinition,
  seconds: number,
  label: string,
): Promise<{ p50: number; p99: number; max: number; n: number }> {
  const lat: number[] = [];
  const end = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < end; i++) {
    const customer = `probe-${label}-${i}`;
    const t0 = Date.now();
    await produce([ev(m.organizationId, 'req', `${customer}`, Date.now(), customer)]);
    await waitFor(
      () => total(m, new Date(Date.now() - 3_600_000), customer),
      (v) => v === 1,
      { timeoutMs: 60_000, intervalMs: 25, what: 'probe visible' },
    );
    lat.push(Date.now() - t0);
  }
  return { p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat), n: lat.length };
}

try {
  log(`source ${path.relative(ROOT, SRC)}; ${TOTAL} metrics over ${ORGS} organizations (one with ${BIG}); databases ${DB}`);
  // organizations and definitions; events: the big organization BIG_EVENTS over 30 days, every other 50
  const orgs: string[] = [];
  for (let i = 0; i < ORGS; i++) orgs.push((await createTestOrganization(pool, { name: `fair-${i}` })).organizationId);
  const bigOrg = orgs[0] as string;
  const probeOrg = orgs[1] as string;
  const bigMetrics: MetricDefinition[] = [];
  // the big organization's metrics over 50 event names (10 per name), like a real catalog
  for (let i = 0; i < BIG; i++) bigMetrics.push(await insertMetric({ ...count(bigOrg, `m${i}`), eventName: `e${i % 50}` }));
  const small: MetricDefinition[] = [];
  for (let i = 0; i < TOTAL - BIG; i++) small.push(await insertMetric(count(orgs[1 + (i % (ORGS - 1))] as string, `m${i}`)));
  // recorded as backfilled long ago (see the header): the rows a completed backfill leaves
  await ch.insert({
    table: 'metric_backfills',
    format: 'JSONEachRow',
    values: [...bigMetrics, ...small].map((m) => ({
      organization_id: m.organizationId,
      metric_id: m.metricId,
      metric_version: m.version,
      status: 'done',
      status_rank: 2,
      rows_written: 0,
    })),
  });
  await produce(
    Array.from({ length: BIG_EVENTS }, (_, i) =>
      ev(bigOrg, `e${i % 50}`, `big-${i}`, NOW - 30 * DAY + Math.floor((i * 30 * DAY) / BIG_EVENTS), `c${i % 50}`),
    ),
  );
  await produce(
    orgs.slice(1).flatMap((o, k) => Array.from({ length: 50 }, (_, i) => ev(o, 'req', `s${k}-${i}`, NOW - 7 * DAY + i * 3_600_000))),
  );

  await agg.start();
  await waitFor(
    async () => {
      const rs = await ch.query({ query: 'SELECT toUInt32(count()) AS c FROM events', format: 'JSONEachRow' });
      return Number((await rs.json<{ c: number }>())[0]?.c);
    },
    (c) => c >= BIG_EVENTS + (ORGS - 1) * 50,
    { timeoutMs: 600_000, intervalMs: 1000, what: 'events stored' },
  );
  log(`${BIG_EVENTS + (ORGS - 1) * 50} events stored; ${await doneCount()} versions recorded done`);

  // --- restart ---
  await agg.stop();
  const restartSec = Math.floor(Date.now() / 1000);
  await waitFor(
    async () => Math.floor(Date.now() / 1000),
    (s) => s > restartSec,
    { timeoutMs: 2000, intervalMs: 20 },
  );
  const readyMs = await agg.start();
  const restartFreshMs = await freshMetricMs('after-restart');
  const rs = await ch.query({
    query: `SELECT toUInt32(count()) AS c FROM metric_backfills WHERE toUInt32(updated_at) > ${restartSec} AND metric_id != 'reqs'`,
    format: 'JSONEachRow',
  });
  const redone = Number((await rs.json<{ c: number }>())[0]?.c);
  result['restart'] = { ready_ms: readyMs, new_metric_counts_ms: restartFreshMs, status_rows_rewritten_for_completed: redone };
  log(
    `restart: ready in ${readyMs} ms; a fresh organization's new metric counted its recent events ${restartFreshMs} ms after creation; status rows rewritten for completed versions: ${redone}`,
  );
  // wait until the restart's own work (if any) is over before the backlog phase
  await waitFor(
    () => agg.metric('meterline_aggregator_backfill_queue'),
    (q) => q === 0 || Number.isNaN(q),
    { timeoutMs: 600_000, intervalMs: 1000, what: 'restart work finished' },
  ).catch(() => undefined);

  // --- backlog: baseline freshness first, then 500 new versions of the big organization ---
  const probeMetric = small.find((m) => m.organizationId === probeOrg) as MetricDefinition;
  const idle = await probeFreshness(probeMetric, 15, 'idle');
  log(`freshness of another organization, no backlog: p50 ${idle.p50} ms, p99 ${idle.p99} ms (${idle.n} probes)`);
  const cpu0 = agg.cpuSeconds();
  await pool.query('UPDATE billable_metrics SET version = version + 1, updated_at = now() WHERE organization_id = $1', [bigOrg]);
  const bumped = Date.now();
  const doneBefore = await doneCount(bigOrg);
  const [busy, backlogFreshMs] = await Promise.all([
    probeFreshness(probeMetric, Math.max(15, BACKLOG_S - 5), 'busy'),
    freshMetricMs('during-backlog'),
  ]);
  const elapsed = (Date.now() - bumped) / 1000;
  const doneAfter = (await doneCount(bigOrg)) - doneBefore;
  const cpu = agg.cpuSeconds() - cpu0;
  result['backlog'] = {
    new_metric_counts_ms: backlogFreshMs,
    other_org_freshness_idle: idle,
    other_org_freshness_during_backlog: busy,
    big_versions_done: doneAfter,
    seconds: elapsed,
    aggregator_cpu_s: cpu,
  };
  log(
    `backlog: fresh organization's new metric counted its recent events in ${backlogFreshMs} ms; another organization's freshness ` +
      `p50 ${busy.p50} / p99 ${busy.p99} ms (idle ${idle.p50} / ${idle.p99}); ${doneAfter}/${BIG} big versions done after ${elapsed.toFixed(0)} s; aggregator CPU ${cpu.toFixed(1)} s`,
  );
  result['load_average_end'] = (await import('node:os')).loadavg();
} finally {
  await agg.stop().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  if (process.env.BENCH_FAIR_KEEP !== '1') {
    await ch.command({ query: `DROP DATABASE IF EXISTS ${DB}` }).catch(() => undefined);
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics: [config.kafka.eventsTopic, config.kafka.deadLetterTopic] }))
      .catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
  await ch.close();
  await pool.end();
  if (process.env.BENCH_FAIR_KEEP !== '1') {
    const root = createPostgres('postgres://postgres@127.0.0.1:5432/postgres', { max: 1 });
    await root.query(`DROP DATABASE IF EXISTS ${DB}`).catch(() => undefined);
    await root.end();
  }
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  const file = path.join(ROOT, 'bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}-fairness.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`results: ${path.relative(ROOT, file)}`);
}
