// GET /v1/usage windows aligned to an IANA time zone, and month windows, through the real pipeline.
// The expected window starts are local midnights written out here (New York is UTC-4 until Nov 1,
// 2026 06:00 UTC and UTC-5 after; Kolkata is UTC+5:30).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;
const c = uniqueId('tz');
const TIMES = ['2026-11-01T02:00:00.000Z', '2026-11-26T03:00:00.000Z', '2026-11-26T06:00:00.000Z'];
const FROM = encodeURIComponent('2026-10-28T00:00:00.000Z');
const TO = encodeURIComponent('2026-12-01T00:00:00.000Z');

beforeAll(async () => {
  const started = await startTestBilling({ env: { GATEWAY_PORT: '0' } });
  billing = started.billing;
  pg = createPostgres(started.config.postgresUrl, { max: 2 });
  gateway = await startGateway(started.config, { pg });
  aggregator = await startAggregator({
    ...started.config,
    aggregator: { ...started.config.aggregator, port: 0, groupId: uniqueId('g_tz') },
  });
  org = await createOrg(billing.url);
  await org.api.post('/v1/metrics', { metric_id: 'calls', event_name: 'call', aggregation: 'count' });
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
    body: JSON.stringify(TIMES.map((t) => ({ customer_id: c, event_name: 'call', idempotency_id: uniqueId('e'), time_created: t }))),
  });
  expect(res.status).toBe(200);
  await waitFor(
    async () => (await org.api.get(`/v1/usage?customer_id=${c}&metric_id=calls&from=${FROM}&to=${TO}`)).body.total,
    (t) => t === 3,
    { timeoutMs: 30_000, intervalMs: 50, what: 'the three events' },
  );
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
});

const series = async (params: string) => {
  const r = await org.api.get(`/v1/usage?customer_id=${c}&metric_id=calls&from=${FROM}&to=${TO}&${params}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { body: r.body, points: (r.body.data as any[]).map((p) => [p.window_start, p.value]) };
};

describe('usage windows in a time zone', () => {
  it('day windows start at local midnight; UTC by default', async () => {
    expect((await series('window=day')).points).toEqual([
      ['2026-11-01T00:00:00.000Z', 1],
      ['2026-11-26T00:00:00.000Z', 2],
    ]);
    const ny = await series('window=day&time_zone=America/New_York');
    expect(ny.body.time_zone).toBe('America/New_York');
    // 02:00Z on Nov 1 is 22:00 on Oct 31 in New York (EDT); 03:00Z Nov 26 is 22:00 Nov 25 (EST)
    expect(ny.points).toEqual([
      ['2026-10-31T04:00:00.000Z', 1],
      ['2026-11-25T05:00:00.000Z', 1],
      ['2026-11-26T05:00:00.000Z', 1],
    ]);
  });

  it('month windows (in a zone and in UTC), hour windows with a half-hour offset, and a precise 400', async () => {
    expect((await series('window=month')).points).toEqual([['2026-11-01T00:00:00.000Z', 3]]);
    expect((await series('window=month&time_zone=America/New_York')).points).toEqual([
      ['2026-10-01T04:00:00.000Z', 1],
      ['2026-11-01T04:00:00.000Z', 2],
    ]);
    // Kolkata: 02:00Z = 07:30 IST (hour from 01:30Z), 03:00Z = 08:30 (02:30Z), 06:00Z = 11:30 (05:30Z)
    expect((await series('window=hour&time_zone=Asia/Kolkata')).points).toEqual([
      ['2026-11-01T01:30:00.000Z', 1],
      ['2026-11-26T02:30:00.000Z', 1],
      ['2026-11-26T05:30:00.000Z', 1],
    ]);
    const bad = await org.api.get(`/v1/usage?customer_id=${c}&metric_id=calls&from=${FROM}&to=${TO}&window=day&time_zone=Mars/Olympus`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('time_zone');
    const inj = await org.api.get(
      `/v1/usage?customer_id=${c}&metric_id=calls&from=${FROM}&to=${TO}&window=day&time_zone=${encodeURIComponent("UTC') OR 1=1 --")}`,
    );
    expect(inj.status).toBe(400);
  });
});
