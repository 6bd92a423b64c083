// SQL building blocks shared by the aggregator's live rollups and backfills (and documented in
// docs/analytics.md). Every literal goes through sqlString / sqlNumber: property names are user input.
import { sqlNumber, sqlString } from '../clients/clickhouse.ts';
import type { MetricDefinition, MetricFilter } from './definition.ts';

const idx = (p: string) => `indexOf(prop_keys, ${sqlString(p)})`;
/** The property's text value ('' when absent). */
export const propText = (p: string) => `prop_values[${idx(p)}]`;
/** The property's numeric value (0 when absent or not a number: check propIsNumber). */
export const propNumber = (p: string) => `prop_number_values[${idx(p)}]`;
/** 1 when the property is present and numeric. */
export const propIsNumber = (p: string) => `(prop_is_number[${idx(p)}] = 1)`;
/**
 * The property's exact value as Decimal(38, 12) (0 when absent or not a number: check propIsNumber).
 * The text array gets a leading '0' so that an absent key (indexOf = 0) reads it: 18.16 refuses index 0
 * on non-Float arrays and cannot parse ''.
 */
export const propDecimal = (p: string) => `toDecimal128(arrayPushFront(prop_decimal_values, '0')[${idx(p)} + 1], 12)`;
export const propPresent = (p: string) => `has(prop_keys, ${sqlString(p)})`;

const NUM_OPS = { eq: '=', neq: '!=', gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/**
 * A filter as a boolean SQL expression over the parsed property columns.
 * equals / in: the property is present and its text is one of the values. not_in: absent, or its text
 * is none of the values. Numeric comparisons: the property is present, numeric, and compares true.
 */
export function filterSql(f: MetricFilter): string {
  switch (f.operator) {
    case 'equals':
      return `(${propPresent(f.property)} AND ${propText(f.property)} = ${sqlString(f.value)})`;
    case 'in':
      return f.values.length === 0
        ? '0'
        : `(${propPresent(f.property)} AND ${propText(f.property)} IN (${f.values.map(sqlString).join(',')}))`;
    case 'not_in':
      return f.values.length === 0
        ? '1'
        : `(NOT ${propPresent(f.property)} OR ${propText(f.property)} NOT IN (${f.values.map(sqlString).join(',')}))`;
    default: {
      const op = NUM_OPS[f.operator];
      if (!op) throw new TypeError(`unknown filter operator ${JSON.stringify((f as { operator: unknown }).operator)}`);
      return `(${propIsNumber(f.property)} AND ${propNumber(f.property)} ${op} ${sqlNumber(f.value)})`;
    }
  }
}

/** WHERE conditions selecting the events a metric counts (organization and event name included). */
export function metricConditions(m: MetricDefinition): string[] {
  const c = [`organization_id = ${sqlString(m.organizationId)}`, `event_name = ${sqlString(m.eventName)}`, ...m.filters.map(filterSql)];
  if (m.aggregation === 'unique_count') c.push(propPresent(m.property!));
  else if (m.aggregation !== 'count') c.push(propIsNumber(m.property!));
  return c;
}

/**
 * SELECT producing metric_usage rows (all columns but computed_at, in table order) for one metric
 * over `source` (a table or subquery with the events_by_offset columns, already deduplicated by Kafka
 * partition/offset). One row per key and offset window; version = the highest offset of the key in
 * the window, so a row holds every event of its key with offset <= version.
 */
/** Per-event expressions of a metric: the aggregated number and text, and the two group values. */
export function metricEventColumns(m: MetricDefinition): { num: string; dec: string; str: string; g1: string; g2: string } {
  const numeric = m.aggregation !== 'count' && m.aggregation !== 'unique_count';
  return {
    num: numeric ? propNumber(m.property!) : 'toFloat64(0)',
    dec: numeric ? propDecimal(m.property!) : 'toDecimal128(0, 12)',
    str: m.aggregation === 'unique_count' ? propText(m.property!) : "''",
    g1: m.groupBy[0] !== undefined ? propText(m.groupBy[0]) : "''",
    g2: m.groupBy[1] !== undefined ? propText(m.groupBy[1]) : "''",
  };
}

/**
 * The state columns of metric_usage as aggregates over rows with num / dec / str (see metricEventColumns),
 * in the order of METRIC_USAGE_STATE_COLUMNS. sum_decimal / max_decimal are exact (Decimal(38, 12));
 * sum_value / max_value are the Float64 approximations kept for readers of the older columns.
 */
export const STATE_AGGREGATES = `count() AS event_count, sum(num) AS sum_value, max(num) AS max_value,
      uniqExactState(str) AS uniq_state, argMaxState(num, tuple(time_created_ms, kafka_partition, kafka_offset)) AS latest_state,
      sum(dec) AS sum_decimal, max(dec) AS max_decimal`;
export const METRIC_USAGE_STATE_COLUMNS = [
  'event_count',
  'sum_value',
  'max_value',
  'uniq_state',
  'latest_state',
  'sum_decimal',
  'max_decimal',
] as const;

export const MINUTE_BUCKET = `toDateTime(intDiv(toUInt32(time_created), 60) * 60, 'UTC')`;

/**
 * SELECT producing metric_usage rows (all columns but computed_at, in table order) for one metric
 * over `source` (a table or subquery with the events_by_offset columns, already deduplicated by Kafka
 * partition/offset). One row per key and offset window; version = the highest offset of the key in
 * the window, so a row holds every event of its key with offset <= version. The entity (entity_id, ''
 * = customer-level) is part of the key and comes last (metric_usage's sort key ends with it: 0008).
 */
export function rollupSelect(m: MetricDefinition, source: string, windowSize: number, extraWhere: string[] = []): string {
  const { num, dec, str, g1, g2 } = metricEventColumns(m);
  return rollupAggregate(
    `${sqlString(m.metricId)} AS metric_id, toUInt32(${sqlNumber(m.version)}) AS metric_version,
                 ${num} AS num, ${dec} AS dec, ${str} AS str, ${g1} AS g1, ${g2} AS g2
          FROM ${source} WHERE ${[...metricConditions(m), ...extraWhere].join(' AND ')}`,
    windowSize,
  );
}

/**
 * The metric_usage row shape both rollup forms share: `perEvent` selects, after the event columns, the
 * metric_id, metric_version, num, dec, str, g1, g2 of each (event, metric) and its FROM/WHERE; this groups
 * them into one row per key and offset window, in table order.
 */
function rollupAggregate(perEvent: string, windowSize: number): string {
  return `SELECT organization_id, metric_id, metric_version, customer_id,
      ${MINUTE_BUCKET} AS bucket, g1 AS group_1, g2 AS group_2, kafka_topic, kafka_partition,
      intDiv(kafka_offset, ${sqlNumber(windowSize)}) AS window_id, max(kafka_offset) AS version, ${STATE_AGGREGATES}, entity_id
    FROM (SELECT organization_id, customer_id, entity_id, time_created, time_created_ms, kafka_topic, kafka_partition, kafka_offset,
                 ${perEvent})
    GROUP BY organization_id, metric_id, metric_version, customer_id, entity_id, bucket, group_1, group_2, kafka_topic, kafka_partition, window_id`;
}

/**
 * rollupSelect of several metrics over ONE read of `source` (issue #18): each source row is paired,
 * by ARRAY JOIN, with the metrics whose conditions it meets, carrying that metric's per-event values.
 * Same rows as the UNION ALL of rollupSelect per metric, but ClickHouse analyses and reads the source
 * (and builds its IN sets) once instead of once per metric: on 18.16 the analysis of a UNION branch
 * costs more than the rows of a small live rollup.
 */
export function rollupSelectMany(metrics: MetricDefinition[], source: string, windowSize: number): string {
  if (metrics.length === 1) return rollupSelect(metrics[0]!, source, windowSize);
  const pairs = metrics.map((m) => {
    const { num, dec, str, g1, g2 } = metricEventColumns(m);
    return `tuple(${sqlString(m.metricId)}, toUInt32(${sqlNumber(m.version)}), toFloat64(${num}), toDecimal128(${dec}, 12), toString(${str}), toString(${g1}), toString(${g2}), toUInt8(${metricConditions(m).join(' AND ')}))`;
  });
  return rollupAggregate(
    `tupleElement(m, 1) AS metric_id, tupleElement(m, 2) AS metric_version, tupleElement(m, 3) AS num,
                 tupleElement(m, 4) AS dec, tupleElement(m, 5) AS str, tupleElement(m, 6) AS g1, tupleElement(m, 7) AS g2
          FROM ${source}
          ARRAY JOIN arrayFilter(x -> tupleElement(x, 8) = 1, [${pairs.join(',\n            ')}]) AS m`,
    windowSize,
  );
}
