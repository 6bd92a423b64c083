-- Entities (services/billing/README.md "Entities", services/aggregator/README.md): an event may carry an
-- entity_id (a seat, a workspace of its customer; '' = customer-level). Raw rows keep it; the rollups key
-- on it, so usage can be read per entity, and a customer's total (no entity condition) is still the sum
-- over all its entities and its customer-level events. Runs on 18.16 and a current LTS.
ALTER TABLE {db}.events
    ADD COLUMN entity_id String DEFAULT '';

ALTER TABLE {db}.events_by_offset
    ADD COLUMN entity_id String DEFAULT '';

-- Run with the aggregators stopped (setup does, before the services start: npm start, stack.sh): between
-- this DROP and the CREATE below, rows inserted into events would not reach events_by_offset, and the
-- rollups read events_by_offset. The same holds for 0005, which re-creates this view too.
DROP TABLE IF EXISTS {db}.events_by_offset_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.events_by_offset_mv TO {db}.events_by_offset AS
SELECT kafka_topic, kafka_partition, kafka_offset, organization_id, customer_id, event_name, time_created,
       time_created_ms, received_at_ms, ingested_at, prop_keys, prop_values, prop_number_values, prop_is_number,
       prop_decimal_values, entity_id
FROM {db}.events;

-- entity_id joins the rollup key (Invariant A: one row = the complete state of one key over one offset
-- window). The sort key can only grow at its end, by a column added in the same ALTER without a default
-- expression (a String's implicit default is '' all the same): rows written before read entity_id ''.
ALTER TABLE {db}.metric_usage
    ADD COLUMN entity_id String,
    MODIFY ORDER BY (organization_id, metric_id, metric_version, customer_id, bucket, group_1, group_2, kafka_topic, kafka_partition, window_id, entity_id);
