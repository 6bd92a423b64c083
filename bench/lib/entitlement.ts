// Entitlement-check latency against billing's customer_access and check endpoints, to compare with the
// plain Redis GET floor: a short closed loop (32 keep-alive clients, throughput) and the open-loop rows
// (fixed request rate, latency from the intended send time; see openloop.ts), each next to a Redis GET
// floor driven the same open-loop way at the same rate in the same run.
import http from 'node:http';
import { Redis } from 'ioredis';
import type { PgPool } from '@meterline/core';
import type { BenchOrg } from './env.ts';
import { assertLoopback } from './load.ts';
import { openLoop, type OpenLoopResult, type SendOutcome } from './openloop.ts';
import { nowMs, sleep, summarize, type LatencySummary } from './stats.ts';

export interface EndpointRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}

/** How each endpoint is called; adjust here if billing's routes differ. */
export function entitlementRequests(customerId: string, featureId: string): Record<'customer_access' | 'check', EndpointRequest> {
  const c = encodeURIComponent(customerId);
  return {
    customer_access: { method: 'GET', path: `/v1/customer_access?customer_id=${c}&feature_name=${encodeURIComponent(featureId)}` },
    check: { method: 'POST', path: '/v1/check', body: JSON.stringify({ customer_id: customerId, feature_id: featureId }) },
  };
}

const FEATURE = 'bench_api_calls';

/** Metric, metered feature, plan with a (large) hard limit, customers and subscriptions, through billing's API. */
async function setupCatalog(base: URL, org: BenchOrg, customers: readonly string[]): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const call = async (path: string, body: unknown) => {
    const r = await request(agent, base, org.apiKey, { method: 'POST', path, body: JSON.stringify(body) }, true);
    if (r.status >= 300) throw new Error(`POST ${path} answered ${r.status}: ${r.body}`);
  };
  try {
    await call('/v1/metrics', { metric_id: FEATURE, event_name: org.eventName, aggregation: 'count' });
    await call('/v1/features', { feature_id: FEATURE, type: 'metered', metric_id: FEATURE });
    await call('/v1/plans', {
      plan_id: 'bench_plan',
      name: 'Bench plan',
      interval: 'month',
      entitlements: [{ feature_id: FEATURE, limit: 1_000_000_000, limit_type: 'hard', reset_period: 'billing_period' }],
    });
    for (const c of customers) {
      await call('/v1/customers', { customer_id: c });
      await call('/v1/subscriptions', { customer_id: c, plan_id: 'bench_plan' });
    }
  } finally {
    agent.destroy();
  }
}

function request(
  agent: http.Agent,
  base: URL,
  apiKey: string,
  r: EndpointRequest,
  keepBody = false,
  timeoutMs = 10_000,
): Promise<{ status: number; ms: number; body: string }> {
  const t0 = nowMs();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: r.path,
        method: r.method,
        agent,
        timeout: timeoutMs,
        headers: {
          'x-api-key': apiKey,
          ...(r.body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (keepBody) chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: nowMs() - t0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, ms: nowMs() - t0, body: String(err) }));
    req.end(r.body);
  });
}

export interface EndpointResult {
  request: EndpointRequest;
  sampleResponse: string;
  requests: number;
  requestsPerSec: number;
  statusCounts: Record<string, number>;
  latency: LatencySummary;
}

export async function entitlementPhase(opts: {
  billingUrl: string;
  redisUrl: string;
  org: BenchOrg;
  pool: PgPool;
  customers: readonly string[];
  /** closed loop: total for both endpoints (half each); 0 skips it */
  durationMs: number;
  concurrency: number;
  open: OpenLoopOptions;
  log: (m: string) => void;
}): Promise<Record<string, unknown>> {
  assertLoopback(opts.billingUrl);
  const base = new URL(opts.billingUrl);
  await setupCatalog(base, opts.org, opts.customers);
  const out: Record<string, unknown> = {};
  for (const name of opts.durationMs > 0 ? (['customer_access', 'check'] as const) : []) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
    const probe = entitlementRequests(opts.customers[0]!, FEATURE)[name];
    const first = await request(agent, base, opts.org.apiKey, probe, true);
    if (first.status !== 200) throw new Error(`${name}: ${probe.method} ${probe.path} answered ${first.status}: ${first.body}`);
    const sample = first.body.slice(0, 300);
    const lat: number[] = [];
    const statusCounts: Record<string, number> = {};
    let i = 0;
    const t0 = nowMs();
    const stopAt = t0 + opts.durationMs / 2;
    const worker = async () => {
      while (nowMs() < stopAt) {
        const r = await request(
          agent,
          base,
          opts.org.apiKey,
          entitlementRequests(opts.customers[i++ % opts.customers.length]!, FEATURE)[name],
        );
        statusCounts[r.status] = (statusCounts[r.status] ?? 0) + 1;
        if (r.status === 200) lat.push(r.ms);
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const elapsed = nowMs() - t0;
    agent.destroy();
    out[name] = {
      request: probe,
      sampleResponse: sample,
      requests: lat.length,
      requestsPerSec: lat.length / (elapsed / 1000),
      statusCounts,
      latency: summarize(lat),
    };
    if (lat.length === 0) throw new Error(`${name}: no 200 answers (statuses ${JSON.stringify(statusCounts)})`);
  }
  out.openLoop = await openLoopRows(base, opts.redisUrl, opts.org, opts.customers, opts.open, opts.log);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Open loop

export type OpenRowName = 'check' | 'customer_access' | 'check_send_event';

interface OpenRowSpec {
  name: OpenRowName;
  label: string;
  ratePerSec: number;
  targetP99Ms: number;
  request: (customerId: string, i: number) => EndpointRequest;
}

/** The rows and targets of issue #11 item 4. */
export function openRowSpecs(tag: string): OpenRowSpec[] {
  return [
    { name: 'check', label: 'check', ratePerSec: 2_000, targetP99Ms: 5, request: (c) => entitlementRequests(c, FEATURE).check },
    {
      name: 'customer_access',
      label: 'customer_access',
      ratePerSec: 2_000,
      targetP99Ms: 5,
      request: (c) => entitlementRequests(c, FEATURE).customer_access,
    },
    {
      // A consuming check as the SDK sends it (the SDK always adds an idempotency_key). The plan's hard
      // limit is 1e9 units per customer, so every request takes the consuming path, none is denied.
      name: 'check_send_event',
      label: 'check + send_event',
      ratePerSec: 500,
      targetP99Ms: 20,
      request: (c, i) => ({
        method: 'POST',
        path: '/v1/check',
        body: JSON.stringify({ customer_id: c, feature_id: FEATURE, send_event: true, idempotency_key: `${tag}-${i}` }),
      }),
    },
  ];
}

export interface OpenLoopOptions {
  /** seconds each measured row sends for (the Redis floor rows too) */
  seconds: number;
  /** seconds of unrecorded warm-up at the row's rate before each measured row */
  warmupSeconds: number;
  rows: readonly OpenRowName[];
  maxOutstanding: number;
  timeoutMs: number;
  tag: string;
}

export interface OpenRowResult extends OpenLoopResult {
  label: string;
  request: EndpointRequest;
  targetP99Ms: number;
  met: boolean;
  /** target - p99 (with errors): positive = headroom, negative = missed by */
  marginMs: number;
  floor: OpenLoopResult;
}

async function openRedisFloor(redisUrl: string, o: OpenLoopOptions, ratePerSec: number): Promise<OpenLoopResult> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: o.timeoutMs });
  await redis.connect();
  const key = `bench:floor:open:${process.pid}`;
  await redis.set(key, JSON.stringify({ allowed: true, balance: 12345 }), 'EX', 600);
  const send = (): Promise<SendOutcome> =>
    redis.get(key).then(
      (v) => ({ ok: v !== null, status: v !== null ? 'hit' : 'miss' }),
      () => ({ ok: false, status: 'error' }),
    );
  try {
    if (o.warmupSeconds > 0) await openLoop({ ratePerSec, durationMs: o.warmupSeconds * 1000, send });
    return await openLoop({ ratePerSec, durationMs: o.seconds * 1000, send, maxOutstanding: o.maxOutstanding, timeoutMs: o.timeoutMs });
  } finally {
    await redis.del(key).catch(() => undefined);
    redis.disconnect();
  }
}

async function openRow(
  base: URL,
  apiKey: string,
  customers: readonly string[],
  spec: OpenRowSpec,
  o: OpenLoopOptions,
  warmup: boolean,
): Promise<OpenLoopResult> {
  // sockets are not the bound (maxOutstanding is); requests queued in the agent wait inside the measurement
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const isCheck = spec.name !== 'customer_access';
  const send = async (i: number): Promise<SendOutcome> => {
    const r = await request(agent, base, apiKey, spec.request(customers[i % customers.length]!, i), isCheck, o.timeoutMs);
    if (r.status !== 200) return { ok: false, status: String(r.status) };
    // a denied check is not the path being measured: an error, not a sample
    if (isCheck && !r.body.includes('"allowed":true')) return { ok: false, status: 'denied' };
    return { ok: true, status: '200' };
  };
  try {
    // warm-up requests use their own indexes (idempotency keys) so that no measured one is a replay
    const offset = warmup ? 10_000_000 : 0;
    const drive = (durationMs: number, off: number) =>
      openLoop({
        ratePerSec: spec.ratePerSec,
        durationMs,
        send: (i) => send(i + off),
        maxOutstanding: o.maxOutstanding,
        timeoutMs: o.timeoutMs,
      });
    if (warmup && o.warmupSeconds > 0) await drive(o.warmupSeconds * 1000, offset);
    return await drive(o.seconds * 1000, 0);
  } finally {
    agent.destroy();
  }
}

export async function openLoopRows(
  base: URL,
  redisUrl: string,
  org: BenchOrg,
  customers: readonly string[],
  o: OpenLoopOptions,
  log: (m: string) => void,
): Promise<Record<string, OpenRowResult>> {
  const out: Record<string, OpenRowResult> = {};
  const floors = new Map<number, OpenLoopResult>();
  for (const spec of openRowSpecs(o.tag).filter((s) => o.rows.includes(s.name))) {
    let floor = floors.get(spec.ratePerSec);
    if (!floor) {
      floor = await openRedisFloor(redisUrl, o, spec.ratePerSec);
      floors.set(spec.ratePerSec, floor);
      log(`entitlement open loop: Redis GET floor @ ${spec.ratePerSec}/s p50 ${floor.latency.p50Ms} p99 ${floor.latency.p99Ms} ms`);
      await sleep(200);
    }
    const r = await openRow(base, org.apiKey, customers, spec, o, true);
    const met = r.p99WithErrorsMs < spec.targetP99Ms;
    out[spec.name] = {
      ...r,
      label: spec.label,
      request: spec.request(customers[0]!, 0),
      targetP99Ms: spec.targetP99Ms,
      met,
      marginMs: Math.round((spec.targetP99Ms - r.p99WithErrorsMs) * 1000) / 1000,
      floor,
    };
    log(
      `entitlement open loop: ${spec.label} @ ${spec.ratePerSec}/s p50 ${r.latency.p50Ms} p99 ${r.latency.p99Ms} p99.9 ${r.latency.p999Ms} ms, ` +
        `${Math.round(r.achievedPerSec)}/s, errors ${r.errorCount} -> target p99 < ${spec.targetP99Ms} ms ${met ? 'met' : 'MISSED'}`,
    );
  }
  return out;
}
