// Settings of the aggregator's ClickHouse client (every INSERT it makes: raw events, rollups, backfills,
// dead letters, window sizes).
//
// insert_deduplicate = 0. On a cluster (issue #13) the tables are Replicated*MergeTree, which by default
// drop an INSERT block identical to one of the last ~100 blocks (a checksum stored in ZooKeeper/Keeper).
// The aggregator never relies on that: its exactly-once argument (README) deduplicates by Kafka offset and
// by each table's sort key, exactly as on one server, where plain MergeTree drops nothing. It must not
// have it either: a block skipped in `events` is ALSO not pushed to the materialized view feeding
// `events_by_offset` (ClickHouse's documented behaviour: dependent views are not written for a block
// deduplicated in the source table). So an INSERT whose source-table part committed but whose view part
// did not (a failure or timeout between the two) and which is then retried — the normal recovery — would
// leave the events in `events` (raw counts exact) but missing from `events_by_offset`, hence from every
// rollup, for good. With it off, a retried block is written again to both; the duplicates are what a
// replay after a crash produces on one server, and every reader already collapses them.
// (The cluster drill checks this on the real replicated tables: test/cluster/dedup-check.ts.)
import type { ClickHouseSettings } from '@meterline/core';

export const AGGREGATOR_CLICKHOUSE_SETTINGS: ClickHouseSettings = { insert_deduplicate: 0 };
