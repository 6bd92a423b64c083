-- Invoicing is idempotent (services/billing/src/invoices/issue.ts): the scheduler closes a period under
-- the subscription's row lock (SELECT ... FOR UPDATE SKIP LOCKED) in the same transaction that advances
-- the subscription. These indexes make "a period is invoiced once" a database invariant as well: a
-- second period_close for the same (subscription, period_start), or a second subscription_start, fails
-- the transaction that tried it (which then advances nothing).
CREATE UNIQUE INDEX IF NOT EXISTS invoices_one_period_close
  ON invoices (organization_id, subscription_id, period_start) WHERE reason = 'period_close';
CREATE UNIQUE INDEX IF NOT EXISTS invoices_one_subscription_start
  ON invoices (organization_id, subscription_id) WHERE reason = 'subscription_start';
-- the scheduler's work list (invoices/close.ts dueSubscriptions): live rows in keyset order
CREATE INDEX IF NOT EXISTS subscriptions_live ON subscriptions (organization_id, subscription_id) WHERE status <> 'ended';
