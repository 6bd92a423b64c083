// Entitlement-check latency against billing's customer_access and check endpoints (closed loop,
// keep-alive), to compare with the plain Redis GET floor.
import http from 'node:http';
import type { PgPool } from '@meterline/core';
import type { BenchOrg } from './env.ts';
import { assertLoopback } from './load.ts';
import { nowMs, summarize, type LatencySummary } from './stats.ts';

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
        timeout: 10_000,
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
  org: BenchOrg;
  pool: PgPool;
  customers: readonly string[];
  durationMs: number;
  concurrency: number;
  log: (m: string) => void;
}): Promise<Record<string, EndpointResult>> {
  assertLoopback(opts.billingUrl);
  const base = new URL(opts.billingUrl);
  await setupCatalog(base, opts.org, opts.customers);
  const out: Record<string, EndpointResult> = {};
  for (const name of ['customer_access', 'check'] as const) {
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
  return out;
}
