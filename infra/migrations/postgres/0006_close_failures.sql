-- Period closes that fail (services/billing/src/invoices/close.ts): the scheduler rolls the close back,
-- records the error here and sets the subscription aside until close_retry_at (exponential backoff from
-- 1 min up to 1 h), so one subscription that cannot close never blocks or slows the queue. A close that
-- succeeds clears the columns in its own transaction. Visible through GET /v1/subscription_close_failures (and
-- GET /v1/subscriptions/:id/close_failure)
-- and the metrics meterline_billing_close_failures_total / meterline_billing_subscriptions_close_failing.
ALTER TABLE subscriptions
  ADD COLUMN close_error     text,
  ADD COLUMN close_failed_at timestamptz,
  ADD COLUMN close_attempts  integer NOT NULL DEFAULT 0,
  ADD COLUMN close_retry_at  timestamptz;
CREATE INDEX subscriptions_close_failing ON subscriptions (organization_id, subscription_id) WHERE close_error IS NOT NULL;
