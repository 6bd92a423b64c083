// Usage alerts (alerts/service.ts) on the real stack: thresholds crossed by consuming checks — 40 of
// them at once — are reported exactly once per usage window, with their webhook event written to the
// outbox in the same transaction; usage that arrives through the gateway is caught by the worker's
// pass; a hard limit reached is reported once as entitlement.exhausted.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';
import { evaluateAll } from '../src/alerts/service.ts';

let billing: BillingHandle;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;
let receiver: http.Server;
let secret: string;
const received: any[] = [];

beforeAll(async () => {
  const started = await startTestBilling({ env: { GATEWAY_PORT: '0' }, webhooks: { intervalMs: 100 } });
  billing = started.billing;
  pg = createPostgres(started.config.postgresUrl, { max: 4 });
  gateway = await startGateway(started.config, { pg });
  aggregator = await startAggregator({
    ...started.config,
    aggregator: { ...started.config.aggregator, port: 0, groupId: uniqueId('g_alerts') },
  });
  org = await createOrg(billing.url);
  const api = org.api;
  // a receiver, so that the events are written (the outbox stores only what some endpoint wants)
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      // verified with the Standard Webhooks library, as a receiver would
      try {
        received.push(new Webhook(secret).verify(body, req.headers as Record<string, string>));
        res.writeHead(200).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const ep = await api.post('/v1/webhook_endpoints', {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`,
    event_types: ['usage.threshold_reached', 'entitlement.exhausted'],
  });
  expect(ep.status, JSON.stringify(ep.body)).toBe(201);
  secret = ep.body.secret;
  expect((await api.post('/v1/metrics', { metric_id: 'calls', event_name: 'call', aggregation: 'count' })).status).toBe(201);
  expect((await api.post('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'calls' })).status).toBe(201);
  expect(
    (
      await api.post('/v1/plans', {
        plan_id: 'p',
        name: 'P',
        interval: 'month',
        flat_fee: '0',
        entitlements: [{ feature_id: 'api', limit: 50, limit_type: 'hard' }],
      })
    ).status,
  ).toBe(201);
}, 180_000);

afterAll(async () => {
  receiver?.close();
  await billing?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
});

const events = async (type: string, customer: string) =>
  (
    await pg.query<{ payload: any }>(
      `SELECT payload FROM webhook_events WHERE organization_id = $1 AND type = $2 AND payload->'data'->>'customer_id' = $3`,
      [org.orgId, type, customer],
    )
  ).rows.map((r) => r.payload);

describe('usage alerts', () => {
  it('80 % of the limit, crossed by 40 concurrent consuming checks: one crossing, one event; exhaustion once', async () => {
    const c = uniqueId('c');
    await org.api.post('/v1/customers', { customer_id: c });
    await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: 'p' });
    const alert = await org.api.post('/v1/usage_alerts', { feature_id: 'api', customer_id: c, threshold_percent: '80' });
    expect(alert.status, JSON.stringify(alert.body)).toBe(201);
    expect((await org.api.post('/v1/usage_alerts', { feature_id: 'api', threshold_percent: '80', threshold_quantity: '1' })).status).toBe(
      400,
    );
    expect((await org.api.post('/v1/usage_alerts', { feature_id: 'nope', threshold_quantity: '1' })).status).toBe(404);
    // 39 units: below 80 % of 50 (= 40)
    expect(
      (await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 39, send_event: true })).body.allowed,
    ).toBe(true);
    // 40 concurrent checks of 1: the first crosses 40, later ones reach the limit (50), the rest are denied
    const answers = await Promise.all(
      Array.from({ length: 40 }, () =>
        org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 1, send_event: true }),
      ),
    );
    expect(answers.filter((a) => a.body.allowed).length).toBe(11);
    await waitFor(
      async () => ({ reached: await events('usage.threshold_reached', c), exhausted: await events('entitlement.exhausted', c) }),
      (e) => e.reached.length >= 1 && e.exhausted.length >= 1,
      { timeoutMs: 15_000, intervalMs: 50, what: 'both events in the outbox' },
    );
    // evaluating again (the worker's pass, and more checks) reports nothing new
    await evaluateAll(billing.deps, { organizationId: org.orgId });
    await org.api.post('/v1/check', { customer_id: c, feature_id: 'api', required_balance: 1, send_event: true });
    await evaluateAll(billing.deps, { organizationId: org.orgId });
    const reached = await events('usage.threshold_reached', c);
    expect(reached).toHaveLength(1);
    expect(reached[0]).toMatchObject({
      type: 'usage.threshold_reached',
      data: { customer_id: c, feature_id: 'api', alert_id: alert.body.alert_id, threshold: '40', usage_limit: 50 },
    });
    expect(reached[0].data.usage).toBeGreaterThanOrEqual(40);
    expect(await events('entitlement.exhausted', c)).toHaveLength(1);
    // and delivered once each to the receiver
    await waitFor(
      async () =>
        received
          .filter((p) => p.data?.customer_id === c)
          .map((p) => p.type)
          .sort(),
      (t) => t.length === 2,
      { timeoutMs: 15_000, intervalMs: 50, what: 'the two deliveries' },
    );
    expect(
      received
        .filter((p) => p.data?.customer_id === c)
        .map((p) => p.type)
        .sort(),
    ).toEqual(['entitlement.exhausted', 'usage.threshold_reached']);
    const crossings = (await org.api.get(`/v1/usage_alerts/${alert.body.alert_id}/crossings`)).body.data;
    expect(crossings).toHaveLength(1);
  }, 60_000);

  it('usage through the gateway is caught by the worker pass (a plan-wide absolute threshold)', async () => {
    const c = uniqueId('g');
    await org.api.post('/v1/customers', { customer_id: c });
    await org.api.post('/v1/subscriptions', { customer_id: c, plan_id: 'p' });
    await org.api.post('/v1/usage_alerts', { feature_id: 'api', plan_id: 'p', threshold_quantity: '5' });
    const res = await fetch(`${gateway.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
      body: JSON.stringify(Array.from({ length: 6 }, () => ({ customer_id: c, event_name: 'call', idempotency_id: uniqueId('e') }))),
    });
    expect(res.status).toBe(200);
    await waitFor(
      async () => {
        await evaluateAll(billing.deps, { organizationId: org.orgId });
        return (await events('usage.threshold_reached', c)).length;
      },
      (n) => n === 1,
      { timeoutMs: 30_000, intervalMs: 200, what: 'the gateway usage crossing the threshold' },
    );
    await evaluateAll(billing.deps, { organizationId: org.orgId });
    expect(await events('usage.threshold_reached', c)).toHaveLength(1);
    expect(await events('entitlement.exhausted', c)).toHaveLength(0);
  }, 60_000);
});
