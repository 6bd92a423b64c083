-- Hosted checkouts (services/billing/README.md, "Checkout, portal and hosted payment providers"):
-- plan_version: the plan version whose first invoice the provider was asked to collect (fixed at attach);
-- the subscription is created on it. NULL for checkouts opened before this migration (the current version).
-- completion_started_at: set (under the row lock) by the first completion attempt; from then on a cancel
-- is refused, so a checkout never ends canceled while its subscription exists.
ALTER TABLE checkouts ADD COLUMN plan_version integer;
ALTER TABLE checkouts ADD COLUMN completion_started_at timestamptz;
