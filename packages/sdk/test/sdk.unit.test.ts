// The SDK against a fake fetch: ids, retries, splitting, background batching, billing calls, errors.
import { describe, expect, it, vi } from 'vitest';
import { Meterline, MeterlineError, parseRetryAfter, type EventResult, type UsageEventInput } from '../src/index.ts';

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: any;
}
type Handler = (call: Call, n: number) => Response | Promise<Response>;

function fakeFetch(handler: Handler) {
  const calls: Call[] = [];
  const fetch = async (url: string, init: RequestInit) => {
    const call: Call = {
      method: init.method ?? 'GET',
      url,
      headers: init.headers as Record<string, string>,
      body: init.body === undefined ? undefined : JSON.parse(String(init.body)),
    };
    calls.push(call);
    return handler(call, calls.length - 1);
  };
  return { fetch, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/** The gateway's answer for `events`, with per-event statuses chosen by `statusOf`. */
function gatewayAnswer(events: any[], statusOf: (e: any, i: number) => EventResult['status'] = () => 'accepted') {
  const results: EventResult[] = events.map((e, index) => {
    const status = statusOf(e, index);
    if (status === 'rejected')
      return { index, status, errors: [{ field: 'event_name', reason: 'required', message: 'event_name is required' }] };
    if (status === 'retry') return { index, status, idempotency_id: e.idempotency_id, reason: 'in_flight' };
    return { index, status, idempotency_id: e.idempotency_id };
  });
  const count = (s: string) => results.filter((r) => r.status === s).length;
  const summary = {
    accepted: count('accepted'),
    duplicates: count('duplicate'),
    rejected: count('rejected'),
    retry: count('retry'),
    ignored: count('ignored'),
    results,
  };
  const ok = summary.accepted + summary.duplicates + summary.ignored;
  const status = summary.retry > 0 ? 503 : summary.rejected === 0 ? 200 : ok > 0 ? 207 : 400;
  return json(status, summary, status === 503 ? { 'retry-after': '1' } : {});
}

function client(fetch: any, extra: Partial<ConstructorParameters<typeof Meterline>[0]> = {}) {
  const sleeps: number[] = [];
  const m = new Meterline({
    apiKey: 'mk_test',
    fetch,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    onError: () => undefined,
    ...extra,
  });
  return { m, sleeps };
}

const ev = (i: number, extra: Partial<UsageEventInput> = {}): UsageEventInput => ({
  event_name: 'api_call',
  customer_id: `c${i % 3}`,
  properties: { n: i },
  ...extra,
});

describe('track / trackBatch', () => {
  it('sends to /v1/events with the API key and an idempotency id per event, keeping given ids', async () => {
    const { fetch, calls } = fakeFetch((c) => gatewayAnswer(c.body));
    const { m } = client(fetch, { ingestUrl: 'http://gw.test/' });
    const input = [ev(1), ev(2, { idempotency_id: 'mine' }), ev(3, { idempotency_key: 'alias-id' })];
    const r = await m.trackBatch(input);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe('http://gw.test/v1/events');
    expect(calls[0]!.method).toBe('POST');
    expect(calls[0]!.headers['x-api-key']).toBe('mk_test');
    const sent = calls[0]!.body as any[];
    expect(sent[0].idempotency_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(sent[1].idempotency_id).toBe('mine');
    expect(sent[2].idempotency_id).toBe('alias-id');
    expect(input[0]).not.toHaveProperty('idempotency_id'); // the caller's objects are not mutated
    expect(r).toMatchObject({ accepted: 3, duplicates: 0, rejected: 0, retry: 0 });
    expect(r.results.map((x) => x.idempotency_id)).toEqual([sent[0].idempotency_id, 'mine', 'alias-id']);
  });

  it('sends Dates as ISO strings', async () => {
    const { fetch, calls } = fakeFetch((c) => gatewayAnswer(c.body));
    const { m } = client(fetch);
    await m.track(ev(1, { time_created: new Date('2025-06-01T12:00:00Z') }));
    expect(calls[0]!.body[0].time_created).toBe('2025-06-01T12:00:00.000Z');
  });

  it('retries 503 / 429 / network errors with the SAME ids, honoring Retry-After, then succeeds', async () => {
    const { fetch, calls } = fakeFetch((c, n) => {
      if (n === 0) return json(503, { error: { code: 'kafka_unavailable', message: 'down' } }, { 'retry-after': '2' });
      if (n === 1) throw new TypeError('fetch failed');
      if (n === 2) return json(429, { error: { code: 'rate_limited', message: 'slow down' } });
      return gatewayAnswer(c.body);
    });
    const { m, sleeps } = client(fetch, { retryBaseDelayMs: 100 });
    const r = await m.trackBatch([ev(1), ev(2)]);
    expect(calls).toHaveLength(4);
    const ids = calls.map((c) => c.body.map((e: any) => e.idempotency_id).join(','));
    expect(new Set(ids).size).toBe(1); // identical ids on every attempt
    expect(sleeps[0]).toBe(2100); // Retry-After 2 s + 10% jitter at random()=0.5 → 2 000 + 100
    expect(sleeps[1]).toBe(100); // backoff 100·2^1 = 200, full jitter at 0.5
    expect(sleeps[2]).toBe(200); // 100·2^2 = 400 → 200
    expect(r.accepted).toBe(2);
  });

  it('re-sends only events in status retry, keeps accepted results and maps indexes back', async () => {
    const { fetch, calls } = fakeFetch((c, n) =>
      n === 0
        ? gatewayAnswer(c.body, (_e, i) => (i === 1 || i === 3 ? 'retry' : i === 2 ? 'rejected' : 'accepted'))
        : gatewayAnswer(c.body, (_e, i) => (i === 0 ? 'accepted' : 'duplicate')),
    );
    const { m, sleeps } = client(fetch);
    const r = await m.trackBatch([ev(0), ev(1), { event_name: '', customer_id: 'x' }, ev(3)]);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.body.map((e: any) => e.idempotency_id)).toEqual([calls[0]!.body[1].idempotency_id, calls[0]!.body[3].idempotency_id]);
    expect(sleeps).toEqual([1050]); // Retry-After: 1 from the 503 with per-event results
    expect(r.results.map((x) => [x.index, x.status])).toEqual([
      [0, 'accepted'],
      [1, 'accepted'],
      [2, 'rejected'],
      [3, 'duplicate'],
    ]);
    expect(r).toMatchObject({ accepted: 2, duplicates: 1, rejected: 1, retry: 0 });
  });

  it('gives up after maxRetries with a MeterlineError carrying every result and the unsent ids', async () => {
    const { fetch, calls } = fakeFetch(() =>
      json(503, { error: { code: 'redis_unavailable', message: 'no redis' } }, { 'retry-after': '1' }),
    );
    const { m } = client(fetch, { maxRetries: 2 });
    const err = await m.trackBatch([ev(1), ev(2)]).catch((e) => e);
    expect(err).toBeInstanceOf(MeterlineError);
    expect(err).toMatchObject({ status: 503, code: 'redis_unavailable', retryAfterSeconds: 1 });
    expect(calls).toHaveLength(3);
    expect(err.results.map((r: EventResult) => [r.status, r.idempotency_id])).toEqual(
      calls[0]!.body.map((e: any) => ['retry', e.idempotency_id]),
    );
  });

  it('does not retry 400/401/413 and exposes code and status', async () => {
    for (const [status, code] of [
      [400, 'invalid_body'],
      [401, 'invalid_api_key'],
      [413, 'body_too_large'],
    ] as const) {
      const { fetch, calls } = fakeFetch(() => json(status, { error: { code, message: 'no' } }));
      const { m } = client(fetch);
      const err = await m.trackBatch([ev(1)]).catch((e) => e);
      expect(err).toBeInstanceOf(MeterlineError);
      expect([err.status, err.code]).toEqual([status, code]);
      expect(calls).toHaveLength(1);
    }
  });

  it('track() throws events_rejected with per-event errors; trackBatch returns them (or throws on request)', async () => {
    const { fetch } = fakeFetch((c) => gatewayAnswer(c.body, (e) => (e.event_name ? 'accepted' : 'rejected')));
    const { m } = client(fetch);
    const err = await m.track({ event_name: '', customer_id: 'c' }).catch((e) => e);
    expect(err).toMatchObject({ status: 400, code: 'events_rejected' });
    expect(err.eventErrors).toEqual([
      { index: 0, errors: [{ field: 'event_name', reason: 'required', message: 'event_name is required' }] },
    ]);

    const mixed = [ev(0), { event_name: '', customer_id: 'c' }];
    const r = await m.trackBatch(mixed);
    expect(r).toMatchObject({ accepted: 1, rejected: 1 });
    const err207 = await m.trackBatch(mixed, { throwOnRejected: true }).catch((e) => e);
    expect(err207).toMatchObject({ status: 207, code: 'events_rejected' });
    expect(err207.eventErrors.map((x: any) => x.index)).toEqual([1]);
    expect(err207.results.map((x: EventResult) => x.status)).toEqual(['accepted', 'rejected']);
  });

  it('splits 2,500 events into requests of at most 1,000 and keeps the order of results', async () => {
    const { fetch, calls } = fakeFetch((c) => gatewayAnswer(c.body));
    const { m } = client(fetch);
    const events = Array.from({ length: 2500 }, (_, i) => ev(i));
    const r = await m.trackBatch(events);
    expect(calls.map((c) => c.body.length)).toEqual([1000, 1000, 500]);
    expect(r.accepted).toBe(2500);
    expect(r.results.map((x) => x.index)).toEqual(events.map((_, i) => i));
    expect(r.results[1700]!.idempotency_id).toBe(calls[1]!.body[700].idempotency_id);
    expect(new Set(r.results.map((x) => x.idempotency_id)).size).toBe(2500);
  });

  it("splits by body size too, and remaps duplicate_of to the caller's indexes", async () => {
    const { fetch, calls } = fakeFetch((c) => {
      const results = c.body.map((e: any, index: number) =>
        index === 1
          ? { index, status: 'duplicate', idempotency_id: e.idempotency_id, duplicate_of: 0 }
          : { index, status: 'accepted', idempotency_id: e.idempotency_id },
      );
      return json(200, { accepted: c.body.length - 1, duplicates: 1, rejected: 0, retry: 0, ignored: 0, results });
    });
    const { m } = client(fetch, { maxBatchBytes: 1000 });
    const big = 'x'.repeat(300);
    const events = Array.from({ length: 6 }, (_, i) => ev(i, { idempotency_id: `id-${Math.floor(i / 2)}`, properties: { big } }));
    const r = await m.trackBatch(events);
    expect(calls.length).toBe(3);
    for (const c of calls) expect(JSON.stringify(c.body).length).toBeLessThanOrEqual(1000);
    expect(r.results.filter((x) => x.status === 'duplicate').map((x) => [x.index, x.duplicate_of])).toEqual([
      [1, 0],
      [3, 2],
      [5, 4],
    ]);
  });

  it('times out a hanging attempt and retries it', async () => {
    const { fetch, calls } = fakeFetch((c, n) => (n === 0 ? new Promise<Response>(() => undefined) : gatewayAnswer(c.body)));
    // the hanging fetch ignores the signal: emulate fetch's abort behaviour
    const abortable = (url: string, init: RequestInit) =>
      Promise.race([
        fetch(url, init),
        new Promise<Response>((_, reject) =>
          init.signal!.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))),
        ),
      ]);
    const { m } = client(abortable, { timeoutMs: 50 });
    const r = await m.track(ev(1));
    expect(r.status).toBe('accepted');
    expect(calls).toHaveLength(2);
    expect(calls[1]!.body[0].idempotency_id).toBe(calls[0]!.body[0].idempotency_id);
  });
});

describe('enqueue / flush / close', () => {
  it('flushes in the background when flushAt events wait, and flush() sends the rest', async () => {
    const { fetch, calls } = fakeFetch((c) => gatewayAnswer(c.body));
    const { m } = client(fetch, { flushAt: 3, flushIntervalMs: 0 });
    const ids = [0, 1, 2].map((i) => m.enqueue(ev(i)));
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    expect(calls[0]!.body.map((e: any) => e.idempotency_id)).toEqual(ids);
    await vi.waitFor(() => expect(m.stats()).toMatchObject({ inFlight: 0, sent: 3 }));
    ids.push(m.enqueue(ev(3)));
    expect(m.queued).toBe(1);
    expect(calls).toHaveLength(1); // below flushAt, no timer: waits
    const r = await m.flush();
    expect(r.accepted).toBe(1);
    expect(calls[1]!.body.map((e: any) => e.idempotency_id)).toEqual([ids[3]]);
    expect(m.queued).toBe(0);
  });

  it('flushes on the interval', async () => {
    const { fetch, calls } = fakeFetch((c) => gatewayAnswer(c.body));
    const { m } = client(fetch, { flushAt: 100, flushIntervalMs: 20 });
    m.enqueue(ev(1));
    m.enqueue(ev(2));
    await vi.waitFor(() => expect(calls).toHaveLength(1), { timeout: 2000 });
    expect(calls[0]!.body).toHaveLength(2);
    await m.close();
  });

  it('is bounded: enqueue beyond maxQueueSize never throws, it drops the oldest and counts it', () => {
    const { fetch } = fakeFetch((c) => gatewayAnswer(c.body));
    const { m } = client(fetch, { maxQueueSize: 2, flushAt: 10, flushIntervalMs: 0 });
    const first = m.enqueue(ev(1));
    m.enqueue(ev(2));
    expect(() => m.enqueue(ev(3))).not.toThrow();
    expect(m.stats()).toMatchObject({ queued: 2, inFlight: 0, dropped: 1 });
    expect(first).toBeTypeOf('string');
  });

  it('close() flushes what is buffered; later events are dropped (counted), not thrown', async () => {
    const { fetch, calls } = fakeFetch((c) => gatewayAnswer(c.body));
    const { m } = client(fetch, { flushAt: 100, flushIntervalMs: 0 });
    for (let i = 0; i < 5; i++) m.enqueue(ev(i));
    const r = await m.close();
    expect(r.accepted).toBe(5);
    expect(calls).toHaveLength(1);
    expect(r.undelivered).toEqual([]);
    expect(() => m.enqueue(ev(9))).not.toThrow();
    expect(m.stats()).toMatchObject({ queued: 0, dropped: 1, sent: 5 });
    expect(calls).toHaveLength(1);
  });

  it('a failed background flush reports through onError and keeps the events (same ids) for the next flush', async () => {
    let down = true;
    const { fetch, calls } = fakeFetch((c) =>
      down ? json(503, { error: { code: 'kafka_unavailable', message: 'down' } }) : gatewayAnswer(c.body),
    );
    const errors: MeterlineError[] = [];
    const { m } = client(fetch, { flushAt: 2, flushIntervalMs: 0, maxRetries: 1, onError: (e) => errors.push(e) });
    const ids = [m.enqueue(ev(1)), m.enqueue(ev(2))];
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ code: 'kafka_unavailable', status: 503 });
    expect(m.queued).toBe(2);
    down = false;
    const r = await m.flush();
    expect(r.results.map((x) => x.idempotency_id)).toEqual(ids);
    expect(calls.at(-1)!.body.map((e: any) => e.idempotency_id)).toEqual(ids);
  });

  it('background rejections are reported through onError with per-event errors', async () => {
    const { fetch } = fakeFetch((c) => gatewayAnswer(c.body, (e) => (e.event_name ? 'accepted' : 'rejected')));
    const errors: MeterlineError[] = [];
    const { m } = client(fetch, { flushAt: 2, flushIntervalMs: 0, onError: (e) => errors.push(e) });
    m.enqueue(ev(1));
    m.enqueue({ event_name: '', customer_id: 'c' });
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(errors[0]).toMatchObject({ code: 'events_rejected', status: 207 });
    expect(errors[0]!.eventErrors!.map((e) => e.index)).toEqual([1]);
  });
});

describe('billing calls', () => {
  it('hit the billing routes with snake_case bodies and query strings', async () => {
    const { fetch, calls } = fakeFetch(() => json(200, { ok: true }));
    const { m } = client(fetch, { billingUrl: 'http://bill.test' });
    await m.customers.create({ customer_id: 'c1', email: 'a@b.c' });
    await m.customers.get('c/1');
    await m.customers.list({ limit: 10, include_archived: true });
    await m.check({ customer_id: 'c1', feature_id: 'api', send_event: true, required_balance: 2 });
    await m.customerAccess({ customer_id: 'c1', event_name: 'api_call', event_limit_type: 'free' });
    await m.entitlements('c1', { limit: 5 });
    await m.entitlement('c1', 'api', { requested_usage: 3 });
    await m.reportUsage({ customer_id: 'c1', feature_id: 'api', value: 4 });
    await m.setUsage({ customer_id: 'c1', feature_id: 'seats', value: 7 });
    await m.usage({
      customer_id: 'c1',
      feature_id: 'api',
      from: new Date('2025-01-01T00:00:00Z'),
      to: '2025-01-02T00:00:00Z',
      window: 'hour',
    });
    expect(calls.map((c) => `${c.method} ${c.url.replace('http://bill.test', '')}`)).toEqual([
      'POST /v1/customers',
      'GET /v1/customers/c%2F1',
      'GET /v1/customers?limit=10&include_archived=true',
      'POST /v1/check',
      'GET /v1/customer_access?customer_id=c1&event_name=api_call&event_limit_type=free',
      'GET /v1/customers/c1/entitlements?limit=5',
      'GET /v1/customers/c1/entitlements/api?requested_usage=3',
      'POST /v1/usage',
      'POST /v1/usage',
      'GET /v1/usage?customer_id=c1&feature_id=api&from=2025-01-01T00%3A00%3A00.000Z&to=2025-01-02T00%3A00%3A00Z&window=hour',
    ]);
    const key = expect.stringMatching(/^[0-9a-f-]{36}$/);
    expect(calls[3]!.body).toEqual({ customer_id: 'c1', feature_id: 'api', send_event: true, required_balance: 2, idempotency_key: key });
    expect(calls[7]!.body).toEqual({ customer_id: 'c1', feature_id: 'api', value: 4, idempotency_key: key });
    expect(calls[8]!.body).toEqual({ customer_id: 'c1', feature_id: 'seats', value: 7, update_behavior: 'set', idempotency_key: key });
    expect(new Set([calls[3]!.body.idempotency_key, calls[7]!.body.idempotency_key, calls[8]!.body.idempotency_key]).size).toBe(3);
    expect(calls[0]!.headers['x-api-key']).toBe('mk_test');
  });

  it('errors carry status, code and details; 503 is retried, a network error on a keyless non-idempotent call is not', async () => {
    const { fetch, calls } = fakeFetch((_c, n) =>
      n === 0
        ? json(404, { error: { code: 'not_found', message: 'customer "x" not found' } })
        : n === 1
          ? json(503, { error: { code: 'usage_not_recorded', message: 'retry' } })
          : n === 2
            ? json(200, { allowed: true })
            : Promise.reject(new TypeError('socket hang up')),
    );
    const { m } = client(fetch);
    const e404 = await m.customers.get('x').catch((e) => e);
    expect(e404).toMatchObject({ status: 404, code: 'not_found' });
    expect(await m.check({ customer_id: 'c', feature_id: 'f', send_event: true })).toEqual({ allowed: true });
    expect(calls).toHaveLength(3);
    const net = await m.request('POST', '/v1/plans', { plan_id: 'p' }).catch((e) => e);
    expect(net).toMatchObject({ status: 0, code: 'network_error' });
    expect(calls).toHaveLength(4); // not repeated: it may have been applied
  });

  it('consuming checks and usage reports get an idempotency_key before the first attempt; every retry reuses it', async () => {
    // network error, timeout-like failure, 503, 409 in_progress, then the answer
    const { fetch, calls } = fakeFetch((_c, n) =>
      n % 5 === 0
        ? Promise.reject(new TypeError('socket hang up'))
        : n % 5 === 1
          ? json(503, { error: { code: 'usage_not_recorded', message: 'retry' } })
          : n % 5 === 2
            ? json(409, { error: { code: 'idempotency_key_in_progress', message: 'retry' } }, { 'retry-after': '1' })
            : n % 5 === 3
              ? Promise.reject(new TypeError('ECONNRESET'))
              : json(200, { allowed: true }),
    );
    const { m, sleeps } = client(fetch);
    expect(await m.check({ customer_id: 'c', feature_id: 'f', send_event: true })).toEqual({ allowed: true });
    expect(calls).toHaveLength(5);
    const keys = new Set(calls.map((c) => c.body.idempotency_key));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(sleeps[2]).toBeGreaterThanOrEqual(1000); // Retry-After of the 409 honored
    await m.reportUsage({ customer_id: 'c', feature_id: 'f', value: 1 });
    const second = calls.slice(5).map((c) => c.body.idempotency_key);
    expect(second).toHaveLength(5);
    expect(new Set(second).size).toBe(1);
    expect(second[0]).not.toBe([...keys][0]); // a new key per call
    // a caller's key is kept as is
    await m.setUsage({ customer_id: 'c', feature_id: 'seats', value: 3, idempotency_key: 'order-42' });
    expect(new Set(calls.slice(10).map((c) => c.body.idempotency_key))).toEqual(new Set(['order-42']));
  });

  it('a non-consuming check carries no key; 409 idempotency_key_reused is not retried', async () => {
    const { fetch, calls } = fakeFetch((_c, n) =>
      n === 0 ? json(200, { allowed: true }) : json(409, { error: { code: 'idempotency_key_reused', message: 'used', details: {} } }),
    );
    const { m } = client(fetch);
    await m.check({ customer_id: 'c', feature_id: 'f' });
    expect(calls[0]!.body).toEqual({ customer_id: 'c', feature_id: 'f' });
    const e = await m.reportUsage({ customer_id: 'c', feature_id: 'f', value: 1, idempotency_key: 'k' }).catch((x) => x);
    expect(e).toMatchObject({ status: 409, code: 'idempotency_key_reused' });
    expect(calls).toHaveLength(2);
  });

  it('retries network errors for GETs', async () => {
    const { fetch, calls } = fakeFetch((_c, n) => (n < 2 ? Promise.reject(new TypeError('ECONNRESET')) : json(200, { data: [] })));
    const { m } = client(fetch);
    expect(await m.customers.list()).toEqual({ data: [] });
    expect(calls).toHaveLength(3);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
  });
});
