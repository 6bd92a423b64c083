// Backfill of a new metric version from the raw events table, in the background (ingestion continues).
// It writes the same keys as live rollups (topic, partition, offset window of the topic's recorded size) with version = the highest
// offset of the key in the window, so FINAL keeps whichever row is more complete and nothing doubles.
// Status per version in metric_backfills (running=1 / done=2), read by core's metricVersionStatus.
import {
  redisKeys,
  rollupSelect,
  sqlNumber,
  sqlString,
  type ClickHouseClient,
  type Logger,
  type MetricDefinition,
  type Redis,
} from '@meterline/core';
import type { Counter } from 'prom-client';
import { errorSummary, isPermanentQueryError } from './failures.ts';
import { writeVersionStatus, type MetricHealth } from './metric-health.ts';
import { METRIC_USAGE_COLUMNS } from './rollup.ts';
import type { WindowSizes } from './window-sizes.ts';

export interface BackfillDeps {
  ch: ClickHouseClient;
  redis: Redis;
  logger: Logger;
  /** The window size of each topic (window-sizes.ts): a backfill writes every topic's rows with its own. */
  windows: WindowSizes;
  /** Wait before reading raw events so every instance's live path has learned the version. */
  settleMs: number;
  counter: Counter<'status'>;
  isStopping: () => boolean;
  /** Versions ClickHouse refuses are marked invalid there and never retried. */
  health: MetricHealth;
}

/**
 * Recomputes every rollup row of a metric version from the raw events table: same keys as the live
 * path, version = the key's highest offset in its window, so under FINAL it replaces (equal version:
 * the later insert wins) or loses to (a live row with more events) what is there. Idempotent. Used by
 * backfills and by the recompute command (src/recompute.ts) that makes rows written before the exact
 * decimal columns (migration 0005) exact.
 */
export async function recomputeFromEvents(ch: ClickHouseClient, m: MetricDefinition, windows: WindowSizes): Promise<void> {
  const scope = `organization_id = ${sqlString(m.organizationId)} AND event_name = ${sqlString(m.eventName)}`;
  // each topic with ITS window size (window-sizes.ts): the events may come from several topics, whose
  // live rollups another instance with another size writes; one size for all would double count
  const rs = await ch.query({ query: `SELECT DISTINCT kafka_topic FROM events WHERE ${scope}`, format: 'JSONEachRow' });
  const byWindow = new Map<number, string[]>();
  for (const { kafka_topic } of await rs.json<{ kafka_topic: string }>()) {
    const w = await windows.forTopic(kafka_topic);
    byWindow.set(w, [...(byWindow.get(w) ?? []), kafka_topic]);
  }
  for (const [w, topics] of byWindow) {
    const source = `(SELECT * FROM events WHERE ${scope} AND kafka_topic IN (${topics.map(sqlString).join(', ')})
      LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset)`;
    await ch.command({ query: `INSERT INTO metric_usage (${METRIC_USAGE_COLUMNS}) ${rollupSelect(m, source, w)}` });
  }
}

const key = (m: MetricDefinition) => `${m.organizationId}/${m.metricId}/${m.version}`;

export class Backfiller {
  private readonly pending = new Map<string, MetricDefinition>();
  private running: Promise<void> | null = null;

  constructor(private readonly d: BackfillDeps) {}

  enqueue(m: MetricDefinition): void {
    this.pending.set(key(m), m);
    if (!this.running)
      this.running = this.drain().finally(() => {
        this.running = null;
      });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending.size > 0 && !this.d.isStopping()) {
      // one settle wait per round: every instance's live path learns the versions before we read
      await new Promise((r) => setTimeout(r, this.d.settleMs));
      const round = [...this.pending.entries()];
      // one query for the versions already done (a restart re-announces every metric)
      const done = await this.doneKeys().catch(() => new Set<string>());
      for (const [k, m] of round) {
        if (done.has(k) || this.d.health.isInvalid(m)) {
          if (this.pending.get(k) === m) this.pending.delete(k);
          continue;
        }
        if (this.d.isStopping()) return;
        try {
          await this.runOne(m);
          if (this.pending.get(k) === m) this.pending.delete(k);
        } catch (err) {
          if (isPermanentQueryError(err)) {
            this.d.counter.inc({ status: 'invalid' });
            // marked invalid (not retried); if even the mark fails, the version stays pending
            const marked = await this.d.health.markInvalid(m, err).then(
              () => true,
              () => false,
            );
            if (marked && this.pending.get(k) === m) this.pending.delete(k);
            continue;
          }
          this.d.counter.inc({ status: 'failed' });
          this.d.logger.warn({ err: errorSummary(err), metric: k }, 'backfill failed, will retry');
        }
      }
      if (this.pending.size > 0) await new Promise((r) => setTimeout(r, 2_000));
    }
  }

  private async doneKeys(): Promise<Set<string>> {
    const rs = await this.d.ch.query({
      query: 'SELECT organization_id, metric_id, metric_version FROM metric_backfills FINAL WHERE status_rank = 2',
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ organization_id: string; metric_id: string; metric_version: number | string }>();
    return new Set(rows.map((r) => `${r.organization_id}/${r.metric_id}/${Number(r.metric_version)}`));
  }

  async status(m: MetricDefinition): Promise<number> {
    const rs = await this.d.ch.query({
      query: `SELECT max(status_rank) AS r FROM metric_backfills FINAL WHERE organization_id = ${sqlString(m.organizationId)}
                AND metric_id = ${sqlString(m.metricId)} AND metric_version = ${sqlNumber(m.version)}`,
      format: 'JSONEachRow',
    });
    return Number((await rs.json<{ r: string | number }>())[0]?.r ?? 0);
  }

  private setStatus(m: MetricDefinition, status: 'running' | 'done', rows: number): Promise<void> {
    return writeVersionStatus(this.d.ch, m, status, { rowsWritten: rows });
  }

  private async runOne(m: MetricDefinition): Promise<void> {
    if ((await this.status(m)) >= 2) return;
    // one instance at a time per version; if the holder dies the lock expires and another retries
    const lock = redisKeys.aggregatorBackfillLock(m.organizationId, m.metricId, m.version);
    const got = await this.d.redis.set(lock, String(process.pid), 'PX', 10 * 60_000, 'NX');
    if (got !== 'OK') throw new Error('backfill held by another instance'); // retried until it is done

    try {
      await this.setStatus(m, 'running', 0);
      const started = Date.now();
      await recomputeFromEvents(this.d.ch, m, this.d.windows);
      await this.setStatus(m, 'done', 0);
      this.d.counter.inc({ status: 'done' });
      this.d.logger.info({ metric: key(m), ms: Date.now() - started }, 'backfill done');
    } finally {
      await this.d.redis.del(lock).catch(() => undefined);
    }
  }
}
