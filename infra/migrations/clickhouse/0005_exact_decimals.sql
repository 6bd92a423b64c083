-- Exact quantities (issue #17): numeric property values as exact decimal text next to the Float64
-- (prop_decimal_values, written by the aggregator from the event's own number text), and exact sums and
-- maxima in the rollups as Decimal(38, 12): 12 fractional digits, |value| < 10^26 (services/aggregator/README.md).
-- Rows written before this migration get both from their Float64 columns (rounded to 12 digits, exact
-- to the ~15-16 significant digits a Float64 holds); recomputing a metric's rollups from the events
-- (the aggregator's backfill) makes them exact. Runs on 18.16 and a current LTS.
ALTER TABLE {db}.events
    ADD COLUMN prop_decimal_values Array(String)
        DEFAULT arrayMap(x -> toString(toDecimal128(if(abs(x) < 1e26, x, 0), 12)), prop_number_values);

ALTER TABLE {db}.events_by_offset
    ADD COLUMN prop_decimal_values Array(String)
        DEFAULT arrayMap(x -> toString(toDecimal128(if(abs(x) < 1e26, x, 0), 12)), prop_number_values);

DROP TABLE IF EXISTS {db}.events_by_offset_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_offset_mv TO {db}.events_by_offset AS
SELECT kafka_topic, kafka_partition, kafka_offset, organization_id, customer_id, event_name, time_created,
       time_created_ms, received_at_ms, ingested_at, prop_keys, prop_values, prop_number_values, prop_is_number,
       prop_decimal_values
FROM {db}.events;

ALTER TABLE {db}.metric_usage
    ADD COLUMN sum_decimal Decimal(38, 12) DEFAULT toDecimal128(if(abs(sum_value) < 1e26, sum_value, 0), 12),
    ADD COLUMN max_decimal Decimal(38, 12) DEFAULT toDecimal128(if(abs(max_value) < 1e26, max_value, 0), 12);
