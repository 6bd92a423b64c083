import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function aggregatorMetrics(registry: Registry) {
  return {
    lag: new Gauge({
      name: 'meterline_aggregator_consumer_lag',
      help: 'Log-end offset minus committed offset per partition, refreshed on a timer',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    }),
    stalled: new Gauge({
      name: 'meterline_aggregator_partition_stalled',
      help: '1 when the partition has lag and no committed progress for AGGREGATOR_STALL_AFTER_MS',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    }),
    backoffs: new Counter({
      name: 'meterline_aggregator_partition_backoffs_total',
      help: 'Times a partition was paused after a step kept failing (replayed after a backoff)',
      labelNames: ['stage'],
      registers: [registry],
    }),
    invalidMetrics: new Counter({
      name: 'meterline_aggregator_invalid_metric_versions_total',
      help: 'Metric versions marked invalid because ClickHouse refuses their SQL',
      registers: [registry],
    }),
    batchRecords: new Histogram({
      name: 'meterline_aggregator_batch_records',
      help: 'Records per processed partition chunk',
      buckets: [1, 10, 50, 100, 500, 1000, 5000, 20000],
      registers: [registry],
    }),
    insertSeconds: new Histogram({
      name: 'meterline_aggregator_clickhouse_insert_seconds',
      help: 'ClickHouse insert latency',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    freshness: new Histogram({
      name: 'meterline_aggregator_event_freshness_seconds',
      help: 'Gateway receive time to queryable in aggregates',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'meterline_aggregator_dead_letters_total',
      help: 'Records sent to the dead-letter topic',
      labelNames: ['reason', 'attributed'],
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'meterline_aggregator_duplicates_total',
      help: 'Records skipped as duplicates of an idempotency id',
      registers: [registry],
    }),
    events: new Counter({ name: 'meterline_aggregator_events_total', help: 'Events stored and counted', registers: [registry] }),
    watermarkFailures: new Counter({
      name: 'meterline_aggregator_watermark_publish_failures_total',
      help: 'Usage watermark publishes to Redis that failed (billing counts its recent grants twice until the next one)',
      registers: [registry],
    }),
    sharedStatements: new Counter({
      name: 'meterline_aggregator_shared_statements_total',
      help: 'ClickHouse statements shared by concurrent chunks of several partitions (outcome shared, or fallback: each chunk ran its own)',
      labelNames: ['step', 'outcome'],
      registers: [registry],
    }),
    sharedChunks: new Counter({
      name: 'meterline_aggregator_shared_chunks_total',
      help: 'Chunks carried by shared statements (divide by meterline_aggregator_shared_statements_total for chunks per statement)',
      labelNames: ['step'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'meterline_aggregator_retries_total',
      help: 'Retried steps while a dependency failed',
      labelNames: ['stage'],
      registers: [registry],
    }),
    backfills: new Counter({
      name: 'meterline_aggregator_backfills_total',
      help: 'Metric version backfills',
      labelNames: ['status'],
      registers: [registry],
    }),
    // backfill scheduling (backfill.ts, backfill-queue.ts): slices run, work waiting, time to first count
    backfillSlices: new Counter({
      name: 'meterline_aggregator_backfill_slices_total',
      help: "Backfill slices run (kind=preview: a new version's recent slice, before the settle delay; slice: a recorded one)",
      labelNames: ['kind'],
      registers: [registry],
    }),
    backfillQueue: new Gauge({
      name: 'meterline_aggregator_backfill_queue',
      help: 'Metric versions waiting for backfill slices in this instance',
      registers: [registry],
    }),
    backfillFirstSliceSeconds: new Histogram({
      name: 'meterline_aggregator_backfill_first_slice_seconds',
      help: 'From a new metric version being known to its first (recent) slice written',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
  };
}

export type AggregatorMetrics = ReturnType<typeof aggregatorMetrics>;
