// The SDK's queue against real sockets (a port nobody listens on; a black hole that accepts and never
// answers) and its resource-grouped calls against the real billing service started in-process.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres, type PgPool } from '@meterline/core';
import { startBilling, type BillingHandle } from '@meterline/billing';
import { testConfig } from '../../../test/support/env.ts';
import { createTestOrganization, uniqueId } from '../../../test/support/fixtures.ts';
import { Meterline, type MeterlineError } from '../src/index.ts';

const cfg = testConfig({ BILLING_PORT: '0' });

let pool: PgPool;
let billing: BillingHandle;
let org: { organizationId: string; apiKey: string };
let blackHole: net.Server;
let blackHolePort: number;
const sockets = new Set<net.Socket>();

/** A port that was free a moment ago (its listener closed): connecting gets ECONNREFUSED. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  pool = createPostgres(cfg.postgresUrl);
  org = await createTestOrganization(pool);
  billing = await startBilling(cfg, {}, { renewalIntervalMs: 0 });
  blackHole = net.createServer((socket) => {
    sockets.add(socket); // accepted, read, never answered
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  blackHolePort = (blackHole.address() as net.AddressInfo).port;
}, 120_000);

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => blackHole?.close(() => resolve()));
  await billing?.stop();
  await pool?.end();
});

const ev = (i: number) => ({ event_name: 'api_call', customer_id: `c${i % 10}`, properties: { n: i } });

/**
 * 20,000 enqueues with maxQueueSize 5,000 against an ingest URL that does not work: never throws, the
 * bound holds at every step, drops are exact, and close({ timeoutMs: 2000 }) returns in time naming
 * every event it still held.
 */
async function overflowAndClose(ingestUrl: string) {
  const dropReports: MeterlineError[] = [];
  const m = new Meterline({
    apiKey: org.apiKey,
    ingestUrl,
    billingUrl: billing.url,
    maxQueueSize: 5_000,
    flushIntervalMs: 100,
    onError: (e) => {
      if (e.code === 'events_dropped') dropReports.push(e);
    },
  });
  const ids: string[] = [];
  let maxHeld = 0;
  let sawInFlight = false;
  const t0 = performance.now();
  for (let i = 0; i < 20_000; i++) {
    ids.push(m.enqueue(ev(i))); // would throw out of the test if it threw
    const s = m.stats();
    maxHeld = Math.max(maxHeld, s.queued + s.inFlight);
    if (s.queued + s.inFlight > 5_000) throw new Error(`bound broken at ${i}: ${JSON.stringify(s)}`);
    if (s.inFlight > 0) sawInFlight = true;
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 2)); // let background sends start and fail
  }
  const enqueueMs = performance.now() - t0;
  const before = m.stats();
  expect(maxHeld).toBe(5_000);
  expect(before.queued + before.inFlight).toBe(5_000);
  expect(before.sent).toBe(0);
  expect(before.dropped).toBe(15_000);

  const started = performance.now();
  const report = await m.close({ timeoutMs: 2_000 });
  const closeMs = performance.now() - started;
  expect(closeMs).toBeLessThan(3_000);

  const after = m.stats();
  expect(after).toMatchObject({ queued: 0, inFlight: 0, sent: 0, dropped: 15_000, failed: 5_000 });
  expect(report.accepted + report.duplicates + report.ignored + report.rejected).toBe(0);
  expect(report.undelivered).toHaveLength(5_000);
  expect(report.dropped).toBe(15_000);
  // exactly everything not sent: every id is either reported dropped (onError) or undelivered, once
  const droppedIds = dropReports.flatMap((e) => (e.details as { idempotency_ids: string[] }).idempotency_ids);
  expect(droppedIds).toHaveLength(15_000);
  const accounted = [...droppedIds, ...report.undelivered.map((u) => u.idempotency_id)];
  expect(new Set(accounted).size).toBe(20_000);
  expect([...accounted].sort()).toEqual([...ids].sort());
  return { report, closeMs, enqueueMs, sawInFlight, before };
}

describe('the queue against ingest URLs that do not work', () => {
  it('a port nobody listens on: bounded, exact drops, close within its deadline; errors name ECONNREFUSED', async () => {
    const port = await deadPort();
    const { report, closeMs, enqueueMs } = await overflowAndClose(`http://127.0.0.1:${port}`);
    console.log(`[sdk] dead port: 20,000 enqueues in ${enqueueMs.toFixed(0)} ms; close(2000) took ${closeMs.toFixed(0)} ms`);
    expect(new Set(report.undelivered.map((u) => u.reason)).size).toBeGreaterThan(0);

    const m = new Meterline({ apiKey: org.apiKey, ingestUrl: `http://127.0.0.1:${port}`, maxRetries: 0 });
    const err = await m.track(ev(1)).catch((e: MeterlineError) => e);
    expect(err).toMatchObject({ code: 'network_error', status: 0, causeCode: 'ECONNREFUSED' });
    expect((err as MeterlineError).message).toMatch(/fetch failed \(.*ECONNREFUSED/);
  }, 60_000);

  it('a black hole (accepts, never answers): the request in flight is aborted at the deadline and reported', async () => {
    const { report, closeMs, enqueueMs, sawInFlight, before } = await overflowAndClose(`http://127.0.0.1:${blackHolePort}`);
    console.log(`[sdk] black hole: 20,000 enqueues in ${enqueueMs.toFixed(0)} ms; close(2000) took ${closeMs.toFixed(0)} ms`);
    expect(sawInFlight).toBe(true);
    expect(before.inFlight).toBeGreaterThan(0); // a request was hanging when close() was called
    expect(closeMs).toBeGreaterThanOrEqual(1_900);
    expect(report.timedOut).toBe(true);
    expect(new Set(report.undelivered.map((u) => u.reason))).toEqual(new Set(['close_timeout']));

    // per-call timeout against the same black hole
    const m = new Meterline({ apiKey: org.apiKey, ingestUrl: `http://127.0.0.1:${blackHolePort}`, maxRetries: 0, timeoutMs: 60_000 });
    const t0 = performance.now();
    const err = await m.track(ev(1), { timeoutMs: 300 }).catch((e: MeterlineError) => e);
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(err).toMatchObject({ code: 'timeout', status: 0 });
  }, 60_000);
});

describe('resource-grouped calls against the real billing', () => {
  it('features, metrics, plans (versions), subscriptions, invoices, payments, entitlements, settings', async () => {
    const sdk = new Meterline({ apiKey: org.apiKey, billingUrl: billing.url, maxRetries: 1 });
    const metric = await sdk.metrics.create({ metric_id: 'calls', event_name: 'api_call', aggregation: 'count' });
    expect(metric).toMatchObject({ metric_id: 'calls', event_name: 'api_call' });
    expect((await sdk.metrics.get('calls')).metric_id).toBe('calls');
    expect((await sdk.metrics.list()).data.map((x) => x.metric_id)).toContain('calls');

    expect(await sdk.features.create({ feature_id: 'api', type: 'metered', metric_id: 'calls' })).toMatchObject({ feature_id: 'api' });
    await sdk.features.create({ feature_id: 'sso', type: 'boolean' });
    expect(await sdk.features.update('sso', { name: 'Single sign-on' })).toMatchObject({ name: 'Single sign-on' });
    expect((await sdk.features.get('sso')).type).toBe('boolean');
    expect((await sdk.features.list()).data.map((f) => f.feature_id).sort()).toEqual(['api', 'sso']);

    const plan = await sdk.plans.create({
      plan_id: 'team',
      name: 'Team',
      interval: 'month',
      flat_fee: '30.00',
      flat_fee_timing: 'in_arrears',
      entitlements: [{ feature_id: 'api', limit: 100, limit_type: 'hard' }, { feature_id: 'sso' }],
    });
    expect(plan).toMatchObject({ plan_id: 'team', version: 1 });
    const v2 = await sdk.plans.update('team', { name: 'Team (2026)' });
    expect(v2).toMatchObject({ version: 2, name: 'Team (2026)' });
    expect((await sdk.plans.getVersion('team', 1)).name).toBe('Team');
    const got = await sdk.plans.get('team');
    expect(got.current_version).toBe(2);
    expect(got.versions?.map((v) => v.version)).toEqual([1, 2]);
    await sdk.plans.create({ plan_id: 'scale', name: 'Scale', interval: 'month', flat_fee: '90.00', flat_fee_timing: 'in_arrears' });
    expect((await sdk.plans.list()).data.map((p) => p.plan_id).sort()).toEqual(['scale', 'team']);

    const customer = uniqueId('cust');
    await sdk.customers.create({ customer_id: customer });
    const preview = await sdk.subscriptions.preview({ customer_id: customer, plan_id: 'team' });
    expect(preview.customer_id).toBe(customer);
    const start = new Date(Date.now() - 60_000);
    start.setUTCMonth(start.getUTCMonth() - 1);
    const subId = uniqueId('sub');
    const sub = await sdk.subscriptions.create({
      customer_id: customer,
      plan_id: 'team',
      subscription_id: subId,
      start_date: start.toISOString(),
    });
    expect(sub).toMatchObject({ subscription_id: subId, customer_id: customer });
    expect((await sdk.subscriptions.get(subId)).subscription_id).toBe(subId);
    expect((await sdk.subscriptions.list({ customer_id: customer })).data.map((s) => s.subscription_id)).toContain(subId);
    expect((await sdk.subscriptions.upcomingInvoice(subId)).subscription_id).toBe(subId);
    expect((await sdk.subscriptions.closeFailure(subId)).close_error).toBeNull();
    expect((await sdk.subscriptions.closeFailures()).data).toEqual([]);

    const ent = await sdk.entitlements.get(customer, 'api');
    expect(ent).toMatchObject({ feature_id: 'api', usage_limit: 100 });
    expect((await sdk.entitlements.list(customer)).data.map((e) => e.feature_id).sort()).toEqual(['api', 'sso']);
    expect((await sdk.entitlements.check({ customer_id: customer, feature_id: 'sso' })).allowed).toBe(true);
    const consumed = await sdk.entitlements.check({ customer_id: customer, feature_id: 'api', send_event: true, required_balance: 3 });
    expect(consumed).toMatchObject({ allowed: true, event_recorded: true });

    // last month's period closed into a draft: finalize, pay (manual provider), read its document
    const invoices = await sdk.invoices.list({ subscription_id: subId });
    const draft = invoices.data.find((i) => i.reason === 'period_close');
    expect(draft).toMatchObject({ status: 'draft', total: '30.00' });
    const finalized = await sdk.invoices.finalize(draft!.invoice_id);
    expect(finalized.number).toMatch(/^INV-\d{6}$/);
    const payment = await sdk.payments.record(draft!.invoice_id, { reference: uniqueId('ref') });
    expect(payment).toMatchObject({ kind: 'charge', status: 'succeeded', amount: '30.00' });
    expect((await sdk.payments.list(draft!.invoice_id)).payment_status).toBe('paid');
    expect((await sdk.invoices.get(draft!.invoice_id)).status).toBe('paid');
    expect(await sdk.invoices.document(draft!.invoice_id)).toContain(finalized.number!);
    expect(await sdk.invoices.void(draft!.invoice_id).catch((e: MeterlineError) => e)).toMatchObject({ status: 409 });

    const change = await sdk.subscriptions.previewChange(subId, 'scale');
    expect(change.subscription_id).toBe(subId);
    const changed = await sdk.subscriptions.changePlan(subId, 'scale');
    expect(changed.plan_id).toBe('scale');
    const cancelled = await sdk.subscriptions.cancel(subId);
    expect(cancelled.auto_renew).toBe(false);

    expect(await sdk.settings.setInvoicing({ grace_period_seconds: 60 })).toEqual({ grace_period_seconds: 60 });
    expect(await sdk.settings.getInvoicing()).toEqual({ grace_period_seconds: 60 });
    expect((await sdk.organization.get()).organization_id).toBe(org.organizationId);
    const alert = await sdk.alerts.create({ feature_id: 'api', threshold_percent: '80' });
    expect((await sdk.alerts.list()).data.map((a) => a.alert_id)).toContain(alert.alert_id);
    expect((await sdk.alerts.crossings(alert.alert_id)).data).toEqual([]);
    expect(await sdk.alerts.archive(alert.alert_id)).toMatchObject({ alert_id: alert.alert_id });
    expect(await sdk.metrics.update('calls', { name: 'API calls' })).toMatchObject({ metric_id: 'calls', name: 'API calls' });
    expect((await sdk.metrics.get('calls')).versions.length).toBeGreaterThanOrEqual(1);
    expect((await sdk.metrics.versions('calls')).data.length).toBeGreaterThanOrEqual(1);
    const csv = await sdk.invoices.exportCsv({ customer_id: customer });
    expect(csv.split('\n')[0]).toContain('invoice_id');
    expect(csv).toContain(draft!.invoice_id);
    expect(await sdk.entities.create(customer, { entity_id: 'seat-1', name: 'Ada' })).toMatchObject({ entity_id: 'seat-1' });
    expect((await sdk.entities.list(customer)).data.map((e) => e.entity_id)).toEqual(['seat-1']);
    await sdk.plans.archive('scale');
    expect((await sdk.plans.get('scale')).archived_at).not.toBeNull();
  }, 120_000);
});
