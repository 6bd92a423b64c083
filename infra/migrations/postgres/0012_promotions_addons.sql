-- Promotional entitlements and add-ons (issue #15 items 2-3; services/billing/README.md, "Promotional
-- entitlements" and "Add-ons").

-- A feature granted to one customer outside any plan, until expires_at (NULL = lifetime). One row per
-- (customer, feature): granting again replaces it; revoking sets revoked_at. Whether it is in force is
-- decided at read time (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now)), never by a job.
CREATE TABLE promotional_entitlements (
  organization_id text        NOT NULL REFERENCES organizations (id),
  customer_id     text        NOT NULL,
  feature_id      text        NOT NULL,
  usage_limit     numeric,                                  -- metered features; NULL with unlimited or boolean
  unlimited       boolean     NOT NULL DEFAULT false,
  reset_period    text        NOT NULL DEFAULT 'never' CHECK (reset_period IN ('day', 'week', 'month', 'year', 'never')),
  period          text        NOT NULL,                     -- one_week ... lifetime, custom (how expires_at was given)
  granted_at      timestamptz NOT NULL,                     -- usage windows are anchored here
  expires_at      timestamptz,
  revoked_at      timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, customer_id, feature_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id)
);

-- Plans are base plans or add-ons (attached to a base subscription with a quantity).
ALTER TABLE plans ADD COLUMN plan_type text NOT NULL DEFAULT 'base' CHECK (plan_type IN ('base', 'add_on'));

-- An add-on on a subscription, as segments of constant quantity: [started_at, ended_at). Changing the
-- quantity ends the open segment and starts a new one at the same instant; removing ends it. Invoices
-- price each segment's overlap with a period (prorated), so history is never rewritten.
CREATE TABLE subscription_add_ons (
  organization_id text        NOT NULL REFERENCES organizations (id),
  segment_id      text        NOT NULL,
  subscription_id text        NOT NULL,
  add_on_id       text        NOT NULL,                     -- the add-on plan's plan_id
  plan_version    integer     NOT NULL,
  quantity        integer     NOT NULL CHECK (quantity > 0),
  started_at      timestamptz NOT NULL,
  ended_at        timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, segment_id),
  FOREIGN KEY (organization_id, subscription_id) REFERENCES subscriptions (organization_id, subscription_id),
  CHECK (ended_at IS NULL OR ended_at >= started_at)
);
-- at most one open segment per (subscription, add-on)
CREATE UNIQUE INDEX subscription_add_ons_open ON subscription_add_ons (organization_id, subscription_id, add_on_id) WHERE ended_at IS NULL;
CREATE INDEX subscription_add_ons_by_sub ON subscription_add_ons (organization_id, subscription_id, started_at);
