// Idempotent rollups: after a raw insert, every offset window the chunk touched is recomputed from
// events_by_offset for the metrics whose (organization, event name) occur in the chunk. Each produced
// row is the complete state of its key over [window start, version]; FINAL keeps the highest version.
import { rollupSelect, sqlNumber, sqlString, type ClickHouseClient, type MetricDefinition } from '@meterline/core';

export const METRIC_USAGE_COLUMNS = [
  'organization_id', 'metric_id', 'metric_version', 'customer_id', 'bucket', 'group_1', 'group_2', 'kafka_topic', 'kafka_partition',
  'window_id', 'version', 'event_count', 'sum_value', 'max_value', 'uniq_state', 'latest_state',
].join(', ');

/** Metrics per statement: one UNION ALL statement per group keeps queries short. */
const METRICS_PER_STATEMENT = 20;

/** Recomputes the windows covering offsets [fromOffset, toOffset] of one partition for the given metrics. */
export async function recomputeWindows(
  ch: ClickHouseClient,
  p: { topic: string; partition: number; fromOffset: bigint; toOffset: bigint; windowSize: number; metrics: MetricDefinition[] },
): Promise<void> {
  if (p.metrics.length === 0 || p.toOffset < p.fromOffset) return;
  const W = BigInt(p.windowSize);
  const start = (p.fromOffset / W) * W;
  const source = `(SELECT * FROM events_by_offset WHERE kafka_topic = ${sqlString(p.topic)} AND kafka_partition = ${sqlNumber(p.partition)}
      AND kafka_offset >= ${start.toString()} AND kafka_offset <= ${p.toOffset.toString()} LIMIT 1 BY kafka_offset)`;
  for (let i = 0; i < p.metrics.length; i += METRICS_PER_STATEMENT) {
    const selects = p.metrics.slice(i, i + METRICS_PER_STATEMENT).map((m) => rollupSelect(m, source, p.windowSize));
    await ch.command({ query: `INSERT INTO metric_usage (${METRIC_USAGE_COLUMNS}) SELECT * FROM (${selects.join('\nUNION ALL\n')})` });
  }
}
