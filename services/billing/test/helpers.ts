// Test helpers: start billing in-process on a free port with its own Kafka topics, and a tiny
// fetch client that talks to it over real HTTP.
import { createKafka, ensureTopics, type Config } from '@meterline/core';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { startBilling, type BillingHandle, type BillingOptions } from '../src/index.ts';
import type { Deps } from '../src/deps.ts';

export const ADMIN_SECRET = 'test-admin-secret';

export async function startTestBilling(
  opts: BillingOptions & { env?: Record<string, string>; deps?: Partial<Deps> } = {},
): Promise<{ billing: BillingHandle; config: Config }> {
  const config = testConfig({
    KAFKA_EVENTS_TOPIC: uniqueId('t_bill_events'),
    KAFKA_DEAD_LETTER_TOPIC: uniqueId('t_bill_dlq'),
    KAFKA_EVENTS_PARTITIONS: '2',
    ADMIN_SECRET,
    ...opts.env,
  });
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, config.kafka);
  } finally {
    await admin.disconnect();
  }
  const billing = await startBilling(config, opts.deps ?? {}, { port: 0, renewalIntervalMs: 0, ...opts });
  return { billing, config };
}

export interface Res<T = any> {
  status: number;
  body: T;
}

export function client(baseUrl: string, apiKey?: string, extraHeaders: Record<string, string> = {}) {
  const call = async <T = any>(method: string, path: string, body?: unknown): Promise<Res<T>> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: {
        ...(apiKey ? { 'x-api-key': apiKey } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...extraHeaders,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* html or empty */
    }
    return { status: res.status, body: parsed as T };
  };
  return {
    get: <T = any>(p: string) => call<T>('GET', p),
    post: <T = any>(p: string, b?: unknown) => call<T>('POST', p, b ?? {}),
    patch: <T = any>(p: string, b: unknown) => call<T>('PATCH', p, b),
    put: <T = any>(p: string, b: unknown) => call<T>('PUT', p, b),
    del: <T = any>(p: string) => call<T>('DELETE', p),
  };
}

export async function createOrg(baseUrl: string, name = uniqueId('acme')) {
  const r = await client(baseUrl, undefined, { 'x-admin-secret': ADMIN_SECRET }).post('/admin/organizations', { name });
  if (r.status !== 201) throw new Error(`org create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { orgId: r.body.organization_id as string, apiKey: r.body.api_key as string, api: client(baseUrl, r.body.api_key) };
}
