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
export function entitlementRequests(customerId: string, metricId: string): Record<'customer_access' | 'check', EndpointRequest> {
  const c = encodeURIComponent(customerId);
  return {
    customer_access: { method: 'GET', path: `/v1/customer_access?customer_id=${c}` },
    check: { method: 'POST', path: '/v1/check', body: JSON.stringify({ customer_id: customerId, metric_id: metricId, feature_id: metricId }) },
  };
}

function request(agent: http.Agent, base: URL, apiKey: string, r: EndpointRequest): Promise<{ status: number; ms: number }> {
  const t0 = nowMs();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: base.hostname, port: base.port, path: r.path, method: r.method, agent, timeout: 10_000,
        headers: { 'x-api-key': apiKey, ...(r.body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) } : {}) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: nowMs() - t0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, ms: nowMs() - t0 }));
    req.end(r.body);
  });
}

export interface EndpointResult {
  request: EndpointRequest;
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
  // customers must exist in billing's tables for a meaningful answer
  for (const c of opts.customers) {
    await opts.pool.query('INSERT INTO customers (organization_id, customer_id, name) VALUES ($1, $2, $2) ON CONFLICT DO NOTHING', [opts.org.organizationId, c]);
  }
  const out: Record<string, EndpointResult> = {};
  for (const name of ['customer_access', 'check'] as const) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
    const probe = entitlementRequests(opts.customers[0]!, opts.org.metricId)[name];
    const first = await request(agent, base, opts.org.apiKey, probe);
    if (first.status !== 200) opts.log(`entitlement: ${name} ${probe.method} ${probe.path} answered ${first.status}`);
    const lat: number[] = [];
    const statusCounts: Record<string, number> = {};
    let i = 0;
    const t0 = nowMs();
    const stopAt = t0 + opts.durationMs / 2;
    const worker = async () => {
      while (nowMs() < stopAt) {
        const r = await request(agent, base, opts.org.apiKey, entitlementRequests(opts.customers[i++ % opts.customers.length]!, opts.org.metricId)[name]);
        statusCounts[r.status] = (statusCounts[r.status] ?? 0) + 1;
        if (r.status === 200) lat.push(r.ms);
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const elapsed = nowMs() - t0;
    agent.destroy();
    out[name] = { request: probe, requests: lat.length, requestsPerSec: lat.length / (elapsed / 1000), statusCounts, latency: summarize(lat) };
    if (lat.length === 0) throw new Error(`${name}: no 200 answers (statuses ${JSON.stringify(statusCounts)})`);
  }
  return out;
}
