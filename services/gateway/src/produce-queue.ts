// Batches many requests' events into few Kafka sends. kafkajs has no linger: one `send` is one produce
// request. The queue sends at once when idle; while a send is in flight it accumulates what arrives and
// sends it as the next batch (capped by count and bytes). A lone request is never delayed; under load,
// batches grow by themselves to what arrives during one round trip.
//
// Every enqueued item settles within `timeoutMs` of being enqueued (Kafka ack → resolve; failure or
// timeout → reject), so the HTTP layer can answer 503 promptly when Kafka is down. After any failure the
// producer is discarded and a fresh one (new producer id) is connected on the next send, which keeps the
// idempotent producer's sequence numbers consistent.
import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { withTimeout, type Logger } from '@meterline/core';

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
  maxBatchMessages?: number;
  maxBatchBytes?: number;
  logger?: Logger;
  onSend?: (info: { seconds: number; messages: number; ok: boolean }) => void;
}

export class ProduceQueue {
  private producer: Producer | null = null;
  private connecting: Promise<Producer> | null = null;
  private lastConnectFailure = 0;
  private queue: Item[] = [];
  private sending = false;
  private closed = false;
  private idle: Array<() => void> = [];
  private readonly maxBatchMessages: number;
  private readonly maxBatchBytes: number;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: ProduceQueueOptions,
  ) {
    this.maxBatchMessages = opts.maxBatchMessages ?? 10_000;
    // Kafka's default message.max.bytes is ~1 MiB per record batch (per partition); stay below it.
    this.maxBatchBytes = opts.maxBatchBytes ?? 900_000;
  }

  /** Resolves when Kafka acknowledged every message (acks = all); rejects with KafkaUnavailableError. */
  send(messages: Message[]): Promise<void> {
    if (this.closed) return Promise.reject(new KafkaUnavailableError('gateway is shutting down'));
    if (messages.length === 0) return Promise.resolve();
    let bytes = 0;
    for (const m of messages) bytes += (m.value as Buffer).length + (typeof m.key === 'string' ? m.key.length : 0) + 32;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ messages, bytes, enqueuedAt: Date.now(), resolve, reject });
      this.pump();
    });
  }

  /** Connects the producer now (startup, readiness); errors are thrown. */
  async connect(): Promise<void> {
    await withTimeout(this.getProducer(), this.opts.timeoutMs, { what: 'kafka connect', error: unavailable });
  }

  private getProducer(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    if (this.connecting) return this.connecting;
    const producer = this.kafka.producer({
      idempotent: this.opts.idempotent,
      maxInFlightRequests: this.opts.idempotent ? 1 : 5,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      // Few, short retries: a dead broker must become a 503 within the produce timeout, not minutes.
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    this.connecting = producer.connect().then(
      () => {
        this.connecting = null;
        if (this.closed) {
          void producer.disconnect().catch(() => undefined);
          throw new KafkaUnavailableError('closed');
        }
        this.producer = producer;
        return producer;
      },
      (err: Error) => {
        this.connecting = null;
        this.lastConnectFailure = Date.now();
        void producer.disconnect().catch(() => undefined);
        throw new KafkaUnavailableError(`kafka connect failed: ${err.message}`);
      },
    );
    return this.connecting;
  }

  private discardProducer(): void {
    const p = this.producer;
    this.producer = null;
    if (p) void p.disconnect().catch(() => undefined);
  }

  private pump(): void {
    if (this.sending) return;
    if (this.queue.length === 0) {
      this.notifyIdle();
      return;
    }
    const now = Date.now();
    const batch: Item[] = [];
    let count = 0;
    let bytes = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (now - next.enqueuedAt >= this.opts.timeoutMs) {
        this.queue.shift();
        next.reject(new KafkaUnavailableError('timed out waiting for Kafka'));
        continue;
      }
      if (batch.length > 0 && (count + next.messages.length > this.maxBatchMessages || bytes + next.bytes > this.maxBatchBytes)) break;
      this.queue.shift();
      batch.push(next);
      count += next.messages.length;
      bytes += next.bytes;
    }
    if (batch.length === 0) {
      this.notifyIdle();
      return;
    }
    this.sending = true;
    // The attempt must finish before the oldest item's deadline.
    const budget = Math.max(1, Math.min(...batch.map((i) => i.enqueuedAt + this.opts.timeoutMs - now)));
    const started = process.hrtime.bigint();
    const messages = batch.length === 1 ? batch[0]!.messages : batch.flatMap((i) => i.messages);
    const attempt = (async () => {
      if (!this.producer && Date.now() - this.lastConnectFailure < 1_000) {
        throw new KafkaUnavailableError('kafka unavailable (recent connect failure)');
      }
      const producer = await this.getProducer();
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
          this.discardProducer();
          attempt.catch(() => undefined);
          const e = err instanceof KafkaUnavailableError ? err : new KafkaUnavailableError(err.message);
          for (const i of batch) i.reject(e);
        },
      )
      .finally(() => {
        this.sending = false;
        this.pump();
      });
  }

  private notifyIdle(): void {
    if (this.sending || this.queue.length > 0) return;
    for (const f of this.idle.splice(0)) f();
  }

  /** Waits until queued sends settle, then disconnects. */
  async close(): Promise<void> {
    if (this.sending || this.queue.length > 0) await new Promise<void>((r) => this.idle.push(r));
    this.closed = true;
    const p = this.producer ?? (this.connecting ? await this.connecting.catch(() => null) : null);
    this.producer = null;
    if (p) await p.disconnect().catch(() => undefined);
  }
}

const unavailable = (message: string) => new KafkaUnavailableError(message);
