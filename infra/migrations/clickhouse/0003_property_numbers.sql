-- ClickHouse 18.16 crashes (segfault) when indexing an EMPTY Array(Nullable(Float64)), e.g.
-- prop_numbers[indexOf(prop_keys, 'x')] on an event without properties. Numeric property values
-- therefore live in a plain Array(Float64) with a parallel 0/1 mask saying which values are numbers.
DROP TABLE IF EXISTS {db}.events_by_offset_mv;

DROP TABLE IF EXISTS {db}.events_by_offset;

ALTER TABLE {db}.events
    DROP COLUMN prop_numbers,
    ADD COLUMN prop_number_values Array(Float64),
    ADD COLUMN prop_is_number Array(UInt8);

CREATE TABLE IF NOT EXISTS {db}.events_by_offset
(
    kafka_topic        String,
    kafka_partition    UInt32,
    kafka_offset       UInt64,
    organization_id    String,
    customer_id        String,
    event_name         String,
    time_created       DateTime,
    time_created_ms    UInt64,
    received_at_ms     UInt64,
    ingested_at        DateTime,
    prop_keys          Array(String),
    prop_values        Array(String),
    prop_number_values Array(Float64),
    prop_is_number     Array(UInt8)
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(ingested_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_offset_mv TO {db}.events_by_offset AS
SELECT kafka_topic, kafka_partition, kafka_offset, organization_id, customer_id, event_name, time_created,
       time_created_ms, received_at_ms, ingested_at, prop_keys, prop_values, prop_number_values, prop_is_number
FROM {db}.events;
