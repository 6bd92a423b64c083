// The consumer loop: kafkajs consumer group, eachBatch, autoCommit off. Per partition, in offset order,
// per chunk: progress read -> decode/validate -> dedup claims -> dead letters -> one raw INSERT ->
// rollup of the touched windows -> commit (offset of the last record + 1). Every step retries with
// backoff while the partition is still ours; nothing is committed before ClickHouse has it.
import type { ClickHouseClient, Config, Logger, Redis, UsageEvent } from '@meterline/core';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { MetricCatalog } from './catalog.ts';
import { claimAll } from './claims.ts';
import { decodeRecord } from './decoder.ts';
import { publishDeadLetters, storeDeadLetters, type DeadLetter } from './dead-letters.ts';
import { insertRaw, sinkProgress, type RawRow } from './raw-sink.ts';
import { Aborted, retryUntilDone } from './retry.ts';
import { recomputeWindows } from './rollup.ts';
import type { AggregatorMetrics } from './telemetry.ts';

export interface ConsumerDeps {
  config: Config;
  kafka: Kafka;
  producer: Producer;
  ch: ClickHouseClient;
  redis: Redis;
  catalog: MetricCatalog;
  logger: Logger;
  metrics: AggregatorMetrics;
}

const STOP_GRACE_MS = 15_000;

export class EventConsumer {
  private consumer: Consumer | null = null;
  private stopping = false;
  private restarting: Promise<void> | null = null;
  private stopDeadline = Infinity;

  constructor(private readonly d: ConsumerDeps) {}

  async start(): Promise<void> {
    const { config } = this.d;
    const consumer = this.d.kafka.consumer({
      groupId: config.aggregator.groupId,
      sessionTimeout: config.aggregator.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(config.aggregator.sessionTimeoutMs / 3)),
      rebalanceTimeout: 60_000,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: config.aggregator.maxBytesPerPartition,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      this.d.logger.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
      // kafkajs restarts by itself when restart is true; otherwise start a fresh consumer
      if (!e.payload.restart && !this.stopping) this.scheduleRestart();
    });
    await retryUntilDone(async () => {
      await consumer.connect();
      await consumer.subscribe({ topic: config.kafka.eventsTopic, fromBeginning: true });
    }, { active: () => !this.stopping, maxBackoffMs: config.aggregator.maxRetryBackoffMs, onRetry: (err) => this.d.logger.warn({ err }, 'kafka connect failed, retrying') });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, Math.min(config.kafka.eventsPartitions, 4)),
      eachBatch: (payload) => this.eachBatch(consumer, payload),
    });
  }

  private scheduleRestart(): void {
    if (this.restarting) return;
    this.restarting = (async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      const old = this.consumer;
      await old?.disconnect().catch(() => undefined);
      if (!this.stopping) await this.start().catch((err) => { this.d.logger.error({ err }, 'consumer restart failed'); });
    })().finally(() => { this.restarting = null; if (!this.stopping && !this.consumer) this.scheduleRestart(); });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopDeadline = Date.now() + STOP_GRACE_MS;
    await this.restarting?.catch(() => undefined);
    // stop() lets the running batch finish its chunk (processed, inserted, committed), then leaves the group
    await this.consumer?.stop().catch(() => undefined);
    await this.consumer?.disconnect().catch(() => undefined);
  }

  private async eachBatch(_consumer: Consumer, p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const max = this.d.config.aggregator.maxBatchRecords;
    // A chunk once started is finished (inserted, rolled up, committed) even when stop() was called,
    // within STOP_GRACE_MS; it is abandoned (uncommitted, replayed by the next owner) if the partition
    // was revoked or the grace ran out. New chunks start only while the consumer runs.
    const active = () => !p.isStale() && (!this.stopping || Date.now() < this.stopDeadline);
    try {
      for (let i = 0; i < batch.messages.length && !this.stopping && p.isRunning() && !p.isStale(); i += max) {
        const chunk = batch.messages.slice(i, i + max);
        await this.processChunk(batch.topic, batch.partition, chunk, active, p.heartbeat);
        const last = chunk[chunk.length - 1]!.offset;
        const next = (BigInt(last) + 1n).toString();
        // the payload's commit with explicit offsets (consumer.commitOffsets is a no-op once stop() began)
        await retryUntilDone(
          () => p.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] }),
          this.retry('commit', active, p.heartbeat),
        );
        p.resolveOffset(last);
        const hw = BigInt(batch.highWatermark);
        this.d.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(hw > BigInt(next) ? hw - BigInt(next) : 0n));
        await p.heartbeat().catch(() => undefined);
      }
    } catch (err) {
      if (err instanceof Aborted) return; // partition revoked or stopping: the next owner replays from the commit
      throw err;
    }
  }

  private retry(stage: string, active: () => boolean, heartbeat: () => Promise<void>) {
    return {
      active,
      maxBackoffMs: this.d.config.aggregator.maxRetryBackoffMs,
      tick: heartbeat,
      onRetry: (err: unknown, attempt: number, delayMs: number) => {
        this.d.metrics.retries.inc({ stage });
        if (attempt === 1 || attempt % 10 === 0) this.d.logger.warn({ err: (err as Error)?.message ?? err, stage, attempt, delayMs }, 'step failed, retrying');
      },
    };
  }

  private async timed<T>(kind: string, fn: () => Promise<T>): Promise<T> {
    const end = this.d.metrics.insertSeconds.startTimer({ kind });
    try { return await fn(); } finally { end(); }
  }

  async processChunk(topic: string, partition: number, messages: KafkaMessage[], active: () => boolean, heartbeat: () => Promise<void>): Promise<void> {
    const { ch, redis, config, metrics } = this.d;
    if (messages.length === 0) return;
    metrics.batchRecords.observe(messages.length);
    const firstOffset = BigInt(messages[0]!.offset);
    // 1. what the sink already has (a crashed predecessor, a zombie, or a replay may have stored more)
    const progress = await retryUntilDone(() => sinkProgress(ch, topic, partition, firstOffset), this.retry('progress', active, heartbeat));

    // 2. decode everything (also already-stored records: their metrics may still need a rollup)
    const pairs = new Map<string, [string, string]>();
    const candidates: { event: UsageEvent; offset: string }[] = [];
    const dead: DeadLetter[] = [];
    for (const msg of messages) {
      const decoded = decodeRecord(msg.value);
      if (decoded.ok) pairs.set(`${decoded.event.organizationId}\0${decoded.event.eventName}`, [decoded.event.organizationId, decoded.event.eventName]);
      if (BigInt(msg.offset) <= progress) continue;
      if (decoded.ok) candidates.push({ event: decoded.event, offset: msg.offset });
      else dead.push({ topic, partition, offset: msg.offset, key: msg.key ?? null, value: msg.value ?? null, reason: decoded.reason, error: decoded.error, ...(decoded.event ? { event: decoded.event } : {}) });
    }

    // 3. duplicates of an idempotency id that slipped past the gateway
    const decisions = await retryUntilDone(
      () => claimAll(redis, candidates.map((c) => ({ organizationId: c.event.organizationId, idempotencyId: c.event.idempotencyId, partition, offset: c.offset })), config.aggregator.dedupWindowMs),
      this.retry('claims', active, heartbeat),
    );
    const rows: RawRow[] = [];
    candidates.forEach((c, i) => { if (decisions[i]) rows.push({ event: c.event, topic, partition, offset: c.offset }); else metrics.duplicates.inc(); });

    // 4. dead letters (topic first, then the table for the debugger)
    if (dead.length) {
      await retryUntilDone(() => publishDeadLetters(this.d.producer, config.kafka.deadLetterTopic, dead), this.retry('dead_letter_topic', active, heartbeat));
      await retryUntilDone(() => this.timed('dead_letters', () => storeDeadLetters(ch, dead)), this.retry('dead_letter_table', active, heartbeat));
      for (const d of dead) metrics.deadLetters.inc({ reason: d.reason, attributed: d.event?.organizationId ? 'yes' : 'no' });
    }

    // 5. raw events, one INSERT, offset order
    if (rows.length) {
      await retryUntilDone(() => this.timed('raw', () => insertRaw(ch, rows)), this.retry('raw_insert', active, heartbeat));
      metrics.events.inc(rows.length);
    }

    // 6. rollups of every window touched, up to everything the sink has for this partition
    const lastStored = rows.length ? BigInt(rows[rows.length - 1]!.offset) : -1n;
    const upTo = progress > lastStored ? progress : lastStored;
    // the metric set is read after the raw insert: a version missing here was published after it,
    // so its backfill (which starts later) reads these events
    const active_ = [...pairs.values()].flatMap(([org, name]) => this.d.catalog.forEvent(org, name));
    if (upTo >= firstOffset && active_.length > 0) {
      await retryUntilDone(
        () => this.timed('rollup', () => recomputeWindows(ch, { topic, partition, fromOffset: firstOffset, toOffset: upTo, windowSize: config.aggregator.windowSize, metrics: active_ })),
        this.retry('rollup', active, heartbeat),
      );
    }
    const now = Date.now();
    for (const r of rows) metrics.freshness.observe(Math.max(0, now - r.event.receivedAtMs) / 1000);
  }
}
