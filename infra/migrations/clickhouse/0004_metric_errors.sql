-- A metric version whose SQL ClickHouse refuses is marked status 'invalid' (status_rank 3, wins over
-- running/done) with the error, instead of being retried forever (services/aggregator/src/metric-health.ts).
ALTER TABLE {db}.metric_backfills
    ADD COLUMN error String DEFAULT '';
