-- Core tenancy tables shared by the gateway (API-key auth, Segment settings, identify) and billing.
CREATE TABLE organizations (
  id            text PRIMARY KEY,                 -- 'org_' + random
  name          text NOT NULL,
  -- Segment webhook shared secret; when set, X-Signature is verified on /v1/segment
  segment_shared_secret text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  archived_at   timestamptz
);

CREATE TABLE api_keys (
  id              text PRIMARY KEY,               -- 'key_' + random
  organization_id text NOT NULL REFERENCES organizations(id),
  name            text NOT NULL DEFAULT 'default',
  prefix          text NOT NULL,                  -- first characters, for listing
  key_hash        text NOT NULL UNIQUE,           -- sha256 hex of the whole key; the key itself is never stored
  created_at      timestamptz NOT NULL DEFAULT now(),
  revoked_at      timestamptz
);
CREATE INDEX api_keys_org ON api_keys (organization_id);

CREATE TABLE customers (
  organization_id text NOT NULL REFERENCES organizations(id),
  customer_id     text NOT NULL,
  name            text,
  email           text,
  currency        char(3) NOT NULL DEFAULT 'USD',
  balance_minor   bigint NOT NULL DEFAULT 0,      -- prepaid credit in minor units of `currency`
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  archived_at     timestamptz,
  PRIMARY KEY (organization_id, customer_id)
);

-- Billable metrics: owned by the billing API, read by the aggregator. A change of definition bumps
-- `version`; aggregates are kept per version so that a recompute never mixes definitions.
CREATE TABLE billable_metrics (
  organization_id text NOT NULL REFERENCES organizations(id),
  metric_id       text NOT NULL,
  version         integer NOT NULL DEFAULT 1,
  name            text,
  event_name      text NOT NULL,
  aggregation     text NOT NULL CHECK (aggregation IN ('count', 'sum', 'max', 'unique_count', 'latest')),
  property        text,                           -- required for all but count
  filters         jsonb NOT NULL DEFAULT '[]'::jsonb,
  group_by        jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  archived_at     timestamptz,
  PRIMARY KEY (organization_id, metric_id)
);
CREATE INDEX billable_metrics_updated ON billable_metrics (updated_at);
