// Outbound webhooks (issue #12): a real HTTP receiver on 127.0.0.1; every signature is checked with the
// `standardwebhooks` library's Webhook.verify (not our code).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createKafka, ensureTopics, withTransaction } from '@meterline/core';
import { ServiceProcess, portInUse } from '../../../bench/lib/proc.ts';
import { testEnv } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { ADMIN_SECRET, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';
import { enqueueWebhookEvent } from '../src/webhooks/outbox.ts';
import { Meterline, verifyWebhook } from '@meterline/sdk';

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
  code: number;
}

/** A receiver: per path, the status to answer (default 200); records every request. */
class Receiver {
  server!: http.Server;
  url = '';
  received: Received[] = [];
  status = new Map<string, () => number>();
  async start() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const code = this.status.get(path)?.() ?? 200;
        this.received.push({
          path,
          headers: req.headers as Record<string, string>,
          body: Buffer.concat(chunks).toString(),
          at: Date.now(),
          code,
        });
        res.writeHead(code, { 'content-type': 'text/plain' });
        res.end(code >= 300 ? 'x'.repeat(5000) : 'ok');
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  at(path: string) {
    return this.received.filter((r) => r.path === path);
  }
  /** Successful (2xx) ones, parsed and verified with the library; each webhook-id once. */
  delivered(path: string, secret: string) {
    const wh = new Webhook(secret);
    const ok = new Map<string, any>();
    for (const r of this.at(path)) {
      if (r.code !== 200) continue;
      const msg = wh.verify(r.body, r.headers) as any;
      expect(msg.id).toBe(r.headers['webhook-id']);
      ok.set(msg.id, msg);
    }
    return [...ok.values()];
  }
  close() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }
}

const FAST = { intervalMs: 25, retryScheduleMs: [100, 200, 300, 400, 500, 500, 500, 500, 500, 500] };
let billing: BillingHandle;
const rx = new Receiver();

beforeAll(async () => {
  await rx.start();
  ({ billing } = await startTestBilling({ webhooks: FAST }));
}, 60_000);
afterAll(async () => {
  await billing?.stop();
  await rx.close();
});

async function endpoint(api: ReturnType<typeof client0>, path: string, body: Record<string, unknown> = {}) {
  const r = await api.post('/v1/webhook_endpoints', { url: rx.url + path, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  expect(r.body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]+$/);
  return r.body as { endpoint_id: string; secret: string };
}
type Api = Awaited<ReturnType<typeof createOrg>>['api'];
const client0 = (a: Api) => a;

const types = (msgs: any[]) => msgs.map((m) => m.type).sort();

describe('webhooks', () => {
  it('every event type billing emits is delivered, signed (verified by the library), once per webhook-id; other organizations get nothing', async () => {
    const { api, orgId } = await createOrg(billing.url);
    const other = await createOrg(billing.url);
    const ep = await endpoint(api, '/all');
    const theirs = await endpoint(other.api, '/other');
    expect((await api.put('/v1/settings/invoicing', { grace_period_seconds: 0 })).status).toBe(200);
    await api.post('/v1/plans', { plan_id: 'p', name: 'P', interval: 'month', flat_fee: '10.00', flat_fee_timing: 'in_advance' });
    await api.post('/v1/plans', { plan_id: 'q', name: 'Q', interval: 'month', flat_fee: '20.00', flat_fee_timing: 'in_advance' });
    expect((await api.post('/v1/customers', { customer_id: 'c1', name: 'One' })).status).toBe(201);
    expect((await api.patch('/v1/customers/c1', { name: 'Uno' })).status).toBe(200);
    // started a month and a day ago: the first period closes (renewed) at creation
    const start = new Date(Date.now() - 86_400_000);
    start.setUTCMonth(start.getUTCMonth() - 1);
    const sub = await api.post('/v1/subscriptions', { customer_id: 'c1', plan_id: 'p', start_date: start.toISOString() });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const sid = sub.body.subscription_id;
    const invs = (await api.get(`/v1/invoices?customer_id=c1`)).body.data as any[];
    const startInv = invs.find((i) => i.reason === 'subscription_start');
    const draft = invs.find((i) => i.status === 'draft');
    expect(startInv && draft).toBeTruthy();
    expect((await api.post(`/v1/invoices/${startInv.invoice_id}/mark_paid`, {})).status).toBe(200);
    expect((await api.post(`/v1/invoices/${draft.invoice_id}/void`, {})).status).toBe(200);
    const change = await api.patch(`/v1/subscriptions/${sid}`, { replace_immediately_type: 'change_subscription_plan', plan_id: 'q' });
    expect(change.status, JSON.stringify(change.body)).toBe(200);
    const scheduled = await api.post(`/v1/subscriptions/${sid}/cancel`, {});
    expect(scheduled.status, JSON.stringify(scheduled.body)).toBe(200);
    const cancel = await api.post(`/v1/subscriptions/${sid}/cancel`, { type: 'end_current_subscription_and_dont_bill' });
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    // ended by its end_date (the period transitions of closeElapsedLocked, as the scheduler runs them)
    await api.post('/v1/customers', { customer_id: 'c2' });
    const ended = await api.post('/v1/subscriptions', {
      customer_id: 'c2',
      plan_id: 'p',
      start_date: start.toISOString(),
      end_date: new Date(Date.now() - 3_600_000).toISOString(),
    });
    expect(ended.status, JSON.stringify(ended.body)).toBe(201);
    expect(ended.body.status).toBe('ended');
    // their own change reaches their endpoint only
    expect((await other.api.post('/v1/customers', { customer_id: 'theirs' })).status).toBe(201);

    const want = [
      'customer.created',
      'customer.updated',
      'subscription.created',
      'subscription.renewed',
      'subscription.plan_changed',
      'subscription.cancelled',
      'subscription.ended',
      'invoice.created',
      'invoice.finalized',
      'invoice.paid',
      'invoice.voided',
    ];
    // every change above has committed with its events: wait until the log has no pending delivery
    await waitFor(
      async () => (await api.get(`/v1/webhook_endpoints/${ep.endpoint_id}/deliveries?limit=200`)).body.data as any[],
      (d) => d.length > 0 && d.every((x) => x.status === 'succeeded'),
      { timeoutMs: 20_000, what: 'every delivery succeeded' },
    );
    const got = rx.delivered('/all', ep.secret);
    expect([...new Set(types(got))].sort()).toEqual([...want].sort());
    for (const m of got) {
      expect(m.organization_id).toBe(orgId);
      expect(m.api_version).toBe('2026-12-01');
      expect(m.id).toMatch(/^msg_/);
      expect(Date.parse(m.created_at)).toBeGreaterThan(0);
    }
    const by = (t: string) => got.filter((m) => m.type === t);
    expect(by('customer.created')[0].data).toMatchObject({ customer_id: 'c1', name: 'One' });
    expect(by('customer.updated')[0].data).toMatchObject({ customer_id: 'c1', name: 'Uno' });
    expect(by('subscription.created')[0].data).toMatchObject({ subscription_id: sid, plan_id: 'p' });
    expect(by('subscription.plan_changed')[0].data).toMatchObject({ subscription_id: sid, plan_id: 'q', previous_plan_id: 'p' });
    expect(
      by('subscription.ended')
        .map((m) => m.data.subscription_id)
        .sort(),
    ).toEqual([sid, ended.body.subscription_id].sort());
    expect(by('subscription.ended').every((m) => m.data.status === 'ended')).toBe(true);
    // cancel: once when set to end at the period end (still active), once when ended now
    const cancelled = by('subscription.cancelled').map((m) => m.data);
    expect(cancelled).toHaveLength(2);
    expect(cancelled.some((d) => d.status === 'active' && d.auto_renew === false)).toBe(true);
    expect(cancelled.some((d) => d.status === 'ended')).toBe(true);
    expect(by('subscription.renewed').length).toBeGreaterThanOrEqual(1);
    expect(by('subscription.renewed')[0].data.renewed_period.start).toBeTruthy();
    expect(by('invoice.paid').map((m) => m.data.invoice_id)).toContain(startInv.invoice_id);
    expect(by('invoice.voided')[0].data).toMatchObject({ invoice_id: draft.invoice_id, status: 'void' });
    // each invoice: created once; the finalized ones finalized once
    const created = by('invoice.created')
      .filter((m) => m.data.customer_id === 'c1')
      .map((m) => m.data.invoice_id);
    expect(new Set(created).size).toBe(created.length);
    const all = (await api.get(`/v1/invoices?customer_id=c1`)).body.data as any[];
    expect(created.sort()).toEqual(all.map((i) => i.invoice_id).sort());
    // the other organization: exactly its own event
    const theirsGot = await waitFor(
      async () => rx.delivered('/other', theirs.secret),
      (m) => m.length >= 1,
      { what: "the other organization's event" },
    );
    expect(types(theirsGot)).toEqual(['customer.created']);
    expect(theirsGot[0].organization_id).toBe(other.orgId);
    // the delivery log
    const log = await api.get(`/v1/webhook_endpoints/${ep.endpoint_id}/deliveries?limit=200`);
    expect(log.status).toBe(200);
    expect(log.body.data.length).toBe(got.length);
    expect(log.body.data.every((d: any) => d.status === 'succeeded' && d.attempts === 1 && d.last_status_code === 200)).toBe(true);
    expect((await other.api.get(`/v1/webhook_endpoints/${ep.endpoint_id}/deliveries`)).status).toBe(404);
  }, 60_000);

  it('event_types filters; a receiver failing (500) for a while gets everything once it recovers; the log has each attempt; re-send', async () => {
    const { api } = await createOrg(billing.url);
    const only = await endpoint(api, '/only-updated', { event_types: ['customer.updated'] });
    let failing = true;
    rx.status.set('/flaky', () => (failing ? 500 : 200));
    const ep = await endpoint(api, '/flaky', { event_types: ['customer.created'] });
    for (let i = 0; i < 20; i++) expect((await api.post('/v1/customers', { customer_id: `f${i}` })).status).toBe(201);
    await api.patch('/v1/customers/f0', { name: 'x' });
    await waitFor(
      async () => new Set(rx.at('/flaky').map((r) => r.headers['webhook-id'])).size,
      (n) => n === 20,
      { what: 'first attempts' },
    );
    await waitFor(
      async () => rx.at('/flaky').length,
      (n) => n >= 60,
      { what: 'retries' },
    );
    failing = false;
    const got = await waitFor(
      async () => rx.delivered('/flaky', ep.secret).length,
      (n) => n === 20,
      { what: 'recovery' },
    );
    expect(got).toBe(20);
    const log = await waitFor(
      async () => (await api.get(`/v1/webhook_endpoints/${ep.endpoint_id}/deliveries?limit=100`)).body.data as any[],
      (d) => d.length === 20 && d.every((x) => x.status === 'succeeded'),
      { what: 'all succeeded in the log' },
    );
    const wh = new Webhook(ep.secret);
    for (const r of rx.at('/flaky')) wh.verify(r.body, r.headers);
    const ids = new Set(log.map((d) => d.event_id));
    expect(new Set(rx.at('/flaky').map((r) => r.headers['webhook-id']))).toEqual(ids);
    const d0 = log[0];
    expect(d0.attempts).toBeGreaterThan(1);
    expect(d0.attempt_log.length).toBe(d0.attempts);
    expect(d0.attempt_log[0].status_code).toBe(500);
    expect(d0.attempt_log[0].response_body.length).toBe(1024);
    expect(d0.attempt_log.at(-1).status_code).toBe(200);
    expect(d0.attempt_log.every((a: any) => a.response_ms >= 0)).toBe(true);
    // the filtered endpoint got exactly the one update
    const upd = await waitFor(
      async () => rx.delivered('/only-updated', only.secret),
      (m) => m.length >= 1,
    );
    expect(types(upd)).toEqual(['customer.updated']);
    // manual re-send: the same webhook-id again
    const before = rx.at('/flaky').filter((r) => r.headers['webhook-id'] === d0.event_id).length;
    const rs = await api.post(`/v1/webhook_deliveries/${d0.delivery_id}/resend`, {});
    expect(rs.status, JSON.stringify(rs.body)).toBe(200);
    await waitFor(
      async () => rx.at('/flaky').filter((r) => r.headers['webhook-id'] === d0.event_id).length,
      (n) => n === before + 1,
      { what: 'the re-send' },
    );
  }, 60_000);

  it('a receiver that never recovers: the delivery is abandoned after the retry schedule', async () => {
    const { api } = await createOrg(billing.url);
    rx.status.set('/down', () => 503);
    const ep = await endpoint(api, '/down');
    await api.post('/v1/customers', { customer_id: 'd' });
    const log = await waitFor(
      async () => (await api.get(`/v1/webhook_endpoints/${ep.endpoint_id}/deliveries`)).body.data as any[],
      (d) => d.length === 1 && d[0].status === 'abandoned',
      { what: 'abandoned', timeoutMs: 20_000 },
    );
    expect(log[0].attempts).toBe(FAST.retryScheduleMs.length + 1);
    expect(log[0].last_error).toBe('HTTP 503');
  }, 30_000);

  it('a rotated secret: during the overlap both sign (each verifies alone); after it only the new one', async () => {
    const { api } = await createOrg(billing.url);
    const ep = await endpoint(api, '/rot');
    const rot = await api.post(`/v1/webhook_endpoints/${ep.endpoint_id}/rotate_secret`, { overlap_seconds: 3600 });
    expect(rot.status).toBe(200);
    expect(rot.body.secret).not.toBe(ep.secret);
    expect(Date.parse(rot.body.previous_secret_expires_at)).toBeGreaterThan(Date.now() + 3_500_000);
    expect((await api.get(`/v1/webhook_endpoints/${ep.endpoint_id}`)).body.secret).toBeUndefined();
    await api.post('/v1/customers', { customer_id: 'r1' });
    const [r] = await waitFor(
      async () => rx.at('/rot'),
      (x) => x.length === 1,
    );
    expect(r!.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect((new Webhook(ep.secret).verify(r!.body, r!.headers) as any).type).toBe('customer.created');
    expect((new Webhook(rot.body.secret).verify(r!.body, r!.headers) as any).type).toBe('customer.created');
    // without overlap: the old secret no longer verifies
    const rot2 = await api.post(`/v1/webhook_endpoints/${ep.endpoint_id}/rotate_secret`, { overlap_seconds: 0 });
    await api.post('/v1/customers', { customer_id: 'r2' });
    const got = await waitFor(
      async () => rx.at('/rot'),
      (x) => x.length === 2,
    );
    const r2 = got[1]!;
    expect(r2.headers['webhook-signature']!.split(' ')).toHaveLength(1);
    expect(() => new Webhook(rot.body.secret).verify(r2.body, r2.headers)).toThrow();
    expect((new Webhook(rot2.body.secret).verify(r2.body, r2.headers) as any).data.customer_id).toBe('r2');
  }, 30_000);

  it('the SDK: endpoint management, the delivery log, verifyWebhook on real deliveries', async () => {
    const { apiKey } = await createOrg(billing.url);
    const m = new Meterline({ apiKey, billingUrl: billing.url, maxRetries: 0 });
    const ep = await m.webhooks.create({ url: `${rx.url}/sdk`, event_types: ['customer.created', 'customer.updated'] });
    expect(ep.secret).toMatch(/^whsec_/);
    expect((await m.webhooks.list()).data.map((e) => e.endpoint_id)).toEqual([ep.endpoint_id]);
    expect(await m.webhooks.update(ep.endpoint_id, { description: 'crm' })).toMatchObject({ description: 'crm', enabled: true });
    await m.customers.create({ customer_id: 's1' });
    const [r] = await waitFor(
      async () => rx.at('/sdk'),
      (x) => x.length === 1,
    );
    expect(verifyWebhook(r!.body, r!.headers, ep.secret)).toMatchObject({ type: 'customer.created', data: { customer_id: 's1' } });
    expect(() => verifyWebhook(r!.body.replace('s1', 's2'), r!.headers, ep.secret)).toThrow();
    const rotated = await m.webhooks.rotateSecret(ep.endpoint_id, 600);
    await m.customers.update('s1', { name: 'S' });
    const got = await waitFor(
      async () => rx.at('/sdk'),
      (x) => x.length === 2,
    );
    for (const s of [ep.secret, rotated.secret])
      expect(verifyWebhook(got[1]!.body, got[1]!.headers, s)).toMatchObject({ type: 'customer.updated' });
    const log = await waitFor(
      () => m.webhooks.deliveries(ep.endpoint_id),
      (p) => p.data.length === 2 && p.data.every((d) => d.status === 'succeeded'),
    );
    expect(log.data[0]!.attempt_log[0]!.status_code).toBe(200);
    expect((await m.webhooks.resend(log.data[0]!.delivery_id)).status).toBe('pending');
    expect((await m.webhooks.delete(ep.endpoint_id)).enabled).toBe(false);
    expect((await m.webhooks.list()).data).toEqual([]);
  }, 30_000);

  it('410 Gone disables the endpoint and abandons its pending deliveries; nothing more is sent', async () => {
    const { api } = await createOrg(billing.url);
    rx.status.set('/gone', () => 410);
    const ep = await endpoint(api, '/gone');
    await api.post('/v1/customers', { customer_id: 'g1' });
    const e = await waitFor(
      async () => (await api.get(`/v1/webhook_endpoints/${ep.endpoint_id}`)).body,
      (b) => b.enabled === false,
      { what: 'disabled' },
    );
    expect(e.disabled_reason).toMatch(/410/);
    const n = rx.at('/gone').length;
    expect(n).toBe(1);
    await api.post('/v1/customers', { customer_id: 'g2' });
    const log = (await api.get(`/v1/webhook_endpoints/${ep.endpoint_id}/deliveries`)).body.data;
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ status: 'failed', last_status_code: 410 });
    // re-enabling clears the reason
    const re = await api.patch(`/v1/webhook_endpoints/${ep.endpoint_id}`, { enabled: true });
    expect(re.body).toMatchObject({ enabled: true, disabled_reason: null });
    // URL validation
    expect((await api.post('/v1/webhook_endpoints', { url: 'ftp://x.example/' })).status).toBe(400);
    expect((await api.post('/v1/webhook_endpoints', { url: 'http://' })).status).toBe(400);
  }, 30_000);

  it('the outbox is written in the change transaction: a rolled-back change leaves no event', async () => {
    const { api, orgId } = await createOrg(billing.url);
    await endpoint(api, '/tx');
    await expect(
      withTransaction(billing.deps.pool, async (db) => {
        await enqueueWebhookEvent(db, orgId, 'credits.low', { customer_id: 'x' });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    const id = await withTransaction(billing.deps.pool, (db) =>
      enqueueWebhookEvent(db, orgId, 'usage.threshold_reached', { customer_id: 'x' }),
    );
    const got = await waitFor(
      async () => rx.at('/tx'),
      (x) => x.length >= 1,
    );
    expect(got.map((r) => r.headers['webhook-id'])).toEqual([id]);
    expect(JSON.parse(got[0]!.body).type).toBe('usage.threshold_reached');
  }, 30_000);
});

describe('kill -9 of billing between the change and the delivery', () => {
  const PORT = 19573;
  const topic = uniqueId('t_wh_kill');
  let child: ServiceProcess;
  afterAll(async () => {
    await child?.stop();
  });

  it('loses nothing: every committed change has its event delivered after the restart, and no event lacks its change', async () => {
    expect(await portInUse(PORT)).toBe(false);
    const env = Object.fromEntries(
      Object.entries(
        testEnv({
          KAFKA_EVENTS_TOPIC: topic,
          KAFKA_DEAD_LETTER_TOPIC: `${topic}_dlq`,
          ADMIN_SECRET,
          BILLING_PORT: String(PORT),
          WEBHOOK_WORKER_INTERVAL_MS: '25',
          WEBHOOK_TIMEOUT_MS: '1000', // the lease of an attempt cut off by the kill: timeout + 5 s
          WEBHOOK_RETRY_SCHEDULE_MS: '100,200,300,400,500,500,500,500,500,500,500,500,500,500,500,500,500,500,500,500',
        }),
      ).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
    const admin = createKafka({ ...billing.deps.config.kafka, eventsTopic: topic, deadLetterTopic: `${topic}_dlq` }).admin();
    await admin.connect();
    await ensureTopics(admin, { ...billing.deps.config.kafka, eventsTopic: topic, deadLetterTopic: `${topic}_dlq` }).finally(() =>
      admin.disconnect(),
    );
    child = new ServiceProcess('billing', PORT, env, `.cache/billing/webhooks-kill-${topic}`);
    await child.start();
    const { api } = await createOrg(child.url);
    let down = true;
    rx.status.set('/kill', () => (down ? 503 : 200));
    const ep = await endpoint(api, '/kill', { event_types: ['customer.created'] });
    // 400 creates in flight, kill -9 part-way: some committed (with their events), some never happened
    const creates = Array.from({ length: 400 }, (_, i) => api.post('/v1/customers', { customer_id: `k${i}` }).catch(() => null));
    await waitFor(
      async () => rx.at('/kill').length,
      (n) => n >= 10,
      { what: 'some deliveries attempted (failing) before the kill' },
    );
    await child.kill9();
    const answered = (await Promise.all(creates)).filter((r) => r?.status === 201).length;
    down = false;
    await child.start();
    const customers = new Set<string>();
    for (let offset = 0; ; offset += 200) {
      const page = (await api.get(`/v1/customers?limit=200&offset=${offset}`)).body;
      for (const c of page.data) customers.add(c.customer_id);
      if (!page.has_more) break;
    }
    expect(customers.size).toBeGreaterThanOrEqual(answered);
    expect(customers.size).toBeLessThan(400); // the kill landed part-way (else this proved nothing about it)
    const got = await waitFor(
      async () => new Set(rx.delivered('/kill', ep.secret).map((m) => m.data.customer_id)),
      (s) => s.size >= customers.size,
      { what: 'every committed customer delivered', timeoutMs: 30_000 },
    ).catch(async (err) => {
      const { rows } = await billing.deps.pool.query(
        `SELECT status, count(*)::int AS n, min(next_attempt_at) AS next FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY status`,
        [ep.endpoint_id],
      );
      throw new Error(`${(err as Error).message}; deliveries: ${JSON.stringify(rows)}`);
    });
    expect([...got].sort()).toEqual([...customers].sort());
    console.log(
      `[webhooks-kill] ${answered} creates answered before the kill, ${customers.size} committed, all ${got.size} delivered after restart`,
    );
  }, 120_000);
});

describe('throughput and latency', () => {
  it('delivers 2,000 events to a local receiver; p99 from the change to receipt', async () => {
    await billing.stop(); // one instance with the default settings (interval 500 ms, concurrency 32) does the work
    const perf = await startTestBilling({ webhooks: { intervalMs: 500 } });
    try {
      const { api, orgId } = await createOrg(perf.billing.url);
      const ep = await endpoint(api, '/perf', { event_types: ['credits.low', 'customer.created'] });
      const N = 2000;
      // burst: N events committed together
      const t0 = performance.now();
      await withTransaction(perf.billing.deps.pool, async (db) => {
        for (let i = 0; i < N; i++) await enqueueWebhookEvent(db, orgId, 'credits.low', { i });
      });
      const committed = performance.now();
      const committedAt = Date.now();
      await waitFor(
        async () => new Set(rx.at('/perf').map((r) => r.headers['webhook-id'])).size,
        (n) => n === N,
        { what: 'all delivered', timeoutMs: 60_000, intervalMs: 20 },
      );
      const last = Math.max(...rx.at('/perf').map((r) => r.at));
      const rate = N / ((last - committedAt) / 1000);
      // steady: changes through the API one after another; latency = receipt - event created_at
      const M = 300;
      for (let i = 0; i < M; i++) expect((await api.post('/v1/customers', { customer_id: `l${i}` })).status).toBe(201);
      const lat = await waitFor(
        async () =>
          rx
            .at('/perf')
            .map((r) => ({ r, m: JSON.parse(r.body) }))
            .filter((x) => x.m.type === 'customer.created'),
        (x) => x.length === M,
        { what: 'steady deliveries', timeoutMs: 30_000 },
      );
      const ms = lat.map((x) => x.r.at - Date.parse(x.m.created_at)).sort((a, b) => a - b);
      const q = (p: number) => ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)]!;
      new Webhook(ep.secret).verify(lat[0]!.r.body, lat[0]!.r.headers);
      console.log(
        `[webhooks-perf] burst of ${N}: ${Math.round(rate)} webhooks/s (commit took ${Math.round(committed - t0)} ms); ` +
          `steady ${M} API changes, change -> receipt: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${ms.at(-1)} ms (worker interval 500 ms)`,
      );
      expect(rate).toBeGreaterThan(100);
      expect(q(0.99)).toBeLessThan(2_000);
    } finally {
      await perf.billing.stop();
    }
  }, 120_000);
});
