// Reading usage: core's queryUsage over the aggregator's rollups (services/aggregator/README.md),
// and core's metricVersionStatus (is a metric version's backfill of older events finished?).
// The UsageReader seam exists so tests can inject a fixed reader (subscriptions.int.test.ts).
import {
  metricVersionStatus,
  queryUsage,
  type ClickHouseClient,
  type MetricDefinition,
  type MetricVersionStatus,
  type UsageQuery,
  type UsageRow,
} from '@meterline/core';

export type { MetricVersionStatus, UsageQuery, UsageRow, UsageWindow } from '@meterline/core';

export interface UsageReader {
  query(q: UsageQuery): Promise<UsageRow[]>;
  /**
   * Optional batched read: q.customerIds set, one row per customer (and group). Readers without it are
   * asked one customer at a time (usage/billable.ts usageBatch).
   */
  queryMany?(q: UsageQuery & { customerIds: readonly string[] }): Promise<UsageRow[]>;
  /** 'ready' once totals of this metric version include events from before it was defined (see core's metricVersionStatus). */
  versionStatus(metric: MetricDefinition): Promise<MetricVersionStatus>;
}

export function clickHouseUsageReader(ch: ClickHouseClient): UsageReader {
  return {
    query: (q) => queryUsage(ch, q),
    queryMany: (q) => queryUsage(ch, q),
    versionStatus: (m) => metricVersionStatus(ch, m),
  };
}
