-- Aggregator (services/aggregator/README.md): raw events gain their Kafka topic and parsed properties,
-- an offset-ordered staging copy for progress reads and window recomputes, idempotent metric rollups,
-- backfill status and dead letters. Runs on ClickHouse 18.16 and current LTS (no TTL, no IF NOT EXISTS
-- on ADD COLUMN: this migration runs once per database, recorded in schema_migrations).

-- Which topic a row came from (offsets are per topic and partition), parsed properties for exact and
-- fast filters: keys, values as text (numbers as JSON numbers print, booleans true/false), numeric
-- values (NULL when the value is not a number).
ALTER TABLE {db}.events
    ADD COLUMN kafka_topic String DEFAULT '',
    ADD COLUMN received_at_ms UInt64 DEFAULT 0,
    ADD COLUMN prop_keys Array(String),
    ADD COLUMN prop_values Array(String),
    ADD COLUMN prop_numbers Array(Nullable(Float64));

-- Staging copy of recent raw rows in Kafka order: max(kafka_offset) per partition is the sink's
-- progress, and rollup windows are recomputed from here. Day partitions by ingestion; the aggregator
-- drops old days itself (no TTL on 18.16), only once no window that could be recomputed needs them.
CREATE TABLE IF NOT EXISTS {db}.events_by_offset
(
    kafka_topic     String,
    kafka_partition UInt32,
    kafka_offset    UInt64,
    organization_id String,
    customer_id     String,
    event_name      String,
    time_created    DateTime,
    time_created_ms UInt64,
    received_at_ms  UInt64,
    ingested_at     DateTime,
    prop_keys       Array(String),
    prop_values     Array(String),
    prop_numbers    Array(Nullable(Float64))
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(ingested_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_offset_mv TO {db}.events_by_offset AS
SELECT kafka_topic, kafka_partition, kafka_offset, organization_id, customer_id, event_name, time_created,
       time_created_ms, received_at_ms, ingested_at, prop_keys, prop_values, prop_numbers
FROM {db}.events;

-- Metric rollups. One row = the complete state of one key over the events of one offset window
-- [window_id*W, version] of one Kafka partition; recomputing is idempotent and FINAL keeps the row with
-- the highest version (the most complete). Read only with FINAL (core's queryUsage does).
CREATE TABLE IF NOT EXISTS {db}.metric_usage
(
    organization_id String,
    metric_id       String,
    metric_version  UInt32,
    customer_id     String,
    bucket          DateTime('UTC'),
    group_1         String,
    group_2         String,
    kafka_topic     String,
    kafka_partition UInt32,
    window_id       UInt64,
    version         UInt64,
    event_count     UInt64,
    sum_value       Float64,
    max_value       Float64,
    uniq_state      AggregateFunction(uniqExact, String),
    latest_state    AggregateFunction(argMax, Float64, Tuple(UInt64, UInt32, UInt64)),
    computed_at     DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(bucket)
ORDER BY (organization_id, metric_id, metric_version, customer_id, bucket, group_1, group_2, kafka_topic, kafka_partition, window_id);

-- Backfill status per metric version: status_rank 1 = running, 2 = done (done wins under FINAL).
CREATE TABLE IF NOT EXISTS {db}.metric_backfills
(
    organization_id String,
    metric_id       String,
    metric_version  UInt32,
    status          String,
    status_rank     UInt8,
    rows_written    UInt64,
    updated_at      DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(status_rank)
ORDER BY (organization_id, metric_id, metric_version);

-- Dead letters: records that could not be decoded or were invalid. organization_id is '' when the
-- record could not be attributed (visible to no organization).
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    organization_id  String,
    customer_id      String,
    event_name       String,
    idempotency_id   String,
    reason           String,
    error            String,
    payload_base64   String,
    kafka_topic      String,
    kafka_partition  UInt32,
    kafka_offset     UInt64,
    dead_lettered_at DateTime
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(dead_lettered_at)
ORDER BY (organization_id, kafka_topic, kafka_partition, kafka_offset);
