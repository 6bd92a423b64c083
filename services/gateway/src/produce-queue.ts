// Batches many requests' events into few Kafka sends over a small pool of idempotent producers. kafkajs
// has no linger: one `send` is one produce request. A free producer sends what is queued at once; while
// every producer has a send in flight, arriving requests accumulate and go as the next batch (capped by
// count and bytes). A lone request is never delayed; under load, batches grow by themselves to what
// arrives during one round trip.
//
// Why a pool: kafkajs' idempotent producer holds a lock per broker around each produce request (its
// sequence numbers are assigned under it), so one producer never has more than one request in flight per
// broker, whatever maxInFlightRequests says (the broker itself would accept 5). Each producer of the pool
// has its own producer id and sequence numbers, so each stays idempotent on its own; a request's events
// always go in ONE send of ONE producer (their order within a partition is kept), and a client's next
// request is sent only after this one was acknowledged, so causally ordered requests stay ordered.
// Concurrent requests never had an order.
//
// Every enqueued item settles within `timeoutMs` of being enqueued (Kafka ack → resolve; failure or
// timeout → reject), so the HTTP layer can answer 503 promptly when Kafka is down. After any failure that
// producer is discarded and a fresh one (new producer id) is connected on its next send, which keeps the
// idempotent producer's sequence numbers consistent.
import type { Kafka, Message, Producer } from 'kafkajs';
import { withTimeout, type Logger } from '@meterline/core';
import { CachedDefaultPartitioner } from './partitioner.ts';

export class KafkaUnavailableError extends Error {}

interface Item {
  messages: Message[];
  bytes: number;
  enqueuedAt: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface ProduceQueueOptions {
  topic: string;
  timeoutMs: number;
  idempotent: boolean;
  /** Producers (each with one produce request in flight); default 1. */
  producers?: number;
  /** While a send is in flight, another producer starts one only once this many messages wait (default 1,000). */
  parallelSendMinMessages?: number;
  maxBatchMessages?: number;
  maxBatchBytes?: number;
  logger?: Logger;
  onSend?: (info: { seconds: number; messages: number; ok: boolean }) => void;
}

/** One producer of the pool: connected lazily, replaced after a failure, at most one send at a time. */
interface Slot {
  producer: Producer | null;
  connecting: Promise<Producer> | null;
  busy: boolean;
}

export class ProduceQueue {
  private readonly slots: Slot[];
  private lastConnectFailure = 0;
  private queue: Item[] = [];
  private sending = 0;
  private closed = false;
  private idle: Array<() => void> = [];
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;
  private readonly parallelSendMinMessages: number;
  /** Messages waiting in `queue`. */
  private queuedMessages = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: ProduceQueueOptions,
  ) {
    this.maxBatchMessages = opts.maxBatchMessages ?? 10_000;
    // Kafka's default message.max.bytes is ~1 MiB per record batch (per partition); stay below it.
    this.maxBatchBytes = opts.maxBatchBytes ?? 900_000;
    this.parallelSendMinMessages = Math.min(this.maxBatchMessages, opts.parallelSendMinMessages ?? 1_000);
    this.slots = Array.from({ length: Math.max(1, opts.producers ?? 1) }, () => ({ producer: null, connecting: null, busy: false }));
  }

  /** Resolves when Kafka acknowledged every message (acks = all); rejects with KafkaUnavailableError. */
  send(messages: Message[]): Promise<void> {
    if (this.closed) return Promise.reject(new KafkaUnavailableError('gateway is shutting down'));
    if (messages.length === 0) return Promise.resolve();
    let bytes = 0;
    for (const m of messages) bytes += (m.value as Buffer).length + (typeof m.key === 'string' ? m.key.length : 0) + 32;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ messages, bytes, enqueuedAt: Date.now(), resolve, reject });
      this.queuedMessages += messages.length;
      this.pump();
    });
  }

  /** Connects the first producer now (startup, readiness); errors are thrown. The others connect on first use. */
  async connect(): Promise<void> {
    await withTimeout(this.getProducer(this.slots[0]!), this.opts.timeoutMs, { what: 'kafka connect', error: unavailable });
  }

  private getProducer(slot: Slot): Promise<Producer> {
    if (slot.producer) return Promise.resolve(slot.producer);
    if (slot.connecting) return slot.connecting;
    const producer = this.kafka.producer({
      idempotent: this.opts.idempotent,
      maxInFlightRequests: this.opts.idempotent ? 1 : 5,
      allowAutoTopicCreation: false,
      createPartitioner: CachedDefaultPartitioner,
      // Few, short retries: a dead broker must become a 503 within the produce timeout, not minutes.
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    slot.connecting = producer.connect().then(
      () => {
        slot.connecting = null;
        if (this.closed) {
          void producer.disconnect().catch(() => undefined);
          throw new KafkaUnavailableError('closed');
        }
        slot.producer = producer;
        return producer;
      },
      (err: Error) => {
        slot.connecting = null;
        this.lastConnectFailure = Date.now();
        void producer.disconnect().catch(() => undefined);
        throw new KafkaUnavailableError(`kafka connect failed: ${err.message}`);
      },
    );
    return slot.connecting;
  }

  private discardProducer(slot: Slot): void {
    const p = slot.producer;
    slot.producer = null;
    if (p) void p.disconnect().catch(() => undefined);
  }

  private pump(): void {
    for (;;) {
      const slot = this.slots.find((s) => !s.busy);
      if (!slot) break;
      // A second (third…) send starts only for a full-size batch: small requests are cheaper coalesced
      // into the running send's successor (one produce request, one record batch per partition, for the
      // broker as for us) than spread over producers; big ones gain from the parallel round trip.
      if (this.sending > 0 && this.queuedMessages < this.parallelSendMinMessages) break;
      if (!this.startSend(slot)) break;
    }
    this.notifyIdle();
  }

  /** Takes the next batch off the queue and sends it on `slot`; false when there was nothing to send. */
  private startSend(slot: Slot): boolean {
    const now = Date.now();
    const batch: Item[] = [];
    let count = 0;
    let bytes = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (now - next.enqueuedAt >= this.opts.timeoutMs) {
        this.queue.shift();
        this.queuedMessages -= next.messages.length;
        next.reject(new KafkaUnavailableError('timed out waiting for Kafka'));
        continue;
      }
      if (batch.length > 0 && (count + next.messages.length > this.maxBatchMessages || bytes + next.bytes > this.maxBatchBytes)) break;
      this.queue.shift();
      this.queuedMessages -= next.messages.length;
      batch.push(next);
      count += next.messages.length;
      bytes += next.bytes;
    }
    if (batch.length === 0) return false;
    slot.busy = true;
    this.sending++;
    // The attempt must finish before the oldest item's deadline.
    const budget = Math.max(1, Math.min(...batch.map((i) => i.enqueuedAt + this.opts.timeoutMs - now)));
    const started = process.hrtime.bigint();
    const messages = batch.length === 1 ? batch[0]!.messages : batch.flatMap((i) => i.messages);
    const attempt = (async () => {
      if (!slot.producer && Date.now() - this.lastConnectFailure < 1_000) {
        throw new KafkaUnavailableError('kafka unavailable (recent connect failure)');
      }
      const producer = await this.getProducer(slot);
      await producer.send({ topic: this.opts.topic, messages, acks: -1, timeout: Math.min(budget, 30_000) });
    })();
    withTimeout(attempt, budget, { what: 'kafka produce', error: unavailable })
      .then(
        () => {
          this.opts.onSend?.({ seconds: Number(process.hrtime.bigint() - started) / 1e9, messages: count, ok: true });
          for (const i of batch) i.resolve();
        },
        (err: Error) => {
          this.opts.onSend?.({ seconds: Number(process.hrtime.bigint() - started) / 1e9, messages: count, ok: false });
          this.opts.logger?.warn({ err: err.message, messages: count }, 'kafka produce failed');
          this.discardProducer(slot);
          attempt.catch(() => undefined);
          const e = err instanceof KafkaUnavailableError ? err : new KafkaUnavailableError(err.message);
          for (const i of batch) i.reject(e);
        },
      )
      .finally(() => {
        slot.busy = false;
        this.sending--;
        this.pump();
      });
    return true;
  }

  private notifyIdle(): void {
    if (this.sending > 0 || this.queue.length > 0) return;
    for (const f of this.idle.splice(0)) f();
  }

  /** Waits until queued sends settle, then disconnects every producer. */
  async close(): Promise<void> {
    if (this.sending > 0 || this.queue.length > 0) await new Promise<void>((r) => this.idle.push(r));
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const p = slot.producer ?? (slot.connecting ? await slot.connecting.catch(() => null) : null);
        slot.producer = null;
        if (p) await p.disconnect().catch(() => undefined);
      }),
    );
  }
}

const unavailable = (message: string) => new KafkaUnavailableError(message);
