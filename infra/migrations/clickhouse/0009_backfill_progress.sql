-- Backfills run in bounded time slices, newest first (services/aggregator/README.md "Metric versions and
-- backfill"): while a version's backfill is incomplete, each finished slice records how far back it has
-- covered, so a restart resumes there instead of starting over (completed versions, status 'done', are
-- never redone). resume_before = epoch seconds, minute-aligned: every minute bucket at or after it has
-- been recomputed; 0 = no slice recorded yet. Runs on 18.16 and current LTS.
ALTER TABLE {db}.metric_backfills
    ADD COLUMN resume_before UInt32 DEFAULT 0;
