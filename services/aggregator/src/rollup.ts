// Idempotent rollups: after a raw insert, the keys the chunk touched are recomputed from the start of
// their offset windows in events_by_offset, for the metrics whose (organization, event name) occur in the
// chunk. Each produced row is the complete state of its key over [window start, version]; FINAL keeps the
// highest version. Keys the chunk did not touch are not rewritten (their rows are already complete).
import { METRIC_USAGE_STATE_COLUMNS, rollupSelectMany, sqlNumber, sqlString, type MetricDefinition } from '@meterline/core';

export const METRIC_USAGE_COLUMNS = [
  'organization_id',
  'metric_id',
  'metric_version',
  'customer_id',
  'bucket',
  'group_1',
  'group_2',
  'kafka_topic',
  'kafka_partition',
  'window_id',
  'version',
  ...METRIC_USAGE_STATE_COLUMNS,
  // last in rollupSelect's output and in the sort key (clickhouse/0008): '' = customer-level
  'entity_id',
].join(', ');

/**
 * Metrics per statement: each is one more tuple evaluated per source row, and a group whose statement
 * ClickHouse refuses is retried metric by metric; 50 keeps both small and statements far below
 * max_query_size (256 KiB).
 */
const METRICS_PER_STATEMENT = 50;

export interface WindowRange {
  topic: string;
  partition: number;
  fromOffset: bigint;
  toOffset: bigint;
  windowSize: number;
}

/** The (organization, customer, minute) of an event: a superset of its metric_usage keys (issue #18). */
const TOUCH_KEY = 'organization_id, customer_id, intDiv(toUInt32(time_created), 60)';

/**
 * The events_by_offset rows of the windows covering [fromOffset, toOffset] of one partition, restricted
 * to the (organization, customer, minute) triples that have an event IN [fromOffset, toOffset].
 *
 * Why the restriction is exact (Invariant A, README): a metric_usage row is the complete state of its key
 * over [window start, version], version = the key's highest offset in the window. A key without an event
 * in [fromOffset, toOffset] has no event newer than what its last committed rollup saw (every offset below
 * fromOffset was covered by a rollup before it was committed), so its existing row is already complete and
 * rewriting it would write the same row again. Every key that is written is still recomputed from the
 * window's start over all its stored rows, never incremented. Before this, a one-event chunk (a trickle)
 * rewrote every key of its 5,000-offset window: ~300-4,000 rows per event.
 */
function windowSource(ranges: WindowRange[]): string {
  const one = (p: WindowRange) => {
    const W = BigInt(p.windowSize);
    const start = (p.fromOffset / W) * W;
    const partition = `kafka_topic = ${sqlString(p.topic)} AND kafka_partition = ${sqlNumber(p.partition)}`;
    return `(${partition} AND kafka_offset >= ${start.toString()} AND kafka_offset <= ${p.toOffset.toString()}
        AND (${TOUCH_KEY}) IN (SELECT ${TOUCH_KEY} FROM events_by_offset WHERE ${partition}
          AND kafka_offset >= ${p.fromOffset.toString()} AND kafka_offset <= ${p.toOffset.toString()}))`;
  };
  // duplicates of one offset (a zombie's second insert) have identical content: the key filter keeps all
  // or none of them. Several ranges (coalesce.ts) are OR-ed: the primary key (topic, partition, offset)
  // still narrows the read to their offset ranges.
  return `(SELECT * FROM events_by_offset WHERE ${ranges.map(one).join('\n      OR ')}
      LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset)`;
}

// All metrics of a group over one read of the source (rollupSelectMany): on 18.16 a UNION ALL branch per
// metric cost ~35 ms of ClickHouse CPU each to analyse, whatever the rows (20 metrics: 677 ms vs 77 ms).
const statement = (metrics: MetricDefinition[], source: string, windowSize: number) =>
  `INSERT INTO metric_usage (${METRIC_USAGE_COLUMNS}) ${rollupSelectMany(metrics, source, windowSize)}`;

/**
 * Recomputes the windows covering offsets [fromOffset, toOffset] of one partition for the given
 * metrics, in statements of METRICS_PER_STATEMENT. `run` executes one statement (the caller wraps it
 * in retries); when it fails permanently for a group, each metric of the group runs alone and those
 * that still fail are handed to onInvalid, so one metric's bad SQL never blocks the others.
 */
export async function recomputeWindows(
  p: WindowRange & { metrics: MetricDefinition[] },
  run: (sql: string) => Promise<void>,
  isPermanent: (err: unknown) => boolean,
  onInvalid: (m: MetricDefinition, err: unknown) => Promise<void>,
): Promise<void> {
  if (p.metrics.length === 0 || p.toOffset < p.fromOffset) return;
  const source = windowSource([p]);
  for (let i = 0; i < p.metrics.length; i += METRICS_PER_STATEMENT) {
    const group = p.metrics.slice(i, i + METRICS_PER_STATEMENT);
    try {
      await run(statement(group, source, p.windowSize));
    } catch (err) {
      if (!isPermanent(err)) throw err;
      for (const m of group) {
        try {
          await run(statement([m], source, p.windowSize));
        } catch (one) {
          if (!isPermanent(one)) throw one;
          await onInvalid(m, one);
        }
      }
    }
  }
}

/**
 * The rollups of several chunks (of different partitions) in as few statements as possible
 * (coalesce.ts): every metric of any chunk over the touched keys of every chunk's ranges. A metric
 * applied to another chunk's range only recomputes keys of its events there from their windows' starts,
 * which is idempotent (Invariant A). Throws on the first failure: the caller then runs each chunk's own
 * recomputeWindows (with its invalid-metric handling).
 */
export async function recomputeWindowsTogether(
  chunks: (WindowRange & { metrics: MetricDefinition[] })[],
  run: (sql: string) => Promise<void>,
): Promise<void> {
  const ranges = chunks.filter((c) => c.metrics.length > 0 && c.toOffset >= c.fromOffset);
  if (ranges.length === 0) return;
  const windowSize = ranges[0]!.windowSize;
  if (ranges.some((r) => r.windowSize !== windowSize)) throw new Error('chunks with different window sizes cannot share a rollup');
  const metrics = new Map<string, MetricDefinition>();
  for (const c of ranges) for (const m of c.metrics) metrics.set(`${m.metricId}\0${m.version}`, m);
  const all = [...metrics.values()];
  const source = windowSource(ranges);
  for (let i = 0; i < all.length; i += METRICS_PER_STATEMENT)
    await run(statement(all.slice(i, i + METRICS_PER_STATEMENT), source, windowSize));
}
