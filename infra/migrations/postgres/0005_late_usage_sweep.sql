-- Late usage of subscriptions that have ended (services/billing/src/invoices/lifecycle.ts,
-- runLateUsageSweep): an ended subscription gets no further period invoice, so the worker checks it
-- for usage that reached its finalized periods late (within the gateway's backfill window) at most once
-- an hour, and bills any difference as an adjustment invoice of its own.
ALTER TABLE subscriptions ADD COLUMN late_usage_checked_at timestamptz;
CREATE INDEX subscriptions_ended_recently ON subscriptions (ended_at) WHERE status = 'ended';
