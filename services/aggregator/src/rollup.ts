// Idempotent rollups: after a raw insert, every offset window the chunk touched is recomputed from
// events_by_offset for the metrics whose (organization, event name) occur in the chunk. Each produced
// row is the complete state of its key over [window start, version]; FINAL keeps the highest version.
import { METRIC_USAGE_STATE_COLUMNS, rollupSelect, sqlNumber, sqlString, type MetricDefinition } from '@meterline/core';

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

/** Metrics per statement: one UNION ALL statement per group keeps queries short. */
const METRICS_PER_STATEMENT = 20;

export interface WindowRange {
  topic: string;
  partition: number;
  fromOffset: bigint;
  toOffset: bigint;
  windowSize: number;
}

/** The events_by_offset rows of the windows covering [fromOffset, toOffset] of one partition. */
function windowSource(p: WindowRange): string {
  const W = BigInt(p.windowSize);
  const start = (p.fromOffset / W) * W;
  return `(SELECT * FROM events_by_offset WHERE kafka_topic = ${sqlString(p.topic)} AND kafka_partition = ${sqlNumber(p.partition)}
      AND kafka_offset >= ${start.toString()} AND kafka_offset <= ${p.toOffset.toString()} LIMIT 1 BY kafka_offset)`;
}

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
  const source = windowSource(p);
  const statement = (metrics: MetricDefinition[]) =>
    `INSERT INTO metric_usage (${METRIC_USAGE_COLUMNS}) SELECT * FROM (${metrics.map((m) => rollupSelect(m, source, p.windowSize)).join('\nUNION ALL\n')})`;
  for (let i = 0; i < p.metrics.length; i += METRICS_PER_STATEMENT) {
    const group = p.metrics.slice(i, i + METRICS_PER_STATEMENT);
    try {
      await run(statement(group));
    } catch (err) {
      if (!isPermanent(err)) throw err;
      for (const m of group) {
        try {
          await run(statement([m]));
        } catch (one) {
          if (!isPermanent(one)) throw one;
          await onInvalid(m, one);
        }
      }
    }
  }
}
