// The claim protocol and the ingest pipeline with an in-memory Redis stand-in (same SET NX GET / PX
// semantics, controllable clock) and a fake Kafka. Real Redis/Kafka behaviour is covered by *.int tests.
import { decodeEvent, createLogger } from '@meterline/core';
import type { Kafka, Message } from 'kafkajs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { DedupStore } from '../src/dedup.ts';
import { Ingestor, statusOf, UnavailableError, type PreparedItem } from '../src/ingest.ts';
import { createGatewayMetrics } from '../src/metrics.ts';
import { ProduceQueue } from '../src/produce-queue.ts';
import type { ValidEvent } from '../src/validation.ts';

class FakeRedisDedup {
  now = 0;
  private store = new Map<string, { value: string; expires: number }>();
  private n = 0;
  constructor(
    private claimTtl: number,
    private window: number,
  ) {}
  private get(k: string) {
    const e = this.store.get(k);
    return e && e.expires > this.now ? e.value : null;
  }
  newToken() {
    return `pending:${++this.n}`;
  }
  async claim(org: string, ids: readonly string[], token: string) {
    return ids.map((id) => {
      const k = `${org}/${id}`;
      const old = this.get(k);
      if (old === null) {
        this.store.set(k, { value: token, expires: this.now + this.claimTtl });
        return 'claimed' as const;
      }
      return old === 'done' ? ('duplicate' as const) : ('in_flight' as const);
    });
  }
  async commit(org: string, ids: readonly string[]) {
    for (const id of ids) this.store.set(`${org}/${id}`, { value: 'done', expires: this.now + this.window });
  }
  async release(org: string, ids: readonly string[], token: string) {
    let n = 0;
    for (const id of ids)
      if (this.get(`${org}/${id}`) === token) {
        this.store.delete(`${org}/${id}`);
        n++;
      }
    return n;
  }
}

class FakeProducer {
  sent: Message[][] = [];
  fail = false;
  hang = false;
  async connect() {}
  async disconnect() {}
  async send({ messages }: { messages: Message[] }) {
    if (this.hang) return new Promise(() => undefined);
    await new Promise((r) => setTimeout(r, 2));
    if (this.fail) throw new Error('broker down');
    this.sent.push(messages);
    return [];
  }
}

function setup(opts: { maxInFlight?: number; timeoutMs?: number } = {}) {
  const producer = new FakeProducer();
  const kafka = { producer: () => producer } as unknown as Kafka;
  const dedup = new FakeRedisDedup(15_000, 35 * 86_400_000);
  const metrics = createGatewayMetrics(new Registry());
  const queue = new ProduceQueue(kafka, { topic: 't', timeoutMs: opts.timeoutMs ?? 1000, idempotent: true });
  const ingestor = new Ingestor({
    dedup: dedup as unknown as DedupStore,
    queue,
    metrics,
    logger: createLogger('test', 'silent'),
    maxInFlightEvents: opts.maxInFlight ?? 1000,
  });
  const produced = () => producer.sent.flat().map((m) => decodeEvent(m.value as Buffer));
  return { producer, dedup, ingestor, queue, produced };
}

function ev(id: string | null, customer = 'c1'): PreparedItem {
  const event: ValidEvent = {
    eventName: 'api_call',
    customerId: customer,
    idempotencyId: id ?? crypto.randomUUID(),
    idempotencyIdGenerated: id === null,
    timeCreatedMs: 1000,
    properties: { n: 1 },
  };
  return { event };
}

describe('Ingestor', () => {
  it('produces claimed events with the organization from the caller, and answers per event', async () => {
    const { ingestor, produced } = setup();
    const s = await ingestor.ingest(
      'org_a',
      'api',
      [ev('a'), { result: { status: 'rejected', errors: [{ field: 'customer_id', reason: 'required', message: 'm' }] } }, ev('b')],
      5,
    );
    expect(s.results.map((r) => r.status)).toEqual(['accepted', 'rejected', 'accepted']);
    expect(statusOf(s)).toBe(207);
    expect(produced().map((e) => [e.organizationId, e.idempotencyId, e.receivedAtMs, e.source])).toEqual([
      ['org_a', 'a', 5, 'api'],
      ['org_a', 'b', 5, 'api'],
    ]);
  });

  it('deduplicates within a request and across requests, per organization', async () => {
    const { ingestor, produced } = setup();
    const s1 = await ingestor.ingest('org_a', 'api', [ev('a'), ev('a'), ev('b')], 1);
    expect(s1.results).toMatchObject([{ status: 'accepted' }, { status: 'duplicate', duplicate_of: 0 }, { status: 'accepted' }]);
    expect(statusOf(s1)).toBe(200);
    const s2 = await ingestor.ingest('org_a', 'api', [ev('a'), ev('c')], 1);
    expect(s2.results.map((r) => r.status)).toEqual(['duplicate', 'accepted']);
    const s3 = await ingestor.ingest('org_b', 'api', [ev('a')], 1);
    expect(s3.results.map((r) => r.status)).toEqual(['accepted']);
    expect(produced().map((e) => `${e.organizationId}/${e.idempotencyId}`)).toEqual(['org_a/a', 'org_a/b', 'org_a/c', 'org_b/a']);
  });

  it('events without an id are never duplicates', async () => {
    const { ingestor, produced } = setup();
    const s = await ingestor.ingest('org_a', 'api', [ev(null), ev(null)], 1);
    expect(s.accepted).toBe(2);
    expect(produced()).toHaveLength(2);
  });

  it('on Kafka failure: 503 for the request and the claims are released, so the retry is accepted', async () => {
    const { ingestor, producer, produced } = setup();
    producer.fail = true;
    await expect(ingestor.ingest('org_a', 'api', [ev('a'), ev('b')], 1)).rejects.toMatchObject({ cause_: 'kafka' });
    producer.fail = false;
    // the producer is recreated after a failure; the fast-fail window is 1 s after a *connect* failure only
    const s = await ingestor.ingest('org_a', 'api', [ev('a'), ev('b')], 1);
    expect(s.results.map((r) => r.status)).toEqual(['accepted', 'accepted']);
    expect(produced().map((e) => e.idempotencyId)).toEqual(['a', 'b']);
  });

  it('a Kafka send that never returns becomes 503 within the produce timeout', async () => {
    const { ingestor, producer } = setup({ timeoutMs: 150 });
    producer.hang = true;
    const t0 = Date.now();
    await expect(ingestor.ingest('org_a', 'api', [ev('a')], 1)).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('a gateway that died between claim and ack: the retry gets "retry" (never "duplicate") until the claim expires, then is accepted once', async () => {
    const { ingestor, dedup, produced } = setup();
    // the dead gateway's claim, never acknowledged nor released
    await dedup.claim('org_a', ['a'], 'pending:dead-gateway');
    const s1 = await ingestor.ingest('org_a', 'api', [ev('a'), ev('b')], 1);
    expect(s1.results).toMatchObject([{ status: 'retry', reason: 'in_flight' }, { status: 'accepted' }]);
    expect(statusOf(s1)).toBe(503);
    dedup.now += 15_001; // the claim TTL passes
    const s2 = await ingestor.ingest('org_a', 'api', [ev('a'), ev('b')], 1);
    expect(s2.results.map((r) => r.status)).toEqual(['accepted', 'duplicate']);
    expect(statusOf(s2)).toBe(200);
    expect(produced().map((e) => e.idempotencyId)).toEqual(['b', 'a']);
  });

  it('refuses work beyond maxInFlightEvents with 503 (bounded memory)', async () => {
    const { ingestor, producer } = setup({ maxInFlight: 3, timeoutMs: 300 });
    producer.hang = true;
    const first = ingestor.ingest('org_a', 'api', [ev('a'), ev('b')], 1);
    await expect(ingestor.ingest('org_a', 'api', [ev('c'), ev('d')], 1)).rejects.toMatchObject({ cause_: 'overloaded' });
    expect(ingestor.inFlightEvents).toBe(2);
    await expect(first).rejects.toMatchObject({ cause_: 'kafka' });
    expect(ingestor.inFlightEvents).toBe(0);
  });
});

describe('ProduceQueue', () => {
  it('sends a lone request at once and coalesces requests that arrive during a send', async () => {
    const { queue, producer } = setup();
    const msg = (i: number): Message => ({ key: 'k', value: Buffer.from([i]) });
    await queue.send([msg(0)]);
    expect(producer.sent).toHaveLength(1);
    await Promise.all(Array.from({ length: 50 }, (_, i) => queue.send([msg(i), msg(i)])));
    // the 50 requests arriving while a send is in flight ride together in (at most) two sends
    expect(producer.sent.length).toBeLessThanOrEqual(3);
    expect(producer.sent.flat()).toHaveLength(101);
    expect(Math.max(...producer.sent.map((s) => s.length))).toBeGreaterThanOrEqual(98);
  });
});
