// Fault drill for consuming entitlement checks (issue #11 item 5): streamers send
// `POST /v1/check {send_event: true}` round-robin to several billing instances while the drill kill -9s
// billing instances (rotating), restarts Redis and restarts Kafka. Afterwards, once ClickHouse has
// settled, per customer: no over-grant (usage <= hard limit), no granted unit lost (usage >= units
// answered allowed:true), nothing from nowhere (usage <= granted + indeterminate units), and every
// failure while a dependency was down is a 503 with a JSON error code (never a 500, never a hang).
//
// Billing is a black box over HTTP (catalog, customers and subscriptions are created through its API).
// Kafka, ClickHouse and Redis are a PrivateStack (own ports and data, because the drill restarts them);
// billing and the aggregator are child processes so they can be kill -9'd. Postgres is the machine's own
// (never stopped); the drill uses its own database, meterline_faults_ent.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createClickHouse, createPostgres, loadConfig, setupBackingServices, type ClickHouseClient, type Config } from '@meterline/core';
import { PrivateStack } from '../support/private-stack.ts';
import { createTestOrganization } from '../support/fixtures.ts';
import { waitFor } from '../support/wait.ts';
import { ServiceProcess, portInUse, ROOT } from '../../bench/lib/proc.ts';
import { ensurePostgres, ensureStackInstalled } from '../../bench/lib/env.ts';
import { rawCount } from '../../bench/lib/usage.ts';
import { sleep, summarize, table, type LatencySummary } from '../../bench/lib/stats.ts';

export type EntitlementFault = 'billing_kill9' | 'redis_restart' | 'kafka_restart';

export interface EntitlementDrillOptions {
  /** A free range of 10 ports: PrivateStack base..base+4, aggregator base+5, billing base+6.. */
  basePort: number;
  /** 2..4 billing instances */
  billingInstances: number;
  billingKills: number;
  redisRestarts: number;
  kafkaRestarts: number;
  customers: number;
  /** hard limit per customer and billing period */
  limit: number;
  /** consuming checks per second, all instances together */
  checksPerSec: number;
  /** client-side cap on outstanding requests (a send over the cap is skipped and counted) */
  maxOutstanding: number;
  /** the client gives up after this long: no answer by then is a hang (and indeterminate) */
  requestTimeoutMs: number;
  /**
   * An answer (any status) later than this is a violation too: billing's own HTTP request timeout
   * (HTTP_REQUEST_TIMEOUT_MS, default 10 s). requestTimeoutMs is longer so the late answers are seen.
   */
  answerDeadlineMs: number;
  /** normal streaming before the first fault and between faults */
  steadyMs: number;
  /** after the last fault: stream at least this long, and until every customer was denied at its limit */
  tailMs: number;
  exhaustTimeoutMs: number;
  settleTimeoutMs: number;
  log?: (msg: string) => void;
}

export type Outcome = 'granted' | 'denied' | 'unavailable' | 'server_error' | 'unexpected' | 'refused' | 'indeterminate' | 'timeout';

export interface WindowStats {
  /** fault label (`billing_kill9#3 (billing-2)`, `redis_restart#1`) or `steady` */
  window: string;
  kind: EntitlementFault | 'steady';
  durationMs: number;
  sent: number;
  outcomes: Partial<Record<Outcome, number>>;
  /** "<status> <error code>" -> count, for every answer that is not a 200 */
  errorCodes: Record<string, number>;
  /** slowest answer that was not a 200 (ms), null if none */
  maxErrorLatencyMs: number | null;
  /** answers (any status) later than answerDeadlineMs */
  late: number;
  maxLatencyMs: number | null;
}

export interface CustomerResult {
  customerId: string;
  limit: number;
  checks: number;
  grantedChecks: number;
  grantedUnits: number;
  deniedChecks: number;
  deniedAtLimit: number;
  /** units of requests whose effect is unknown (connection cut mid-request, timeout, 5xx other than 503) */
  indeterminateUnits: number;
  /** units of requests answered 503 (billing says nothing was consumed) */
  unavailableUnits: number;
  /** billing's GET /v1/usage total after settling (the aggregates) */
  finalUsage: number;
  /** raw events table (FINAL) count for the customer */
  finalRawEvents: number;
  /** GET /v1/customers/:id/entitlements/:feature current_usage after settling (max(ledger, ClickHouse)) */
  entitlementCurrentUsage: number | null;
  /** ms from the first check to the first denial at the limit */
  limitReachedAfterMs: number | null;
}

export interface Violation {
  rule: string;
  detail: string;
}

export interface EntitlementDrillReport {
  startedAt: string;
  durationSeconds: number;
  streamSeconds: number;
  settleSeconds: number;
  options: Omit<EntitlementDrillOptions, 'log'>;
  faults: { kind: EntitlementFault; label: string; durationMs: number; notes: string }[];
  checksSent: number;
  checksSkipped: number;
  checksPerSec: number;
  outcomes: Partial<Record<Outcome, number>>;
  deniedByReason: Record<string, number>;
  errorCodes: Record<string, number>;
  latency: { granted: LatencySummary; denied: LatencySummary; errors: LatencySummary };
  windows: WindowStats[];
  customers: CustomerResult[];
  settled: boolean;
  violations: Violation[];
}

export interface CheckRecord {
  customer: number;
  instance: number;
  units: number;
  sentAt: number;
  latencyMs: number;
  window: string;
  outcome: Outcome;
  status: number;
  code: string | null;
  reason: string | null;
  eventsRecorded: number | null;
}

export const FEATURE = 'api';
export const METRIC = 'api_calls';
export const EVENT = 'api_call';
export const PLAN = 'drill_plan';

/** Interleaves the faults: Redis and Kafka restarts spread evenly among the billing kills. */
export function faultSchedule(kills: number, redis: number, kafka: number): EntitlementFault[] {
  const others: EntitlementFault[] = [];
  for (let i = 0; i < Math.max(redis, kafka); i++) {
    if (i < redis) others.push('redis_restart');
    if (i < kafka) others.push('kafka_restart');
  }
  const total = kills + others.length;
  const out: (EntitlementFault | null)[] = new Array(total).fill(null);
  others.forEach((f, j) => {
    let at = Math.min(total - 1, Math.floor(((j + 1) * total) / (others.length + 1)));
    while (out[at] !== null) at = (at + 1) % total;
    out[at] = f;
  });
  return out.map((f) => f ?? 'billing_kill9');
}

// ------------------------------------------------------------------------------------------------
// HTTP

interface Answer {
  status: number;
  body: string;
  errCode?: string;
  timedOut?: boolean;
}

function httpCall(
  agent: http.Agent,
  base: URL,
  apiKey: string,
  method: 'GET' | 'POST',
  p: string,
  body: unknown,
  timeoutMs: number,
): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: p,
        method,
        agent,
        headers: {
          'x-api-key': apiKey,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err: NodeJS.ErrnoException) => done({ status: 0, body: String(err), errCode: err.code ?? 'response_error' }));
      },
    );
    const timer = setTimeout(() => {
      done({ status: 0, body: 'timeout', timedOut: true });
      req.destroy(new Error('timeout'));
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => done({ status: 0, body: String(err), errCode: err.code ?? err.message }));
    req.end(payload);
  });
}

function errorCodeOf(body: string): string | null {
  try {
    const j = JSON.parse(body) as { error?: { code?: unknown } };
    return typeof j?.error?.code === 'string' ? j.error.code : null;
  } catch {
    return null;
  }
}

export class Api {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}
  async call(method: 'GET' | 'POST', p: string, body?: unknown): Promise<{ status: number; json: any }> {
    const r = await httpCall(this.agent, new URL(this.baseUrl), this.apiKey, method, p, body, 15_000);
    let json: any = null;
    try {
      json = JSON.parse(r.body);
    } catch {
      json = r.body;
    }
    return { status: r.status, json };
  }
  async post(p: string, body: unknown): Promise<any> {
    const r = await this.call('POST', p, body);
    if (r.status !== 200 && r.status !== 201) throw new Error(`POST ${p} answered ${r.status}: ${JSON.stringify(r.json)}`);
    return r.json;
  }
  close(): void {
    this.agent.destroy();
  }
}

// ------------------------------------------------------------------------------------------------
// The streamer: open loop at a fixed rate, round-robin over the instances and the active customers.

export class CheckStreamer {
  readonly records: CheckRecord[] = [];
  skipped = 0;
  window = 'steady';
  activeCustomers = 1;
  readonly inFlight: number[];
  /** instances the drill has killed and not yet restarted (a request to them is refused, not a hang) */
  readonly down = new Set<number>();
  private outstanding = new Set<Promise<void>>();
  private readonly agents: http.Agent[];
  private readonly bases: URL[];
  private seq = 0;
  private custSeq = 0;
  private timer: NodeJS.Timeout | null = null;
  startedAt = 0;
  stoppedAt = 0;
  /** per instance: time of its last 200 answer */
  readonly lastOkAt: number[];
  /** per customer: time of the first denial at the limit */
  readonly exhaustedAt: (number | null)[];

  constructor(
    urls: string[],
    private readonly apiKey: string,
    private readonly customers: string[],
    private readonly o: { checksPerSec: number; maxOutstanding: number; requestTimeoutMs: number },
  ) {
    this.agents = urls.map(() => new http.Agent({ keepAlive: true, maxSockets: 64 }));
    this.bases = urls.map((u) => new URL(u));
    this.inFlight = urls.map(() => 0);
    this.lastOkAt = urls.map(() => 0);
    this.exhaustedAt = customers.map(() => null);
  }

  start(): void {
    this.startedAt = Date.now();
    let sent = 0;
    const tick = () => {
      const due = Math.floor(((Date.now() - this.startedAt) * this.o.checksPerSec) / 1000);
      while (sent < due) {
        sent++;
        if (this.outstanding.size >= this.o.maxOutstanding) {
          this.skipped++;
          continue;
        }
        this.sendOne();
      }
    };
    this.timer = setInterval(tick, 5);
  }

  private sendOne(): void {
    const n = this.seq++;
    const instance = n % this.bases.length;
    const customer = this.custSeq++ % this.activeCustomers;
    const units = 1 + ((n * 7 + Math.floor(n / 3)) % 3);
    const rec: CheckRecord = {
      customer,
      instance,
      units,
      sentAt: Date.now(),
      latencyMs: 0,
      window: this.window,
      outcome: 'indeterminate',
      status: 0,
      code: null,
      reason: null,
      eventsRecorded: null,
    };
    this.records.push(rec);
    this.inFlight[instance]!++;
    const wasDown = this.down.has(instance);
    const p = httpCall(
      this.agents[instance]!,
      this.bases[instance]!,
      this.apiKey,
      'POST',
      '/v1/check',
      { customer_id: this.customers[customer], feature_id: FEATURE, required_balance: units, send_event: true },
      this.o.requestTimeoutMs,
    ).then((a) => {
      this.inFlight[instance]!--;
      rec.latencyMs = Date.now() - rec.sentAt;
      rec.status = a.status;
      if (a.status === 0) {
        rec.code = a.timedOut ? 'timeout' : (a.errCode ?? 'error');
        // refused: the connection was never made, so nothing executed
        rec.outcome = a.timedOut ? 'timeout' : a.errCode === 'ECONNREFUSED' ? 'refused' : 'indeterminate';
        if (rec.outcome === 'timeout' && wasDown) rec.outcome = 'indeterminate';
        return;
      }
      if (a.status === 200) {
        this.lastOkAt[instance] = Date.now();
        try {
          const j = JSON.parse(a.body) as {
            allowed: boolean;
            events_recorded?: number;
            entitlement?: { access_denied_reason?: string | null };
          };
          rec.eventsRecorded = j.events_recorded ?? null;
          if (j.allowed) rec.outcome = 'granted';
          else {
            rec.outcome = 'denied';
            rec.reason = j.entitlement?.access_denied_reason ?? 'unknown';
            if (rec.reason === 'usage_limit_exceeded' && this.exhaustedAt[customer] === null) this.exhaustedAt[customer] = Date.now();
          }
        } catch {
          rec.outcome = 'unexpected';
          rec.code = 'unparsable_200';
        }
        return;
      }
      rec.code = errorCodeOf(a.body) ?? `no_json_code:${a.body.slice(0, 80)}`;
      // a 503 says nothing was consumed; any other 5xx may have consumed (unknown); 4xx are refused before consuming
      rec.outcome = a.status === 503 ? 'unavailable' : a.status >= 500 ? 'server_error' : 'unexpected';
    });
    const tracked = p.finally(() => this.outstanding.delete(tracked));
    this.outstanding.add(tracked);
  }

  /** Waits until `instance` has at least one request outstanding (or the timeout); returns how many. */
  async waitForInFlight(instance: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight[instance]! < 1 && Date.now() < deadline) await sleep(2);
    return this.inFlight[instance]!;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stoppedAt = Date.now();
    await Promise.all([...this.outstanding]);
    for (const a of this.agents) a.destroy();
  }
}

// ------------------------------------------------------------------------------------------------

function aggregatorLag(metricsText: string, topic: string): number | null {
  let sum = 0;
  let seen = false;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith('meterline_aggregator_consumer_lag{')) continue;
    if (!line.includes(`topic="${topic}"`)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) {
      sum += v;
      seen = true;
    }
  }
  return seen ? sum : null;
}

export async function runEntitlementDrill(opts: EntitlementDrillOptions): Promise<EntitlementDrillReport> {
  const log = opts.log ?? ((m: string) => console.error(`[ent-drill] ${m}`));
  const started = Date.now();
  const runId = `e${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  if (opts.billingInstances < 1 || opts.billingInstances > 4) throw new Error('billingInstances must be 1..4');
  const lastPort = opts.basePort + 5 + opts.billingInstances;
  for (let port = opts.basePort; port <= lastPort; port++) {
    if (await portInUse(port))
      throw new Error(`port ${port} is in use: an interrupted drill left something running on ${opts.basePort}..${lastPort}`);
  }
  ensureStackInstalled();
  ensurePostgres();
  const stack = new PrivateStack(opts.basePort);
  const onSignal = () => {
    void stack.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const db = 'meterline_faults_ent';
  const env: Record<string, string> = {
    KAFKA_BROKERS: stack.kafkaBrokers,
    CLICKHOUSE_URL: stack.clickhouseUrl,
    REDIS_URL: stack.redisUrl,
    DATABASE_URL: process.env.FAULTS_DATABASE_URL ?? `postgres://postgres@127.0.0.1:5432/${db}`,
    CLICKHOUSE_DATABASE: db,
    KAFKA_EVENTS_TOPIC: `entfaults_${runId}_events`,
    KAFKA_DEAD_LETTER_TOPIC: `entfaults_${runId}_dead`,
    KAFKA_EVENTS_PARTITIONS: '3',
    AGGREGATOR_GROUP_ID: `entfaults_${runId}_aggregator`,
    AGGREGATOR_PORT: String(opts.basePort + 5),
    AGGREGATOR_LAG_INTERVAL_MS: '1000',
    KAFKA_CLIENT_ID: `entfaults_${runId}`,
    LOG_LEVEL: 'warn',
  };
  const config: Config = loadConfig({ ...process.env, ...env });
  const logDir = path.join(ROOT, '.cache', 'faults', runId);
  const aggregator = new ServiceProcess('aggregator', opts.basePort + 5, env, logDir);
  const billing = Array.from(
    { length: opts.billingInstances },
    (_, i) =>
      new ServiceProcess(
        'billing',
        opts.basePort + 6 + i,
        { ...env, BILLING_PORT: String(opts.basePort + 6 + i) },
        path.join(logDir, `billing-${i + 1}`),
      ),
  );
  const pool = createPostgres(config.postgresUrl, { max: 2, applicationName: 'meterline-faults-ent' });
  let ch: ClickHouseClient | null = null;
  let api: Api | null = null;
  let streamer: CheckStreamer | null = null;
  const faults: EntitlementDrillReport['faults'] = [];
  const windowSpans = new Map<string, { kind: EntitlementFault | 'steady'; durationMs: number }>();
  const violations: Violation[] = [];
  try {
    log(`private stack on ports ${opts.basePort}..${opts.basePort + 4}; logs in ${path.relative(ROOT, logDir)}`);
    await stack.start('redis');
    await stack.start('clickhouse');
    await stack.start('kafka');
    await setupBackingServices(config);
    ch = createClickHouse(config.clickhouse);
    await aggregator.start();
    await Promise.all(billing.map((b) => b.start()));
    const { organizationId, apiKey } = await createTestOrganization(pool, { name: `entitlement drill ${runId}` });
    api = new Api(billing[0]!.url, apiKey);

    // catalog through billing's API
    await api.post('/v1/metrics', { metric_id: METRIC, event_name: EVENT, aggregation: 'count' });
    await api.post('/v1/features', { feature_id: FEATURE, type: 'metered', metric_id: METRIC });
    await api.post('/v1/plans', {
      plan_id: PLAN,
      name: 'Drill plan',
      interval: 'month',
      entitlements: [{ feature_id: FEATURE, limit: opts.limit, limit_type: 'hard', reset_period: 'billing_period' }],
    });
    const customers = Array.from({ length: opts.customers }, (_, i) => `${runId}_c${i}`);
    for (const c of customers) {
      await api.post('/v1/customers', { customer_id: c });
      await api.post('/v1/subscriptions', { customer_id: c, plan_id: PLAN });
    }
    // every instance sees the catalog (its caches are invalidated over Redis pub/sub)
    for (const b of billing) {
      const probe = new Api(b.url, apiKey);
      try {
        await waitFor(
          () => probe.call('POST', '/v1/check', { customer_id: customers[0], feature_id: FEATURE }),
          (r) => r.status === 200 && r.json.allowed === true,
          { timeoutMs: 20_000, what: `${b.url} to grant a non-consuming check` },
        );
      } finally {
        probe.close();
      }
    }

    const schedule = faultSchedule(opts.billingKills, opts.redisRestarts, opts.kafkaRestarts);
    // customer i joins at fault floor(i * F / C): each reaches its limit in a different part of the run
    const joinAt = customers.map((_, i) => Math.floor((i * schedule.length) / customers.length));
    log(
      `${billing.length} billing instances, ${customers.length} customers, hard limit ${opts.limit}, ${opts.checksPerSec} checks/s; ` +
        `faults: ${schedule.join(', ')}`,
    );
    streamer = new CheckStreamer(
      billing.map((b) => b.url),
      apiKey,
      customers,
      opts,
    );
    const s = streamer;
    const markWindow = (label: string, kind: EntitlementFault | 'steady', since: number) => {
      const w = windowSpans.get(label) ?? { kind, durationMs: 0 };
      w.durationMs += Date.now() - since;
      windowSpans.set(label, w);
    };
    // a service that exits on its own (not killed by the drill) is a finding: record it and start it again
    const revive = async (during: string) => {
      for (const [j, b] of billing.entries()) {
        if (s.down.has(j) || b.running) continue;
        violations.push({ rule: 'billing_exited', detail: `billing-${j + 1} exited on its own during ${during}; log: ${b.logFile}` });
        await b.start();
      }
      if (!aggregator.running) {
        violations.push({ rule: 'aggregator_exited', detail: `the aggregator exited during ${during}; log: ${aggregator.logFile}` });
        await aggregator.start();
      }
    };
    let steadySince = Date.now();
    s.start();
    await sleep(opts.steadyMs);
    const counts: Record<EntitlementFault, number> = { billing_kill9: 0, redis_restart: 0, kafka_restart: 0 };
    let killRotation = 0;
    for (let f = 0; f < schedule.length; f++) {
      s.activeCustomers = Math.max(s.activeCustomers, joinAt.filter((j) => j <= f).length);
      const kind = schedule[f]!;
      const n = ++counts[kind];
      const t0 = Date.now();
      let label = `${kind}#${n}`;
      let notes = '';
      markWindow('steady', 'steady', steadySince);
      if (kind === 'billing_kill9') {
        const i = killRotation++ % billing.length;
        label += ` (billing-${i + 1})`;
        s.window = label;
        const inFlight = await s.waitForInFlight(i, 3_000);
        s.down.add(i);
        await billing[i]!.kill9();
        notes = `${inFlight} in flight at the kill`;
        await billing[i]!.start();
        s.down.delete(i);
        // recovered: the restarted instance answers checks again
        const since = Date.now();
        await waitFor(
          async () => {
            await revive(label);
            return s.lastOkAt[i]!;
          },
          (t) => t > since,
          { timeoutMs: 60_000, what: `billing-${i + 1} to answer a check after its restart` },
        );
      } else {
        s.window = label;
        await stack.restart(kind === 'redis_restart' ? 'redis' : 'kafka');
        const since = Date.now();
        // recovered: every instance answers a check (200) again
        await waitFor(
          async () => {
            await revive(label);
            return s.lastOkAt.every((t) => t > since);
          },
          (ok) => ok,
          { timeoutMs: 120_000, what: `every billing instance to answer a check after ${label}` },
        );
        notes = `checks answered 200 by every instance ${((Date.now() - since) / 1000).toFixed(1)} s after the restart returned`;
      }
      await revive(label);
      markWindow(label, kind, t0);
      s.window = 'steady';
      steadySince = Date.now();
      faults.push({ kind, label, durationMs: Date.now() - t0, notes });
      log(`${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s; ${notes}`);
      await sleep(opts.steadyMs);
    }
    s.activeCustomers = customers.length;
    // tail: keep streaming until every customer was denied at its limit (the over-grant check means something)
    await sleep(opts.tailMs);
    try {
      await waitFor(
        async () => s.exhaustedAt.filter((t) => t !== null).length,
        (n) => n === customers.length,
        { timeoutMs: opts.exhaustTimeoutMs, intervalMs: 250, what: 'every customer to reach its limit' },
      );
    } catch (err) {
      violations.push({ rule: 'limit_not_reached', detail: (err as Error).message });
    }
    await s.stop();
    await revive('the tail');
    markWindow('steady', 'steady', steadySince);
    const streamSeconds = (s.stoppedAt - s.startedAt) / 1000;
    log(`streaming stopped after ${streamSeconds.toFixed(0)} s: ${s.records.length} checks sent, ${s.skipped} skipped at the cap`);

    // settle: the aggregator has no lag and two readings a few seconds apart agree
    const settleStart = Date.now();
    const fromIso = new Date(started - 10 * 60_000).toISOString();
    const aggUrl = `${aggregator.url}/metrics`;
    let prev: string | null = null;
    let settled = true;
    const read = async () => {
      const metrics = await fetch(aggUrl, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text());
      const lag = aggregatorLag(metrics, config.kafka.eventsTopic);
      const toIso = new Date(Date.now() + 10 * 60_000).toISOString();
      const usage: number[] = [];
      for (const c of customers) {
        const r = await api!.call(
          'GET',
          `/v1/usage?customer_id=${encodeURIComponent(c)}&feature_id=${FEATURE}&from=${encodeURIComponent(fromIso)}&to=${encodeURIComponent(toIso)}`,
        );
        if (r.status !== 200) throw new Error(`GET /v1/usage answered ${r.status}: ${JSON.stringify(r.json)}`);
        usage.push(Number(r.json.total));
      }
      const raw: number[] = [];
      for (const c of customers) raw.push(await rawCount(ch!, db, organizationId, [c]));
      return { lag, usage, raw };
    };
    let last: Awaited<ReturnType<typeof read>> | null = null;
    try {
      last = await waitFor(
        read,
        (r) => {
          const key = JSON.stringify([r.usage, r.raw]);
          const stable = r.lag === 0 && key === prev && r.usage.every((u, i) => u === r.raw[i]);
          prev = key;
          return stable;
        },
        { timeoutMs: opts.settleTimeoutMs, intervalMs: 3_000, what: 'usage to settle (aggregator lag 0, two equal readings 3 s apart)' },
      );
    } catch (err) {
      settled = false;
      violations.push({ rule: 'not_settled', detail: (err as Error).message });
      last = await read().catch(() => null);
    }
    const settleSeconds = (Date.now() - settleStart) / 1000;
    log(`settled in ${settleSeconds.toFixed(1)} s: usage ${JSON.stringify(last?.usage)} raw ${JSON.stringify(last?.raw)} lag ${last?.lag}`);

    const results: CustomerResult[] = [];
    for (let ci = 0; ci < customers.length; ci++) {
      const recs = s.records.filter((r) => r.customer === ci);
      const sum = (f: (r: CheckRecord) => boolean) => recs.filter(f).reduce((a, r) => a + r.units, 0);
      const ent = await api.call('GET', `/v1/customers/${encodeURIComponent(customers[ci]!)}/entitlements/${FEATURE}`);
      const first = recs[0]?.sentAt ?? s.startedAt;
      results.push({
        customerId: customers[ci]!,
        limit: opts.limit,
        checks: recs.length,
        grantedChecks: recs.filter((r) => r.outcome === 'granted').length,
        grantedUnits: sum((r) => r.outcome === 'granted'),
        deniedChecks: recs.filter((r) => r.outcome === 'denied').length,
        deniedAtLimit: recs.filter((r) => r.reason === 'usage_limit_exceeded').length,
        indeterminateUnits: sum((r) => r.outcome === 'indeterminate' || r.outcome === 'timeout' || r.outcome === 'server_error'),
        unavailableUnits: sum((r) => r.outcome === 'unavailable'),
        finalUsage: last?.usage[ci] ?? Number.NaN,
        finalRawEvents: last?.raw[ci] ?? Number.NaN,
        entitlementCurrentUsage: ent.status === 200 ? Number(ent.json.current_usage) : null,
        limitReachedAfterMs: s.exhaustedAt[ci] === null ? null : s.exhaustedAt[ci]! - first,
      });
    }

    // ---- verdicts
    for (const c of results) {
      const id = c.customerId;
      if (!(c.finalUsage <= c.limit))
        violations.push({ rule: 'over_grant', detail: `${id}: final usage ${c.finalUsage} > limit ${c.limit}` });
      if (c.grantedUnits > c.limit)
        violations.push({ rule: 'over_grant_answers', detail: `${id}: ${c.grantedUnits} units answered allowed:true > limit ${c.limit}` });
      if (!(c.finalUsage >= c.grantedUnits))
        violations.push({
          rule: 'granted_unit_lost',
          detail: `${id}: final usage ${c.finalUsage} < ${c.grantedUnits} units answered allowed:true (${c.grantedUnits - c.finalUsage} lost)`,
        });
      if (!(c.finalUsage <= c.grantedUnits + c.indeterminateUnits))
        violations.push({
          rule: 'usage_from_nowhere',
          detail: `${id}: final usage ${c.finalUsage} > granted ${c.grantedUnits} + indeterminate ${c.indeterminateUnits} (units answered 503: ${c.unavailableUnits})`,
        });
      if (c.finalUsage !== c.finalRawEvents)
        violations.push({ rule: 'aggregates_vs_raw', detail: `${id}: GET /v1/usage ${c.finalUsage} != raw events ${c.finalRawEvents}` });
    }
    const grantedNoEvents = s.records.filter((r) => r.outcome === 'granted' && r.eventsRecorded !== r.units);
    if (grantedNoEvents.length)
      violations.push({
        rule: 'granted_without_events',
        detail: `${grantedNoEvents.length} grants whose events_recorded != required_balance (first: ${JSON.stringify(grantedNoEvents[0])})`,
      });
    const bad = (o: Outcome) => s.records.filter((r) => r.outcome === o);
    const describe = (rs: CheckRecord[]) => {
      const by: Record<string, number> = {};
      for (const r of rs) by[`${r.window}: ${r.status} ${r.code}`] = (by[`${r.window}: ${r.status} ${r.code}`] ?? 0) + 1;
      return Object.entries(by)
        .map(([k, v]) => `${k} x${v}`)
        .join('; ');
    };
    if (bad('server_error').length)
      violations.push({
        rule: 'non_503_failure',
        detail: `${bad('server_error').length} 5xx answers other than 503: ${describe(bad('server_error'))}`,
      });
    const no503Code = bad('unavailable').filter((r) => r.code?.startsWith('no_json_code'));
    if (no503Code.length) violations.push({ rule: '503_without_code', detail: `${no503Code.length}: ${describe(no503Code)}` });
    if (bad('timeout').length)
      violations.push({
        rule: 'hang',
        detail: `${bad('timeout').length} checks to a live instance unanswered after ${opts.requestTimeoutMs} ms: ${describe(bad('timeout'))}`,
      });
    const late = s.records.filter((r) => r.status !== 0 && r.latencyMs > opts.answerDeadlineMs);
    if (late.length) {
      const by: Record<string, { n: number; max: number }> = {};
      for (const r of late) {
        const k = `${r.window}: ${r.status === 200 ? r.outcome : `${r.status} ${r.code}`}`;
        const e = (by[k] ??= { n: 0, max: 0 });
        e.n++;
        e.max = Math.max(e.max, r.latencyMs);
      }
      violations.push({
        rule: 'answer_past_request_timeout',
        detail: `${late.length} checks answered after more than ${opts.answerDeadlineMs} ms: ${Object.entries(by)
          .map(([k, v]) => `${k} x${v.n} (max ${v.max} ms)`)
          .join('; ')}`,
      });
    }
    if (bad('unexpected').length)
      violations.push({ rule: 'unexpected_answer', detail: `${bad('unexpected').length}: ${describe(bad('unexpected'))}` });
    if (counts.billing_kill9 < opts.billingKills || counts.redis_restart < opts.redisRestarts || counts.kafka_restart < opts.kafkaRestarts)
      violations.push({ rule: 'faults_not_injected', detail: JSON.stringify(counts) });

    // ---- tallies
    const outcomes: Partial<Record<Outcome, number>> = {};
    const deniedByReason: Record<string, number> = {};
    const errorCodes: Record<string, number> = {};
    for (const r of s.records) {
      outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
      if (r.reason) deniedByReason[r.reason] = (deniedByReason[r.reason] ?? 0) + 1;
      if (r.status !== 200) errorCodes[`${r.status} ${r.code}`] = (errorCodes[`${r.status} ${r.code}`] ?? 0) + 1;
    }
    const windows: WindowStats[] = [];
    for (const [label, span] of windowSpans) {
      const rs = s.records.filter((r) => r.window === label);
      const w: WindowStats = {
        window: label,
        kind: span.kind,
        durationMs: span.durationMs,
        sent: rs.length,
        outcomes: {},
        errorCodes: {},
        maxErrorLatencyMs: null,
        late: 0,
        maxLatencyMs: null,
      };
      for (const r of rs) {
        w.outcomes[r.outcome] = (w.outcomes[r.outcome] ?? 0) + 1;
        if (r.status !== 0) {
          w.maxLatencyMs = Math.max(w.maxLatencyMs ?? 0, r.latencyMs);
          if (r.latencyMs > opts.answerDeadlineMs) w.late++;
        }
        if (r.status !== 200) {
          w.errorCodes[`${r.status} ${r.code}`] = (w.errorCodes[`${r.status} ${r.code}`] ?? 0) + 1;
          w.maxErrorLatencyMs = Math.max(w.maxErrorLatencyMs ?? 0, r.latencyMs);
        }
      }
      windows.push(w);
    }
    const lat = (f: (r: CheckRecord) => boolean) => summarize(s.records.filter(f).map((r) => r.latencyMs));
    return {
      startedAt: new Date(started).toISOString(),
      durationSeconds: (Date.now() - started) / 1000,
      streamSeconds,
      settleSeconds,
      options: { ...opts, log: undefined } as Omit<EntitlementDrillOptions, 'log'>,
      faults,
      checksSent: s.records.length,
      checksSkipped: s.skipped,
      checksPerSec: s.records.length / streamSeconds,
      outcomes,
      deniedByReason,
      errorCodes,
      latency: {
        granted: lat((r) => r.outcome === 'granted'),
        denied: lat((r) => r.outcome === 'denied'),
        errors: lat((r) => r.status !== 200 && r.status !== 0),
      },
      windows,
      customers: results,
      settled,
      violations,
    };
  } finally {
    await streamer?.stop().catch(() => undefined);
    api?.close();
    await Promise.all(billing.map((b) => b.stop().catch(() => undefined)));
    await aggregator.stop().catch(() => undefined);
    await ch?.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await stack.destroy().catch(() => undefined);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// ------------------------------------------------------------------------------------------------
// Report formatting

export function customerTable(rows: CustomerResult[]): string {
  return table([
    [
      'customer',
      'limit',
      'checks',
      'granted units',
      'denied',
      'denied at limit',
      'indeterminate units',
      '503 units',
      'final usage',
      'raw events',
      'entitlement usage',
      'limit reached after s',
    ],
    ...rows.map((c) => [
      c.customerId,
      c.limit,
      c.checks,
      c.grantedUnits,
      c.deniedChecks,
      c.deniedAtLimit,
      c.indeterminateUnits,
      c.unavailableUnits,
      c.finalUsage,
      c.finalRawEvents,
      c.entitlementCurrentUsage ?? '-',
      c.limitReachedAfterMs === null ? '-' : (c.limitReachedAfterMs / 1000).toFixed(1),
    ]),
  ]);
}

export function windowTable(rows: WindowStats[]): string {
  const o = (w: WindowStats, k: Outcome) => w.outcomes[k] ?? 0;
  return table([
    [
      'window',
      's',
      'checks',
      'granted',
      'denied',
      '503',
      '5xx other',
      'refused',
      'indeterminate',
      'hang',
      'answers > deadline',
      'slowest answer ms',
      'non-200 answers by code',
      'slowest non-200 ms',
    ],
    ...rows.map((w) => [
      w.window,
      (w.durationMs / 1000).toFixed(1),
      w.sent,
      o(w, 'granted'),
      o(w, 'denied'),
      o(w, 'unavailable'),
      o(w, 'server_error'),
      o(w, 'refused'),
      o(w, 'indeterminate'),
      o(w, 'timeout'),
      w.late,
      w.maxLatencyMs ?? '-',
      Object.entries(w.errorCodes)
        .map(([k, v]) => `${k}:${v}`)
        .join(' ') || '-',
      w.maxErrorLatencyMs ?? '-',
    ]),
  ]);
}
