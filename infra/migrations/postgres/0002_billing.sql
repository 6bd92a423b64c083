-- Billing catalog: features, versioned plans, subscriptions, invoices (owned by services/billing).
-- Money: prices are decimal strings inside plan JSON (sub-cent unit prices allowed); amounts that are
-- owed (invoice lines, totals) are BIGINT minor units of the invoice currency. Never floats.

CREATE TABLE features (
  organization_id text NOT NULL REFERENCES organizations(id),
  feature_id      text NOT NULL,
  name            text,
  type            text NOT NULL CHECK (type IN ('boolean', 'metered')),
  metric_id       text,                            -- metered features only
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  archived_at     timestamptz,
  PRIMARY KEY (organization_id, feature_id),
  FOREIGN KEY (organization_id, metric_id) REFERENCES billable_metrics (organization_id, metric_id),
  CHECK ((type = 'metered') = (metric_id IS NOT NULL))
);

CREATE TABLE plans (
  organization_id text NOT NULL REFERENCES organizations(id),
  plan_id         text NOT NULL,
  current_version integer NOT NULL DEFAULT 1,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  archived_at     timestamptz,
  PRIMARY KEY (organization_id, plan_id)
);

-- Every edit of a plan inserts a new version; subscriptions point at the version they were sold.
CREATE TABLE plan_versions (
  organization_id text NOT NULL,
  plan_id         text NOT NULL,
  version         integer NOT NULL,
  name            text NOT NULL,
  billing_interval text NOT NULL CHECK (billing_interval IN ('week', 'month', 'quarter', 'year')),
  currency        char(3) NOT NULL,
  flat_fee        numeric NOT NULL DEFAULT 0,      -- major units, exact decimal
  flat_fee_timing text NOT NULL DEFAULT 'in_advance' CHECK (flat_fee_timing IN ('in_advance', 'in_arrears')),
  trial_days      integer NOT NULL DEFAULT 0,
  components      jsonb NOT NULL DEFAULT '[]'::jsonb,
  entitlements    jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, plan_id, version),
  FOREIGN KEY (organization_id, plan_id) REFERENCES plans (organization_id, plan_id)
);

CREATE TABLE subscriptions (
  organization_id      text NOT NULL,
  subscription_id      text NOT NULL,
  customer_id          text NOT NULL,
  plan_id              text NOT NULL,
  plan_version         integer NOT NULL,
  status               text NOT NULL CHECK (status IN ('not_started', 'active', 'ended')),
  start_date           timestamptz NOT NULL,
  end_date             timestamptz,                -- requested end; null = open-ended
  auto_renew           boolean NOT NULL DEFAULT true,
  current_period_start timestamptz NOT NULL,
  current_period_end   timestamptz NOT NULL,
  plan_started_at      timestamptz NOT NULL,       -- when the current plan took over (proration)
  trial_end            timestamptz,
  ended_at             timestamptz,
  end_reason           text,
  replaced_by          text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, subscription_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id),
  FOREIGN KEY (organization_id, plan_id, plan_version) REFERENCES plan_versions (organization_id, plan_id, version)
);
CREATE INDEX subscriptions_customer ON subscriptions (organization_id, customer_id, status);
CREATE INDEX subscriptions_due ON subscriptions (current_period_end) WHERE status <> 'ended';

CREATE TABLE invoices (
  organization_id text NOT NULL,
  invoice_id      text NOT NULL,
  customer_id     text NOT NULL,
  subscription_id text,
  status          text NOT NULL CHECK (status IN ('issued', 'paid', 'void')),
  currency        char(3) NOT NULL,
  period_start    timestamptz NOT NULL,
  period_end      timestamptz NOT NULL,
  reason          text NOT NULL,                    -- subscription_start, period_close, plan_change, cancel
  total_minor     bigint NOT NULL,
  line_items      jsonb NOT NULL DEFAULT '[]'::jsonb, -- [{description, metric_id?, quantity, unit_price?, amount_minor}]
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, invoice_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id)
);
CREATE INDEX invoices_customer ON invoices (organization_id, customer_id, created_at);
