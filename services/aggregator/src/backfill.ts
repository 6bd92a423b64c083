// Backfill of new metric versions from the raw events table, in the background (ingestion continues).
// It writes the same keys as live rollups (topic, partition, offset window of the topic's recorded size,
// minute bucket, …) with version = the highest offset of the key in the window, so FINAL keeps whichever
// row is more complete and nothing doubles.
//
// Fair and bounded (issue #18): a backfill is cut into time slices of whole minutes, newest first, and
// slices of all pending versions are scheduled across organizations by backfill-queue.ts (the
// organization that used the least backfill time goes next), one slice at a time per instance and with
// max_threads = 1, so one organization's hundreds of backfills delay another's new metric by one slice,
// not by all of them, and leave ClickHouse CPU to the live path. A new version's most recent slice runs
// at once ("preview": its recent events count within seconds); the rest waits for the settle delay.
// Progress is recorded per slice in metric_backfills (resume_before, ClickHouse 0009) and completed
// versions are never redone: a restart skips them and resumes the incomplete ones where they stopped.
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
import type { Counter, Gauge, Histogram } from 'prom-client';
import { FairQueue } from './backfill-queue.ts';
import { errorSummary, isPermanentQueryError } from './failures.ts';
import { VERSION_STATUS_RANK, writeVersionStatus, type MetricHealth } from './metric-health.ts';
import { METRIC_USAGE_COLUMNS } from './rollup.ts';
import type { WindowSizes } from './window-sizes.ts';

export interface BackfillDeps {
  ch: ClickHouseClient;
  redis: Redis;
  logger: Logger;
  /** The window size of each topic (window-sizes.ts): a backfill writes every topic's rows with its own. */
  windows: WindowSizes;
  /** Wait before reading raw events for recorded slices, so every instance's live path has learned the version. */
  settleMs: number;
  counter: Counter<'status'>;
  isStopping: () => boolean;
  /** Versions ClickHouse refuses are marked invalid there and never retried. */
  health: MetricHealth;
  /** Scheduling telemetry (optional: tests may build a Backfiller without a registry). */
  telemetry?: { slices: Counter<'kind'>; queue: Gauge; firstSlice: Histogram };
  /** Events per slice aimed at (estimated from the version's event count and time span). Default 200,000. */
  sliceTargetRows?: number;
  /** Wall time per slice aimed at; the span halves/doubles when a slice takes far more/less. Default 1,000 ms. */
  sliceTargetMs?: number;
  /** Time span of the preview slice (the recent events of a new version). Default 1 hour. */
  previewSpanS?: number;
}

/** Time range of a slice, epoch seconds, minute-aligned: [fromS, beforeS); either side open when absent. */
export interface SliceRange {
  fromS?: number;
  beforeS?: number;
}

/** ClickHouse settings of backfill statements: one thread, so a backfill never takes the live path's cores. */
const BACKFILL_SETTINGS = { max_threads: 1 } as const;

function rangeSql(r: SliceRange): string {
  // minute-aligned bounds: a rollup key's bucket is its events' minute, so slices never share a key
  for (const v of [r.fromS, r.beforeS]) if (v !== undefined && v % 60 !== 0) throw new Error(`slice bound ${v} is not minute-aligned`);
  return (
    (r.fromS !== undefined ? ` AND time_created >= toDateTime(${sqlNumber(r.fromS)})` : '') +
    (r.beforeS !== undefined ? ` AND time_created < toDateTime(${sqlNumber(r.beforeS)})` : '')
  );
}

/**
 * Recomputes the rollup rows of a metric version from the raw events table — all of them, or those of
 * the minute buckets in `range`: same keys as the live path, version = the key's highest offset in its
 * window, so under FINAL it replaces (equal version: the later insert wins) or loses to (a live row
 * with more events) what is there. Idempotent. Used by backfills (slice by slice) and by the recompute
 * command (src/recompute.ts) that makes rows written before the exact decimal columns (0005) exact.
 */
export async function recomputeFromEvents(
  ch: ClickHouseClient,
  m: MetricDefinition,
  windows: WindowSizes,
  range: SliceRange = {},
  settings: Record<string, number> = {},
  /** The topics of the version's events when the caller already read them (a backfill: once per version). */
  knownTopics?: readonly string[],
): Promise<void> {
  const scope = `organization_id = ${sqlString(m.organizationId)} AND event_name = ${sqlString(m.eventName)}${rangeSql(range)}`;
  // each topic with ITS window size (window-sizes.ts): the events may come from several topics, whose
  // live rollups another instance with another size writes; one size for all would double count
  const topicsOf = async () => {
    const rs = await ch.query({
      query: `SELECT DISTINCT kafka_topic FROM events WHERE ${scope}`,
      format: 'JSONEachRow',
      clickhouse_settings: settings,
    });
    return (await rs.json<{ kafka_topic: string }>()).map((r) => r.kafka_topic);
  };
  const byWindow = new Map<number, string[]>();
  for (const kafka_topic of knownTopics ?? (await topicsOf())) {
    const w = await windows.forTopic(kafka_topic);
    byWindow.set(w, [...(byWindow.get(w) ?? []), kafka_topic]);
  }
  for (const [w, topics] of byWindow) {
    const source = `(SELECT * FROM events WHERE ${scope} AND kafka_topic IN (${topics.map(sqlString).join(', ')})
      LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset)`;
    await ch.command({
      query: `INSERT INTO metric_usage (${METRIC_USAGE_COLUMNS}) ${rollupSelect(m, source, w)}`,
      clickhouse_settings: settings,
    });
  }
}

const key = (m: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>) => `${m.organizationId}/${m.metricId}/${m.version}`;

interface Job {
  m: MetricDefinition;
  key: string;
  /** When this instance learned the version (ms). */
  knownAt: number;
  /** Not before this time (ms): the settle delay, or a retry/lock backoff. */
  notBefore: number;
  /** The recent slice still to run before the settle delay (versions with no recorded progress). */
  preview: boolean;
  /** Span of the next recorded slice (s, multiple of 60); null until estimated; Infinity = everything left. */
  spanS: number | null;
  /** Oldest event time of the version's events (s), read once with the estimate. */
  floorS: number | null;
  /**
   * Topics of the version's events, read once with the estimate (after the settle delay: a topic
   * whose first event of this scope arrives later is covered by the live path).
   */
  topics: string[];
}

interface Progress {
  rank: number;
  /** Every minute at or after this (epoch s) is covered; 0 = nothing recorded. */
  resumeBefore: number;
}

const minuteFloor = (s: number) => Math.floor(s / 60) * 60;

export class Backfiller {
  private readonly queue = new FairQueue<Job>();
  private readonly queued = new Set<string>();
  /** Versions whose backfill is complete (loaded at start, then kept current): never redone. */
  private readonly done = new Set<string>();
  /** Versions with recorded progress: they resume, no preview. */
  private readonly started = new Set<string>();
  private running: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly sliceTargetRows: number;
  private readonly sliceTargetMs: number;
  private readonly previewSpanS: number;
  /** Slices run by this instance, by kind (tests and the fairness bench read it). */
  readonly slicesRun = { preview: 0, slice: 0 };

  constructor(private readonly d: BackfillDeps) {
    this.sliceTargetRows = d.sliceTargetRows ?? 200_000;
    this.sliceTargetMs = d.sliceTargetMs ?? 1_000;
    this.previewSpanS = minuteFloor(d.previewSpanS ?? 3600) || 60;
  }

  /**
   * Reads which versions are complete and which have progress (one query, before the catalog announces
   * every version at start): a restart re-announces all ~N versions and must not redo any of them.
   */
  async load(): Promise<void> {
    const rs = await this.d.ch.query({
      query: `SELECT organization_id, metric_id, metric_version, max(status_rank) AS r,
                     minIf(resume_before, status_rank = 1 AND resume_before > 0) AS rb
              FROM metric_backfills GROUP BY organization_id, metric_id, metric_version`,
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{
      organization_id: string;
      metric_id: string;
      metric_version: number | string;
      r: number | string;
      rb: number | string;
    }>();
    for (const r of rows) {
      const k = key({ organizationId: r.organization_id, metricId: r.metric_id, version: Number(r.metric_version) });
      if (Number(r.r) >= VERSION_STATUS_RANK.done) this.done.add(k);
      else if (Number(r.rb) > 0) this.started.add(k);
    }
  }

  /** Versions waiting in this instance. */
  get pending(): number {
    return this.queue.size;
  }

  isDone(m: Pick<MetricDefinition, 'organizationId' | 'metricId' | 'version'>): boolean {
    return this.done.has(key(m));
  }

  enqueue(m: MetricDefinition): void {
    const k = key(m);
    if (this.done.has(k) || this.queued.has(k) || this.d.health.isInvalid(m)) return;
    const now = Date.now();
    const preview = !this.started.has(k);
    this.queued.add(k);
    this.queue.push(
      m.organizationId,
      { m, key: k, knownAt: now, notBefore: preview ? now : now + this.d.settleMs, preview, spanS: null, floorS: null, topics: [] },
      preview,
    );
    this.d.telemetry?.queue.set(this.queue.size);
    this.wake?.();
    if (!this.running)
      this.running = this.loop().finally(() => {
        this.running = null;
      });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.d.isStopping() && this.queue.size > 0) {
      const now = Date.now();
      const picked = this.queue.take((j) => j.notBefore <= now);
      if (!picked) {
        // nothing eligible yet (settle delays, backoffs): sleep until the earliest, or a new version
        const next = Math.min(...this.queue.items().map((j) => j.notBefore));
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(10, Math.min(next - now, 250)));
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = null;
        continue;
      }
      const job = picked.item;
      const started = Date.now();
      let again = false;
      try {
        again = await this.step(job);
      } catch (err) {
        again = await this.failed(job, err);
      }
      if (!again) this.queued.delete(job.key);
      this.queue.done(picked.org, Date.now() - started, again ? job : undefined);
      this.d.telemetry?.queue.set(this.queue.size);
    }
  }

  /** A failed slice: permanent → the version is marked invalid (not retried); else retried after 2 s. */
  private async failed(job: Job, err: unknown): Promise<boolean> {
    if (isPermanentQueryError(err)) {
      this.d.counter.inc({ status: 'invalid' });
      // marked invalid (not retried); if even the mark fails, the version is retried
      const marked = await this.d.health.markInvalid(job.m, err).then(
        () => true,
        () => false,
      );
      if (marked) return false;
    } else {
      this.d.counter.inc({ status: 'failed' });
      this.d.logger.warn({ err: errorSummary(err), metric: job.key }, 'backfill slice failed, will retry');
    }
    job.notBefore = Date.now() + 2_000;
    return true;
  }

  /** Runs one slice of the job; true = more to do. */
  private async step(job: Job): Promise<boolean> {
    const { m } = job;
    if (this.done.has(job.key) || this.d.health.isInvalid(m)) return false;
    if (job.preview) {
      // the recent events of a new version count at once; the range is recomputed again after the settle
      // delay (a raw row an instance still unaware of the version inserted meanwhile is then included)
      job.preview = false;
      await writeVersionStatus(this.d.ch, m, 'running', { rowsWritten: 0 });
      await recomputeFromEvents(
        this.d.ch,
        m,
        this.d.windows,
        { fromS: minuteFloor(Date.now() / 1000) - this.previewSpanS },
        BACKFILL_SETTINGS,
      );
      this.slicesRun.preview++;
      this.d.telemetry?.slices.inc({ kind: 'preview' });
      this.d.telemetry?.firstSlice.observe((Date.now() - job.knownAt) / 1000);
      job.notBefore = Math.max(job.notBefore, job.knownAt + this.d.settleMs);
      return true;
    }
    // one instance per version at a time (per slice: a dead holder's lock expires in a minute)
    const lock = redisKeys.aggregatorBackfillLock(m.organizationId, m.metricId, m.version);
    const got = await this.d.redis.set(lock, String(process.pid), 'PX', 60_000, 'NX');
    if (got !== 'OK') {
      job.notBefore = Date.now() + 1_000;
      return true;
    }
    try {
      // progress is re-read per slice: another instance may have advanced or finished it
      const p = await this.progress(m);
      if (p.rank >= VERSION_STATUS_RANK.done) {
        if (p.rank === VERSION_STATUS_RANK.done) this.done.add(job.key);
        return false;
      }
      const before = p.resumeBefore > 0 ? p.resumeBefore : undefined;
      if (job.spanS === null) await this.estimate(job, before);
      const top = before ?? minuteFloor(Date.now() / 1000) + 60;
      const from = job.spanS === Number.POSITIVE_INFINITY ? undefined : top - (job.spanS as number);
      const last = from === undefined || from <= (job.floorS ?? 0);
      const t0 = Date.now();
      await recomputeFromEvents(
        this.d.ch,
        m,
        this.d.windows,
        { fromS: last ? undefined : from, beforeS: before },
        BACKFILL_SETTINGS,
        job.topics,
      );
      const elapsed = Date.now() - t0;
      this.slicesRun.slice++;
      this.d.telemetry?.slices.inc({ kind: 'slice' });
      if (last) {
        await writeVersionStatus(this.d.ch, m, 'done', { rowsWritten: 0 });
        this.done.add(job.key);
        this.d.counter.inc({ status: 'done' });
        this.d.logger.info({ metric: job.key, ms: Date.now() - job.knownAt }, 'backfill done');
        return false;
      }
      await this.d.ch.insert({
        table: 'metric_backfills',
        format: 'JSONEachRow',
        values: [
          {
            organization_id: m.organizationId,
            metric_id: m.metricId,
            metric_version: m.version,
            status: 'running',
            status_rank: VERSION_STATUS_RANK.running,
            rows_written: 0,
            error: '',
            resume_before: from,
          },
        ],
      });
      // keep slices near the time target under changing load and event density
      const span = job.spanS as number;
      if (elapsed > 2 * this.sliceTargetMs) job.spanS = Math.max(60, minuteFloor(span / 2));
      else if (elapsed < this.sliceTargetMs / 4) job.spanS = span * 2;
      return true;
    } finally {
      await this.d.redis.del(lock).catch(() => undefined);
    }
  }

  /** First slice span from the version's event count and time range (~sliceTargetRows events per slice). */
  private async estimate(job: Job, before: number | undefined): Promise<void> {
    const { m } = job;
    const rs = await this.d.ch.query({
      query: `SELECT kafka_topic, count() AS c, toUInt32(min(time_created)) AS lo FROM events
              WHERE organization_id = ${sqlString(m.organizationId)} AND event_name = ${sqlString(m.eventName)}${rangeSql({ beforeS: before })}
              GROUP BY kafka_topic`,
      format: 'JSONEachRow',
      clickhouse_settings: BACKFILL_SETTINGS,
    });
    const rows = await rs.json<{ kafka_topic: string; c: number | string; lo: number | string }>();
    job.topics = rows.map((r) => r.kafka_topic);
    const count = rows.reduce((s, r) => s + Number(r.c), 0);
    job.floorS = count > 0 ? Math.min(...rows.map((r) => Number(r.lo))) : null;
    if (count <= this.sliceTargetRows || job.floorS === null) {
      job.spanS = Number.POSITIVE_INFINITY;
      return;
    }
    const top = before ?? minuteFloor(Date.now() / 1000) + 60;
    const range = Math.max(60, top - job.floorS);
    job.spanS = Math.max(60, Math.ceil((range * this.sliceTargetRows) / count / 60) * 60);
  }

  private async progress(m: MetricDefinition): Promise<Progress> {
    // without FINAL: max over all status rows, and the oldest recorded slice bound (a merge keeping
    // another rank-1 row can only make it resume later = redo a slice, idempotently)
    const rs = await this.d.ch.query({
      query: `SELECT max(status_rank) AS r, minIf(resume_before, status_rank = 1 AND resume_before > 0) AS rb FROM metric_backfills
              WHERE organization_id = ${sqlString(m.organizationId)} AND metric_id = ${sqlString(m.metricId)} AND metric_version = ${sqlNumber(m.version)}`,
      format: 'JSONEachRow',
    });
    const row = (await rs.json<{ r: number | string; rb: number | string }>())[0];
    return { rank: Number(row?.r ?? 0), resumeBefore: Number(row?.rb ?? 0) };
  }

  /** The version's status rank in metric_backfills (0 none, 1 running, 2 done, 3 invalid). */
  async status(m: MetricDefinition): Promise<number> {
    return (await this.progress(m)).rank;
  }
}
