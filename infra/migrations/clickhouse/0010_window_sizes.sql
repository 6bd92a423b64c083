-- The offset window size recorded per events topic (services/aggregator/src/window-sizes.ts, README "One
-- window size per topic"). Until 0010 the aggregator created this table itself, as a plain MergeTree: on a
-- cluster (issue #13) that table existed only on the replica the first aggregator used, so an aggregator
-- on the other replica could record a second size unseen. Created here, it is shaped like every other
-- table (ReplicatedMergeTree ON CLUSTER on a cluster; packages/core/src/setup/cluster.ts). IF NOT EXISTS:
-- on a server where an aggregator already created it, the existing table (same columns) is kept.
CREATE TABLE IF NOT EXISTS {db}.aggregator_window_sizes
(
    kafka_topic String,
    window_size UInt64,
    recorded_at DateTime('UTC')
)
ENGINE = MergeTree()
ORDER BY kafka_topic;
