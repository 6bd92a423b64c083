// A billable metric: which events count and how. Stored in Postgres (table billable_metrics, owned
// by the billing API), read by the aggregator to build ClickHouse aggregates, and by billing to price.

export const AGGREGATIONS = ['count', 'sum', 'max', 'unique_count', 'latest'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export type StringFilter =
  | { property: string; operator: 'equals'; value: string }
  | { property: string; operator: 'in' | 'not_in'; values: string[] };

export type NumberFilter = { property: string; operator: 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte'; value: number };

export type MetricFilter = StringFilter | NumberFilter;

export interface MetricDefinition {
  organizationId: string;
  metricId: string;
  /** Bumped on every change of definition; aggregates are kept per version. */
  version: number;
  eventName: string;
  aggregation: Aggregation;
  /** The property aggregated; null only for `count`. */
  property: string | null;
  filters: MetricFilter[];
  /** Up to two property names to group by. */
  groupBy: string[];
}

export const MAX_GROUP_BY = 2;
