// The consumer loop: kafkajs consumer group, eachBatch, autoCommit off. Per partition, in offset order,
// per chunk: progress read -> decode/validate -> dedup claims -> dead letters -> one raw INSERT ->
// rollup of the touched windows -> commit (offset of the last record + 1). Nothing is committed before
// ClickHouse has it. No record can block a partition, and no partition can block the others:
//  - a transient failure is retried inline for AGGREGATOR_INLINE_RETRY_MS, then only that partition is
//    paused and replayed from its last resolved offset after a backoff (kafkajs fetches again only when
//    every batch of a fetch has returned, so a long inline retry would stall all partitions);
//  - a permanent failure of the raw INSERT (ClickHouse refuses the data) is bisected down to the
//    offending records, which are dead-lettered with ClickHouse's error; the rest is stored;
//  - a metric whose rollup SQL ClickHouse refuses is marked invalid and skipped (metric-health.ts).
import type { ClickHouseClient, Config, Logger, Redis, UsageEvent } from '@meterline/core';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { MetricCatalog } from './catalog.ts';
import { claimAll } from './claims.ts';
import { ChunkTicket, StepCoalescer } from './coalesce.ts';
import { decodeRecord } from './decoder.ts';
import { publishDeadLetters, storeDeadLetters, type DeadLetter } from './dead-letters.ts';
import { errorSummary, isPermanentDataError, isPermanentQueryError } from './failures.ts';
import { insertIsolating } from './isolate.ts';
import type { LagMonitor } from './lag.ts';
import type { MetricHealth } from './metric-health.ts';
import { insertRaw, sinkProgress, sinkProgressMany, type ProgressQuery, type RawRow } from './raw-sink.ts';
import { Aborted, Deferred, retryUntilDone, type RetryOptions } from './retry.ts';
import { recomputeWindows, recomputeWindowsTogether, type WindowRange } from './rollup.ts';
import type { AggregatorMetrics } from './telemetry.ts';
import { WatermarkPublisher } from './watermarks.ts';

export interface ConsumerDeps {
  config: Config;
  kafka: Kafka;
  producer: Producer;
  ch: ClickHouseClient;
  redis: Redis;
  catalog: MetricCatalog;
  logger: Logger;
  metrics: AggregatorMetrics;
  health: MetricHealth;
  lag?: LagMonitor;
}

const STOP_GRACE_MS = 15_000;
/** First backoff of a paused partition; doubles up to AGGREGATOR_MAX_RETRY_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 250;
/**
 * Longest a chunk waits at a shared step for the other chunks in progress (coalesce.ts). Chunks of one
 * fetch arrive within a few ms of each other; the wait is over as soon as all have arrived.
 */
const STEP_LINGER_MS = 25;

type Step = RetryOptions;
type RollupRange = WindowRange & { metrics: ReturnType<MetricCatalog['forEvent']> };

/** The ClickHouse statements concurrent chunks share (coalesce.ts). */
interface SharedSteps {
  progress: StepCoalescer<ProgressQuery, bigint>;
  raw: StepCoalescer<RawRow[], true>;
  rollup: StepCoalescer<RollupRange, true>;
}

export class EventConsumer {
  private consumer: Consumer | null = null;
  private stopping = false;
  private restarting: Promise<void> | null = null;
  private stopDeadline = Infinity;
  /** Consecutive deferrals per partition (backoff exponent) and pending resume timers. */
  private readonly backoffs = new Map<number, number>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  private readonly watermarks: WatermarkPublisher;
  private readonly shared: SharedSteps;

  constructor(private readonly d: ConsumerDeps) {
    this.watermarks = new WatermarkPublisher(d.redis, d.logger, d.metrics.watermarkFailures);
    const onFlush = ({ step, chunks, ok, err }: { step: string; chunks: number; ok: boolean; err?: unknown }) => {
      d.metrics.sharedStatements.inc({ step, outcome: ok ? 'shared' : 'fallback' });
      d.metrics.sharedChunks.inc({ step }, chunks);
      // each chunk now runs its own statement, with its own retries and isolation
      if (!ok) d.logger.info({ step, chunks, err: errorSummary(err) }, 'shared statement failed, chunks run their own');
    };
    this.shared = {
      progress: new StepCoalescer('progress', (qs) => sinkProgressMany(d.ch, qs), STEP_LINGER_MS, onFlush),
      raw: new StepCoalescer(
        'raw',
        async (parts) => {
          await this.timed('raw', () => insertRaw(d.ch, parts.flat()));
          return parts.map(() => true as const);
        },
        STEP_LINGER_MS,
        onFlush,
      ),
      rollup: new StepCoalescer(
        'rollup',
        async (ranges) => {
          await this.timed('rollup', () => recomputeWindowsTogether(ranges, (sql) => d.ch.command({ query: sql }).then(() => undefined)));
          return ranges.map(() => true as const);
        },
        STEP_LINGER_MS,
        onFlush,
      ),
    };
  }

  async start(): Promise<void> {
    const { config } = this.d;
    const consumer = this.d.kafka.consumer({
      groupId: config.aggregator.groupId,
      sessionTimeout: config.aggregator.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(config.aggregator.sessionTimeoutMs / 3)),
      rebalanceTimeout: 60_000,
      // The broker answers a fetch once minBytes are there or after maxWaitTimeInMs (the linger). At high
      // rates minBytes arrive in milliseconds; at a trickle every fetch gathers up to the linger's worth of
      // events of all partitions, which then share one set of ClickHouse statements (coalesce.ts) instead
      // of one set per event. The linger also bounds how often an idle consumer polls.
      minBytes: config.aggregator.fetchMinBytes,
      maxWaitTimeInMs: config.aggregator.fetchLingerMs,
      maxBytesPerPartition: config.aggregator.maxBytesPerPartition,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      this.d.logger.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
      // kafkajs restarts by itself when restart is true; otherwise start a fresh consumer
      if (!e.payload.restart && !this.stopping) this.scheduleRestart();
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.d.lag?.setOwnedPartitions(e.payload.memberAssignment[config.kafka.eventsTopic] ?? []);
    });
    await retryUntilDone(
      async () => {
        await consumer.connect();
        await consumer.subscribe({ topic: config.kafka.eventsTopic, fromBeginning: true });
      },
      {
        active: () => !this.stopping,
        maxBackoffMs: config.aggregator.maxRetryBackoffMs,
        onRetry: (err) => this.d.logger.warn({ err }, 'kafka connect failed, retrying'),
      },
    );
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // every partition of a fetch at once, so their chunks share statements (coalesce.ts)
      partitionsConsumedConcurrently: Math.max(1, Math.min(config.kafka.eventsPartitions, 16)),
      eachBatch: (payload) => this.eachBatch(consumer, payload),
    });
  }

  private scheduleRestart(): void {
    if (this.restarting) return;
    this.restarting = (async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      const old = this.consumer;
      await old?.disconnect().catch(() => undefined);
      if (!this.stopping)
        await this.start().catch((err) => {
          this.d.logger.error({ err }, 'consumer restart failed');
        });
    })().finally(() => {
      this.restarting = null;
      if (!this.stopping && !this.consumer) this.scheduleRestart();
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopDeadline = Date.now() + STOP_GRACE_MS;
    for (const t of this.resumeTimers) clearTimeout(t);
    this.resumeTimers.clear();
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
    // kafkajs fetches again only when every batch of a fetch has returned: a batch that takes long
    // (a poisoned chunk being isolated) commits what it finished and yields after the budget, so the
    // other partitions' next fetch is not held back; the rest is fetched again from the resolved offset.
    const budgetEnds = Date.now() + this.d.config.aggregator.batchBudgetMs;
    try {
      for (let i = 0; i < batch.messages.length && !this.stopping && p.isRunning() && !p.isStale(); i += max) {
        const chunk = batch.messages.slice(i, i + max);
        const { last, complete } = await this.processChunk(batch.topic, batch.partition, chunk, active, p.heartbeat, budgetEnds);
        const next = (BigInt(last) + 1n).toString();
        // the payload's commit with explicit offsets (consumer.commitOffsets is a no-op once stop() began)
        await retryUntilDone(
          () =>
            p.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] }),
          this.retry('commit', active, p.heartbeat),
        );
        p.resolveOffset(last);
        // billing's checks count their own grants above this offset (watermarks.ts)
        this.watermarks.publish(batch.topic, batch.partition, next);
        this.backoffs.delete(batch.partition);
        await p.heartbeat().catch(() => undefined);
        if (!complete || Date.now() > budgetEnds) return;
      }
    } catch (err) {
      if (err instanceof Aborted) return; // partition revoked or stopping: the next owner replays from the commit
      if (err instanceof Deferred) return this.backOff(p, err);
      throw err;
    }
  }

  /**
   * Pauses the batch's partition and resumes it after an exponential backoff. Its unresolved records
   * are fetched again from the last resolved offset; the other partitions go on meanwhile.
   */
  private backOff(p: EachBatchPayload, err: Deferred): void {
    const { partition, topic } = p.batch;
    const n = (this.backoffs.get(partition) ?? 0) + 1;
    this.backoffs.set(partition, n);
    const delayMs = Math.min(this.d.config.aggregator.maxRetryBackoffMs, FIRST_BACKOFF_MS * 2 ** Math.min(n - 1, 10));
    this.d.metrics.backoffs.inc({ stage: err.stage });
    if (n === 1 || n % 10 === 0)
      this.d.logger.warn(
        { topic, partition, stage: err.stage, err: errorSummary(err.cause), attempt: n, delayMs },
        'partition paused after repeated failures, will replay',
      );
    const resume = p.pause();
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      resume();
    }, delayMs);
    this.resumeTimers.add(timer);
  }

  private retry(stage: string, active: () => boolean, heartbeat: () => Promise<void>, isPermanent?: (err: unknown) => boolean) {
    return {
      active,
      stage,
      isPermanent,
      giveUpAfterMs: this.d.config.aggregator.inlineRetryMs,
      maxBackoffMs: this.d.config.aggregator.maxRetryBackoffMs,
      tick: heartbeat,
      onRetry: (err: unknown, attempt: number, delayMs: number) => {
        this.d.metrics.retries.inc({ stage });
        if (attempt === 1 || attempt % 10 === 0)
          this.d.logger.warn({ err: (err as Error)?.message ?? err, stage, attempt, delayMs }, 'step failed, retrying');
      },
    };
  }

  private async timed<T>(kind: string, fn: () => Promise<T>): Promise<T> {
    const end = this.d.metrics.insertSeconds.startTimer({ kind });
    try {
      return await fn();
    } finally {
      end();
    }
  }

  /**
   * Processes one chunk; returns the offset through which it is done (stored, dead-lettered or a
   * duplicate) — the chunk's last offset, or less when the budget ran out while isolating refused rows.
   */
  async processChunk(
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    active: () => boolean,
    heartbeat: () => Promise<void>,
    budgetEnds = Infinity,
  ): Promise<{ last: string; complete: boolean }> {
    this.d.metrics.batchRecords.observe(messages.length);
    const firstOffset = BigInt(messages[0]!.offset);
    // the three ClickHouse statements are shared with the chunks of other partitions in progress (coalesce.ts)
    const ticket = new ChunkTicket([this.shared.progress, this.shared.raw, this.shared.rollup]);
    try {
      return await this.processChunkSteps(topic, partition, messages, firstOffset, ticket, active, heartbeat, budgetEnds);
    } finally {
      ticket.release();
    }
  }

  private async processChunkSteps(
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    firstOffset: bigint,
    ticket: ChunkTicket,
    active: () => boolean,
    heartbeat: () => Promise<void>,
    budgetEnds: number,
  ): Promise<{ last: string; complete: boolean }> {
    const { redis, config, metrics } = this.d;
    const chunkLast = messages[messages.length - 1]!.offset;
    // 1. what the sink already has (a crashed predecessor, a zombie, or a replay may have stored more)
    const progress =
      (await ticket.submit(this.shared.progress, { topic, partition, fromOffset: firstOffset })) ??
      (await retryUntilDone(() => sinkProgress(this.d.ch, topic, partition, firstOffset), this.retry('progress', active, heartbeat)));

    // 2. decode everything (also already-stored records: their metrics may still need a rollup)
    const pairs = new Map<string, [string, string]>();
    const candidates: { event: UsageEvent; msg: KafkaMessage }[] = [];
    const dead: DeadLetter[] = [];
    for (const msg of messages) {
      const decoded = decodeRecord(msg.value);
      if (decoded.ok)
        pairs.set(`${decoded.event.organizationId}\0${decoded.event.eventName}`, [decoded.event.organizationId, decoded.event.eventName]);
      if (BigInt(msg.offset) <= progress) continue;
      if (decoded.ok) candidates.push({ event: decoded.event, msg });
      else
        dead.push({
          topic,
          partition,
          offset: msg.offset,
          key: msg.key ?? null,
          value: msg.value ?? null,
          reason: decoded.reason,
          error: decoded.error,
          ...(decoded.event ? { event: decoded.event } : {}),
        });
    }

    // 3. duplicates of an idempotency id that slipped past the gateway
    const decisions = await retryUntilDone(
      () =>
        claimAll(
          redis,
          candidates.map((c) => ({
            organizationId: c.event.organizationId,
            idempotencyId: c.event.idempotencyId,
            partition,
            offset: c.msg.offset,
          })),
          config.aggregator.dedupWindowMs,
        ),
      this.retry('claims', active, heartbeat),
    );
    const rows: (RawRow & { msg: KafkaMessage })[] = [];
    candidates.forEach((c, i) => {
      if (decisions[i]) rows.push({ event: c.event, topic, partition, offset: c.msg.offset, msg: c.msg });
      else metrics.duplicates.inc();
    });

    // 4. dead letters (topic first, then the table for the debugger)
    await this.deadLetter(dead, this.retry('dead_letter', active, heartbeat));

    // 5. raw events, one INSERT in offset order; records ClickHouse refuses are isolated and dead-lettered
    if (rows.length === 0) ticket.skip(this.shared.raw);
    const sharedRaw = rows.length > 0 && active() ? await ticket.submit(this.shared.raw, rows) : null;
    const { stored, cutAt } = sharedRaw ? { stored: rows, cutAt: null } : await this.storeRaw(rows, active, heartbeat, budgetEnds);
    metrics.events.inc(stored.length);

    // 6. rollups of every window touched, up to everything the sink has for this partition
    const lastStored = stored.length ? BigInt(stored[stored.length - 1]!.offset) : -1n;
    const upTo = progress > lastStored ? progress : lastStored;
    // the metric set is read after the raw insert: a version missing here was published after it,
    // so its backfill (which starts later) reads these events
    const active_ = this.d.health.valid([...pairs.values()].flatMap(([org, name]) => this.d.catalog.forEvent(org, name)));
    if (upTo >= firstOffset && active_.length > 0) {
      const range: RollupRange = {
        topic,
        partition,
        fromOffset: firstOffset,
        toOffset: upTo,
        windowSize: config.aggregator.windowSize,
        metrics: active_,
      };
      const shared = active() ? await ticket.submit(this.shared.rollup, range) : null;
      const step = this.retry('rollup', active, heartbeat, isPermanentQueryError);
      if (!shared)
        await this.timed('rollup', () =>
          recomputeWindows(
            range,
            (sql) => retryUntilDone(() => this.d.ch.command({ query: sql }).then(() => undefined), step),
            isPermanentQueryError,
            (m, err) => retryUntilDone(() => this.d.health.markInvalid(m, err), this.retry('metric_invalid', active, heartbeat)),
          ),
        );
    } else ticket.skip(this.shared.rollup);
    const now = Date.now();
    for (const r of stored) metrics.freshness.observe(Math.max(0, now - r.event.receivedAtMs) / 1000);
    // cut: everything before the first row not yet tried is done (decoder dead letters and duplicates
    // after it are decided again, identically, when the rest is fetched again)
    return cutAt === null ? { last: chunkLast, complete: true } : { last: (BigInt(cutAt) - 1n).toString(), complete: false };
  }

  /** Dead letters: the topic first (the durable record), then the debugger's table. */
  private async deadLetter(dead: DeadLetter[], step: Step): Promise<void> {
    if (dead.length === 0) return;
    const { producer, config, ch, metrics, logger } = this.d;
    await retryUntilDone(() => publishDeadLetters(producer, config.kafka.deadLetterTopic, dead), { ...step, stage: 'dead_letter_topic' });
    try {
      await retryUntilDone(() => this.timed('dead_letters', () => storeDeadLetters(ch, dead)), {
        ...step,
        stage: 'dead_letter_table',
        isPermanent: isPermanentDataError,
      });
    } catch (err) {
      if (!isPermanentDataError(err)) throw err;
      // the topic already holds them; a table row ClickHouse refuses must not block the partition
      logger.error(
        { err: errorSummary(err), offsets: dead.map((d) => d.offset) },
        'dead letters not stored in the dead_letters table (they are on the dead-letter topic)',
      );
    }
    for (const d of dead) metrics.deadLetters.inc({ reason: d.reason, attributed: d.event?.organizationId ? 'yes' : 'no' });
  }

  /** One INSERT of the rows (offset order); rows ClickHouse refuses are isolated and dead-lettered (isolate.ts). */
  private async storeRaw(
    rows: (RawRow & { msg: KafkaMessage })[],
    active: () => boolean,
    heartbeat: () => Promise<void>,
    budgetEnds: number,
  ): Promise<{ stored: RawRow[]; cutAt: string | null }> {
    const step = this.retry('raw_insert', active, heartbeat, isPermanentDataError);
    const { stored, cutAt } = await insertIsolating(
      rows,
      (part) => retryUntilDone(() => this.timed('raw', () => insertRaw(this.d.ch, part)), step),
      (r, err) =>
        this.deadLetter(
          [
            {
              topic: r.topic,
              partition: r.partition,
              offset: r.offset,
              key: r.msg.key ?? null,
              value: r.msg.value ?? null,
              reason: 'clickhouse_rejected',
              error: errorSummary(err),
              event: r.event,
            },
          ],
          step,
        ),
      () => Date.now() > budgetEnds,
    );
    return { stored, cutAt: cutAt === null ? null : rows[cutAt]!.offset };
  }
}
