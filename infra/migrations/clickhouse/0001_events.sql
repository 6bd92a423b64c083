-- Raw events: one row per counted event. Analysts query this table (docs/analytics.md).
-- Sorted for per-customer, per-time-range reads; the Kafka partition/offset say where a row came from.
CREATE TABLE IF NOT EXISTS {db}.events
(
    organization_id String,
    customer_id     String,
    event_name      String,
    idempotency_id  String,
    time_created    DateTime,
    time_created_ms UInt64,
    received_at     DateTime,
    ingested_at     DateTime DEFAULT now(),
    properties      String,
    source          String,
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time_created)
ORDER BY (organization_id, customer_id, time_created, event_name, idempotency_id);
