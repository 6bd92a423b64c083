// The enqueue() queue, close(), cause unwrapping, per-call options, disabled/beforeSend/logger and the
// resource-grouped calls, against a fake fetch.
import { describe, expect, it, vi } from 'vitest';
import { Meterline, MeterlineError, type EventResult, type MeterlineOptions, type UsageEventInput } from '../src/index.ts';

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

function accepted(events: { idempotency_id: string }[]) {
  const results: EventResult[] = events.map((e, index) => ({ index, status: 'accepted', idempotency_id: e.idempotency_id }));
  return json(200, { accepted: results.length, duplicates: 0, rejected: 0, retry: 0, ignored: 0, results });
}

/** A gateway whose answers the test releases; every request honors its AbortSignal. */
function heldGateway() {
  const held: { body: any[]; release: (res?: Response) => void }[] = [];
  const fetch = (_url: string, init: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      const body = JSON.parse(String(init.body));
      held.push({ body, release: (res) => resolve(res ?? accepted(body)) });
      init.signal?.addEventListener('abort', () => reject(Object.assign(new Error('This operation was aborted'), { name: 'AbortError' })));
    });
  return { fetch, held };
}

function client(extra: Partial<MeterlineOptions>) {
  const errors: MeterlineError[] = [];
  const m = new Meterline({
    apiKey: 'mk_test',
    random: () => 0.5,
    sleep: async () => undefined,
    flushIntervalMs: 0,
    onError: (e) => errors.push(e),
    ...extra,
  });
  return { m, errors };
}

const ev = (i: number): UsageEventInput => ({ event_name: 'api_call', customer_id: `c${i % 3}`, properties: { n: i } });

/** The error a call rejects with (fails the test if it resolves). */
const failure = (p: Promise<unknown>): Promise<MeterlineError> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e as MeterlineError,
  );

const held = (s: { queued: number; inFlight: number }) => s.queued + s.inFlight;

describe('enqueue: bounded, never throws', () => {
  it('drop_oldest (default): the oldest queued events go, counted and reported once with their ids', async () => {
    const { fetch, held: reqs } = heldGateway();
    const { m, errors } = client({ fetch, maxQueueSize: 3, flushAt: 100 });
    const ids = [0, 1, 2, 3, 4].map((i) => m.enqueue(ev(i)));
    expect(m.stats()).toMatchObject({ queued: 3, inFlight: 0, dropped: 2 });
    await Promise.resolve();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'events_dropped',
      details: { dropped: 2, reason: 'queue_full', idempotency_ids: ids.slice(0, 2) },
    });
    const flushed = m.flush();
    await vi.waitFor(() => expect(reqs).toHaveLength(1));
    expect(reqs[0]!.body.map((e) => e.idempotency_id)).toEqual(ids.slice(2));
    reqs[0]!.release();
    expect((await flushed).accepted).toBe(3);
    expect(m.stats()).toMatchObject({ queued: 0, inFlight: 0, sent: 3, dropped: 2 });
  });

  it('drop_newest: the new events go', async () => {
    const { fetch, held: reqs } = heldGateway();
    const { m, errors } = client({ fetch, maxQueueSize: 3, flushAt: 100, overflow: 'drop_newest' });
    const ids = [0, 1, 2, 3, 4].map((i) => m.enqueue(ev(i)));
    await Promise.resolve();
    expect(errors[0]!.details).toMatchObject({ dropped: 2, idempotency_ids: ids.slice(3) });
    const flushed = m.flush();
    await vi.waitFor(() => expect(reqs).toHaveLength(1));
    expect(reqs[0]!.body.map((e) => e.idempotency_id)).toEqual(ids.slice(0, 3));
    reqs[0]!.release();
    await flushed;
  });

  it('the bound includes events in flight: queued + inFlight <= maxQueueSize while a request hangs', async () => {
    const { fetch, held: reqs } = heldGateway();
    const { m } = client({ fetch, maxQueueSize: 5, flushAt: 5 });
    for (let i = 0; i < 5; i++) m.enqueue(ev(i));
    await vi.waitFor(() => expect(reqs).toHaveLength(1));
    expect(m.stats()).toMatchObject({ queued: 0, inFlight: 5 });
    for (let i = 5; i < 20; i++) {
      m.enqueue(ev(i));
      expect(held(m.stats())).toBeLessThanOrEqual(5);
    }
    // in-flight events cannot be dropped, so the new ones were
    expect(m.stats()).toMatchObject({ queued: 0, inFlight: 5, dropped: 15 });
    expect(m.queued).toBe(5); // the deprecated getter counts in-flight events too
    reqs[0]!.release();
    await vi.waitFor(() => expect(m.stats()).toMatchObject({ inFlight: 0, sent: 5 }));
  });

  it('a failed flush puts its events back (same ids, front of the queue) and reports it; drop_oldest then drops them first', async () => {
    let down = true;
    const calls: any[][] = [];
    const fetch = async (_u: string, init: RequestInit) => {
      const body = JSON.parse(String(init.body));
      calls.push(body);
      return down ? json(503, { error: { code: 'kafka_unavailable', message: 'down' } }) : accepted(body);
    };
    const { m, errors } = client({ fetch, maxQueueSize: 6, flushAt: 4, maxRetries: 1 });
    const ids = [0, 1, 2, 3].map((i) => m.enqueue(ev(i)));
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ code: 'kafka_unavailable', status: 503, details: { requeued: 4, idempotency_ids: ids } });
    expect(m.stats()).toMatchObject({ queued: 4, inFlight: 0, requeued: 4, dropped: 0, failed: 0 });
    const more = [4, 5, 6].map((i) => m.enqueue(ev(i)));
    expect(m.stats()).toMatchObject({ queued: 6, dropped: 1 });
    down = false; // the 7th enqueue reached flushAt: a background send is due, flush() runs after it
    await m.flush();
    expect(calls.at(-1)!.map((e) => e.idempotency_id)).toEqual([...ids.slice(1), ...more]);
    expect(m.stats()).toMatchObject({ queued: 0, sent: 6, dropped: 1 });
  });

  it('a failure a resend cannot fix (401) counts the events as failed, with their ids', async () => {
    const fetch = async () => json(401, { error: { code: 'unauthorized', message: 'bad key' } });
    const { m, errors } = client({ fetch, flushAt: 2 });
    const ids = [m.enqueue(ev(1)), m.enqueue(ev(2))];
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ code: 'unauthorized', status: 401, details: { failed: 2, idempotency_ids: ids } });
    expect(m.stats()).toMatchObject({ queued: 0, failed: 2, requeued: 0 });
  });

  it('accounting: every event is sent, rejected, dropped, failed or still held', async () => {
    let n = 0;
    const fetch = async (_u: string, init: RequestInit) => {
      const body = JSON.parse(String(init.body));
      if (n++ % 3 === 0) return json(503, { error: { code: 'unavailable', message: 'x' } });
      const results = body.map((e: any, index: number) =>
        e.properties.n % 7 === 0
          ? { index, status: 'rejected', errors: [{ field: 'x', reason: 'y', message: 'z' }] }
          : { index, status: 'accepted', idempotency_id: e.idempotency_id },
      );
      const rejected = results.filter((r: any) => r.status === 'rejected').length;
      return json(rejected ? 207 : 200, { accepted: body.length - rejected, duplicates: 0, rejected, retry: 0, ignored: 0, results });
    };
    const { m } = client({ fetch, maxQueueSize: 50, flushAt: 10, maxBatchEvents: 10, maxRetries: 0 });
    for (let i = 0; i < 500; i++) {
      m.enqueue(ev(i));
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    const report = await m.close({ timeoutMs: 5000 });
    const s = m.stats();
    expect(s.sent + s.rejected + s.dropped + s.failed + s.queued + s.inFlight).toBe(500);
    expect(s.queued + s.inFlight).toBe(0);
    expect(report.undelivered.length).toBeLessThanOrEqual(s.failed);
  });
});

describe('close({ timeoutMs })', () => {
  it('includes the request in flight when it is called and what is queued', async () => {
    const { fetch, held: reqs } = heldGateway();
    const { m } = client({ fetch, flushAt: 3 });
    const ids = [0, 1, 2].map((i) => m.enqueue(ev(i)));
    await vi.waitFor(() => expect(reqs).toHaveLength(1));
    ids.push(m.enqueue(ev(3)), m.enqueue(ev(4)));
    const closing = m.close();
    reqs[0]!.release();
    await vi.waitFor(() => expect(reqs).toHaveLength(2));
    reqs[1]!.release();
    const r = await closing;
    expect(r.results.map((x) => x.idempotency_id)).toEqual(ids);
    expect(r).toMatchObject({ accepted: 5, undelivered: [], timedOut: false, dropped: 0 });
    expect(await m.close()).toBe(r);
  });

  it('aborts what is in flight at the deadline and names every undelivered event', async () => {
    const { fetch, held: reqs } = heldGateway();
    const { m } = client({ fetch, flushAt: 4, timeoutMs: 60_000, maxBatchEvents: 4 });
    const ids = Array.from({ length: 10 }, (_, i) => m.enqueue(ev(i)));
    await vi.waitFor(() => expect(reqs).toHaveLength(1));
    const t0 = Date.now();
    const r = await m.close({ timeoutMs: 200 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(1000);
    expect(r.timedOut).toBe(true);
    expect(r.accepted).toBe(0);
    expect(r.undelivered.map((u) => u.idempotency_id).sort()).toEqual([...ids].sort());
    expect(new Set(r.undelivered.map((u) => u.reason))).toEqual(new Set(['close_timeout']));
    expect(m.stats()).toMatchObject({ queued: 0, inFlight: 0, failed: 10, sent: 0 });
  });

  it('does not wait for a fetch that ignores its signal', async () => {
    const fetch = () => new Promise<Response>(() => undefined);
    const { m } = client({ fetch, flushAt: 1 });
    const id = m.enqueue(ev(1));
    const t0 = Date.now();
    const r = await m.close({ timeoutMs: 100 });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(r.undelivered).toEqual([{ idempotency_id: id, reason: 'close_timeout', message: 'close() deadline reached' }]);
  });

  it('with the ingest URL down, close reports the events with the failure instead of waiting out the deadline', async () => {
    const fetch = async () => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
      });
    };
    const { m } = client({ fetch, flushAt: 1000, maxRetries: 2 });
    const ids = [m.enqueue(ev(1)), m.enqueue(ev(2))];
    const r = await m.close({ timeoutMs: 5000 });
    expect(r.timedOut).toBe(false);
    expect(r.undelivered.map((u) => u.idempotency_id)).toEqual(ids);
    expect(r.undelivered[0]!.reason).toBe('network_error');
    expect(r.undelivered[0]!.message).toContain('ECONNREFUSED');
  });
});

describe('errors carry their cause', () => {
  it("unwraps Node's TypeError('fetch failed') cause: code and message in the error", async () => {
    const fetch = async () => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
      });
    };
    const { m } = client({ fetch, maxRetries: 0 });
    const err = await failure(m.track(ev(1)));
    expect(err).toBeInstanceOf(MeterlineError);
    expect(err.message).toContain('fetch failed (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9)');
    expect(err).toMatchObject({ code: 'network_error', status: 0, causeCode: 'ECONNREFUSED' });
  });

  it('an AggregateError cause (one error per address) shows its errors', async () => {
    const fetch = async () => {
      const agg = Object.assign(
        new AggregateError([new Error('connect ECONNREFUSED ::1:9'), new Error('connect ECONNREFUSED 127.0.0.1:9')], ''),
        { code: 'ECONNREFUSED' },
      );
      throw new TypeError('fetch failed', { cause: agg });
    };
    const { m } = client({ fetch, maxRetries: 0 });
    const err = await failure(m.customers.get('c'));
    expect(err.message).toContain('ECONNREFUSED: connect ECONNREFUSED ::1:9; connect ECONNREFUSED 127.0.0.1:9');
    expect(err.causeCode).toBe('ECONNREFUSED');
  });
});

describe('per-call options', () => {
  it('signal aborts the attempt and the retry wait (no further attempts)', async () => {
    let calls = 0;
    const fetch = async () => {
      calls++;
      return json(503, { error: { code: 'unavailable', message: 'x' } }, { 'retry-after': '10' });
    };
    const m = new Meterline({ apiKey: 'k', fetch, maxRetries: 5 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('user gave up')), 50);
    const t0 = Date.now();
    const err = await failure(m.plans.list({}, { signal: ac.signal }));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err).toMatchObject({ code: 'aborted', status: 0 });
    expect(err.message).toContain('user gave up');
    expect(calls).toBe(1);
    const pre = await failure(m.track(ev(1), { signal: ac.signal }));
    expect(pre).toMatchObject({ code: 'aborted' });
    expect(calls).toBe(1);
  });

  it('timeoutMs bounds one attempt of this call', async () => {
    const fetch = (_u: string, init: RequestInit) =>
      new Promise<Response>((_r, reject) => init.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    const m = new Meterline({ apiKey: 'k', fetch, maxRetries: 0, timeoutMs: 60_000 });
    const t0 = Date.now();
    const err = await failure(m.subscriptions.get('s1', { timeoutMs: 50 }));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err).toMatchObject({ code: 'timeout' });
  });
});

describe('disabled, beforeSend, logger', () => {
  it('disabled: no network at all; ingest answers ignored, billing rejects with disabled', async () => {
    const fetch = vi.fn();
    const m = new Meterline({ apiKey: 'k', fetch: fetch as any, disabled: true });
    expect(await m.track(ev(1))).toMatchObject({ status: 'ignored', reason: 'disabled' });
    expect((await m.trackBatch([ev(1), ev(2)])).ignored).toBe(2);
    expect(m.enqueue(ev(3))).toMatch(/^[0-9a-f-]{36}$/);
    expect(m.stats()).toMatchObject({ queued: 0 });
    await expect(m.entitlements.check({ customer_id: 'c', feature_id: 'f' })).rejects.toMatchObject({ code: 'disabled' });
    expect((await m.close()).undelivered).toEqual([]);
    expect(fetch).not.toHaveBeenCalled();
  });

  it('beforeSend can change an event or drop it (counted)', async () => {
    const bodies: any[][] = [];
    const fetch = async (_u: string, init: RequestInit) => {
      const body = JSON.parse(String(init.body));
      bodies.push(body);
      return accepted(body);
    };
    const { m } = client({
      fetch,
      flushAt: 100,
      beforeSend: (e) => (e.customer_id === 'c0' ? null : { ...e, properties: { ...e.properties, redacted: true } }),
    });
    const r = await m.trackBatch([ev(0), ev(1), ev(2)]);
    expect(r.results.map((x) => x.status)).toEqual(['ignored', 'accepted', 'accepted']);
    expect(r.results[0]).toMatchObject({ index: 0, reason: 'before_send' });
    expect(r.results[1]!.index).toBe(1);
    expect(bodies[0]).toHaveLength(2);
    expect(bodies[0]![0].properties).toEqual({ n: 1, redacted: true });
    m.enqueue(ev(3));
    m.enqueue(ev(4));
    await m.flush();
    expect(m.stats()).toMatchObject({ filtered: 1, sent: 1 });
  });

  it('logger.debug sees requests and retries', async () => {
    const lines: string[] = [];
    let n = 0;
    const fetch = async () => (n++ === 0 ? json(503, { error: { code: 'x', message: 'y' } }) : json(200, { data: [] }));
    const m = new Meterline({ apiKey: 'k', fetch, sleep: async () => undefined, logger: { debug: (l) => lines.push(l) } });
    await m.features.list();
    expect(lines.some((l) => l.includes('GET http://127.0.0.1:8082/v1/features -> 503'))).toBe(true);
    expect(lines.some((l) => l.includes('retry 1/5'))).toBe(true);
    expect(lines.some((l) => l.includes('-> 200'))).toBe(true);
  });
});

describe('resource-grouped calls', () => {
  it('hit the billing routes', async () => {
    const calls: string[] = [];
    const bodies: unknown[] = [];
    const fetch = async (url: string, init: RequestInit) => {
      calls.push(`${init.method} ${url.replace('http://b.test', '')}`);
      bodies.push(init.body === undefined ? undefined : JSON.parse(String(init.body)));
      return url.endsWith('/document') ? new Response('<html></html>', { status: 200 }) : json(200, { ok: true });
    };
    const m = new Meterline({ apiKey: 'k', fetch, billingUrl: 'http://b.test' });
    await m.features.create({ feature_id: 'f', type: 'boolean' });
    await m.features.update('f', { name: 'F' });
    await m.metrics.list({ include_archived: true });
    await m.plans.getVersion('p', 2);
    await m.plans.archive('p');
    await m.subscriptions.list({ customer_id: 'c', status: 'active' });
    await m.subscriptions.cancel('s');
    await m.subscriptions.changePlan('s', 'p2');
    await m.subscriptions.closeFailures({ limit: 5 });
    await m.invoices.list({ status: 'draft' });
    await m.invoices.markPaid('i');
    expect(await m.invoices.document('i')).toBe('<html></html>');
    await m.payments.record('i', { amount: '5.00' });
    await m.payments.refund('pay');
    await m.entitlements.list('c');
    await m.entitlements('c');
    await m.usage.query({ customer_id: 'c', metric_id: 'm', from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z', window: 'month' });
    await m.usage({ customer_id: 'c', metric_id: 'm', from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' });
    await m.invoices({ customer_id: 'c' });
    await m.alerts.crossings('a');
    await m.settings.setInvoicing({ grace_period_seconds: 0 });
    await m.settings.getSegment();
    await m.organization.revokeApiKey('key');
    await m.metrics.versions('m', { limit: 2 });
    await m.subscriptions.attachAddOn('s', { plan_id: 'extra', quantity: 2 });
    await m.subscriptions.updateAddOn('s', 'extra', 3);
    await m.invoices.exportCsv({ status: 'paid' });
    await m.usage.exportCsv({ customer_id: 'c', metric_id: 'm', from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' });
    await m.entities.create('c', { entity_id: 'seat-1' });
    await m.promotions.revoke('c', 'api');
    await m.checkout.attach({ customer_id: 'c', plan_id: 'p' });
    await m.checkout.complete('co');
    await m.referrals.code('c', 'prog');
    await m.referrals.redeem('CODE', 'c2');
    expect(calls).toEqual([
      'POST /v1/features',
      'PATCH /v1/features/f',
      'GET /v1/metrics?include_archived=true',
      'GET /v1/plans/p/versions/2',
      'DELETE /v1/plans/p',
      'GET /v1/subscriptions?customer_id=c&status=active',
      'POST /v1/subscriptions/s/cancel',
      'PATCH /v1/subscriptions/s',
      'GET /v1/subscription_close_failures?limit=5',
      'GET /v1/invoices?status=draft',
      'POST /v1/invoices/i/mark_paid',
      'GET /v1/invoices/i/document',
      'POST /v1/invoices/i/payments',
      'POST /v1/payments/pay/refund',
      'GET /v1/customers/c/entitlements',
      'GET /v1/customers/c/entitlements',
      'GET /v1/usage?customer_id=c&metric_id=m&from=2026-01-01T00%3A00%3A00Z&to=2026-02-01T00%3A00%3A00Z&window=month',
      'GET /v1/usage?customer_id=c&metric_id=m&from=2026-01-01T00%3A00%3A00Z&to=2026-02-01T00%3A00%3A00Z',
      'GET /v1/invoices?customer_id=c',
      'GET /v1/usage_alerts/a/crossings',
      'PUT /v1/settings/invoicing',
      'GET /v1/settings/segment',
      'DELETE /v1/api_keys/key',
      'GET /v1/metrics/m/versions?limit=2',
      'POST /v1/subscriptions/s/add_ons',
      'PATCH /v1/subscriptions/s/add_ons/extra',
      'GET /v1/invoices/export.csv?status=paid',
      'GET /v1/usage?customer_id=c&metric_id=m&from=2026-01-01T00%3A00%3A00Z&to=2026-02-01T00%3A00%3A00Z&format=csv',
      'POST /v1/customers/c/entities',
      'DELETE /v1/customers/c/promotional_entitlements/api',
      'POST /v1/attach',
      'POST /v1/checkouts/co/complete',
      'POST /v1/referrals/code',
      'POST /v1/referrals/redeem',
    ]);
    expect(bodies.at(-1)).toEqual({ code: 'CODE', customer_id: 'c2' });
    expect(bodies[6]).toEqual({});
    expect(bodies[7]).toEqual({ replace_immediately_type: 'change_subscription_plan', plan_id: 'p2' });
  });
});
