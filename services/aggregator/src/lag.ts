// Honest consumer health. On a timer (not when a batch completes: a stuck consumer completes none) it
// reads the group's committed offsets and the topic's log-end offsets from Kafka and exports
//   meterline_aggregator_consumer_lag{topic,partition}      = log end - committed (the earliest offset if none)
//   meterline_aggregator_partition_stalled{topic,partition} = 1 when lag > 0 and the committed offset has not
//                                                    moved for AGGREGATOR_STALL_AFTER_MS
// A stall is logged as an error once when it starts (and when it ends), and /readyz answers 503
// naming the stalled partitions this instance owns.
import type { Logger } from '@meterline/core';
import type { Admin } from 'kafkajs';
import type { AggregatorMetrics } from './telemetry.ts';

export interface PartitionHealth {
  partition: number;
  logEnd: bigint;
  committed: bigint;
  lag: bigint;
  /** Since when the committed offset has not moved while there was lag (ms epoch), or null. */
  stuckSince: number | null;
  stalled: boolean;
}

export interface LagMonitorOptions {
  admin: Admin;
  groupId: string;
  topic: string;
  intervalMs: number;
  stallAfterMs: number;
  metrics: Pick<AggregatorMetrics, 'lag' | 'stalled'>;
  logger: Logger;
  now?: () => number;
}

export class LagMonitor {
  private readonly state = new Map<number, PartitionHealth>();
  /** Partitions this instance owns (from the consumer's group-join events). */
  private owned = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private lastError: string | null = null;
  private refreshedAt = 0;

  constructor(private readonly o: LagMonitorOptions) {}

  setOwnedPartitions(partitions: number[]): void {
    this.owned = new Set(partitions);
  }

  start(): void {
    const tick = async () => {
      await this.refresh().catch((err: Error) => {
        this.lastError = err.message;
        this.o.logger.warn({ err: err.message }, 'consumer lag refresh failed');
      });
      if (this.timer !== null) this.timer = setTimeout(tick, this.o.intervalMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  partitions(): PartitionHealth[] {
    return [...this.state.values()].sort((a, b) => a.partition - b.partition);
  }

  async refresh(): Promise<void> {
    const { admin, groupId, topic } = this.o;
    const now = (this.o.now ?? Date.now)();
    const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const committedBy = new Map<number, bigint>();
    for (const p of committed.find((t) => t.topic === topic)?.partitions ?? []) committedBy.set(p.partition, BigInt(p.offset));
    for (const e of ends) {
      const logEnd = BigInt(e.high);
      const low = BigInt(e.low);
      const c = committedBy.get(e.partition) ?? -1n;
      const position = c < 0n ? low : c; // nothing committed yet: everything retained is behind
      const lag = logEnd > position ? logEnd - position : 0n;
      const prev = this.state.get(e.partition);
      let stuckSince: number | null = null;
      if (lag > 0n) stuckSince = prev && prev.committed === position && prev.stuckSince !== null ? prev.stuckSince : now;
      const stalled = stuckSince !== null && now - stuckSince >= this.o.stallAfterMs;
      if (stalled && !prev?.stalled) {
        this.o.logger.error(
          { topic, partition: e.partition, lag: lag.toString(), committed: position.toString(), stuckForMs: now - stuckSince! },
          'partition stalled: lag and no committed progress',
        );
      } else if (!stalled && prev?.stalled) {
        this.o.logger.info({ topic, partition: e.partition }, 'partition no longer stalled');
      }
      const labels = { topic, partition: String(e.partition) };
      this.o.metrics.lag.set(labels, Number(lag));
      this.o.metrics.stalled.set(labels, stalled ? 1 : 0);
      this.state.set(e.partition, { partition: e.partition, logEnd, committed: position, lag, stuckSince, stalled });
    }
    this.lastError = null;
    this.refreshedAt = now;
  }

  /** Readiness: throws naming the stalled partitions this instance owns, or when lag cannot be read. */
  check(): void {
    const now = (this.o.now ?? Date.now)();
    if (this.refreshedAt > 0 && now - this.refreshedAt > Math.max(3 * this.o.intervalMs, this.o.stallAfterMs)) {
      throw new Error(`consumer lag not refreshed for ${now - this.refreshedAt} ms${this.lastError ? `: ${this.lastError}` : ''}`);
    }
    const stalled = this.partitions().filter((p) => p.stalled && this.owned.has(p.partition));
    if (stalled.length > 0) {
      throw new Error(
        `stalled: ${stalled.map((p) => `${this.o.topic}[${p.partition}] lag ${p.lag} for ${Math.round((now - p.stuckSince!) / 1000)} s`).join(', ')}`,
      );
    }
  }
}
