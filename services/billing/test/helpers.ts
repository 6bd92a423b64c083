// Test helpers: start billing in-process on a free port with its own Kafka topics, and a tiny
// HTTP client that talks to it over real HTTP.
import http from 'node:http';
import { createKafka, ensureTopics, type Config } from '@meterline/core';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { startBilling, type BillingHandle, type BillingOptions } from '../src/index.ts';
import type { Deps } from '../src/deps.ts';

export const ADMIN_SECRET = 'test-admin-secret';

export async function startTestBilling(opts: BillingOptions & { env?: Record<string, string>; deps?: Partial<Deps> } = {}): Promise<{ billing: BillingHandle; config: Config }> {
  const config = testConfig({
    KAFKA_EVENTS_TOPIC: uniqueId('t_bill_events'),
    KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_bill_dlq'),
    KAFKA_EVENTS_PARTITIONS: '2',
    ADMIN_SECRET,
    ...opts.env,
  });
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  try { await ensureTopics(admin, config.kafka); } finally { await admin.disconnect(); }
  const billing = await startBilling(config, opts.deps ?? {}, { port: 0, renewalIntervalMs: 0, ...opts });
  return { billing, config };
}

export interface Res<T = any> { status: number; body: T }

export function client(baseUrl: string, apiKey?: string, extraHeaders: Record<string, string> = {}) {
  const call = async <T = any>(method: string, path: string, body?: unknown): Promise<Res<T>> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { ...(apiKey ? { 'x-api-key': apiKey } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extraHeaders },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* html or empty */ }
    return { status: res.status, body: parsed as T };
  };
  return {
    get: <T = any>(p: string) => call<T>('GET', p),
    post: <T = any>(p: string, b?: unknown) => call<T>('POST', p, b ?? {}),
    patch: <T = any>(p: string, b: unknown) => call<T>('PATCH', p, b),
    del: <T = any>(p: string) => call<T>('DELETE', p),
  };
}

export async function createOrg(baseUrl: string, name = uniqueId('acme')) {
  const r = await client(baseUrl, undefined, { 'x-admin-secret': ADMIN_SECRET }).post('/admin/organizations', { name });
  if (r.status !== 201) throw new Error(`org create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { orgId: r.body.organization_id as string, apiKey: r.body.api_key as string, api: client(baseUrl, r.body.api_key) };
}

/** A lean keep-alive HTTP/1.1 client for load (fetch costs more CPU than the server under test). */
export function loadClient(baseUrl: string, apiKey: string, maxSockets: number) {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return {
    post(path: string, body: object): Promise<{ status: number; body: any }> {
      const payload = JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = http.request({ host: base.hostname, port: base.port, path, method: 'POST', agent, headers: { 'x-api-key': apiKey, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
        });
        req.on('error', reject);
        req.end(payload);
      });
    },
    close: () => agent.destroy(),
  };
}
