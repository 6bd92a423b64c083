-- Usage alerts (services/billing/src/alerts/service.ts): a threshold on a metered feature's usage in its
-- usage window, for one customer, the customers of one plan, or every customer of the organization.
-- A crossing is recorded once per (alert, customer, usage window) — the primary key — and its webhook
-- event (usage.threshold_reached) is written in the same transaction, so concurrent evaluations report
-- a crossing exactly once. entitlement.exhausted uses the same table with alert_id 'exhausted:<feature>'.
CREATE TABLE usage_alerts (
  organization_id    text NOT NULL,
  alert_id           text NOT NULL,
  feature_id         text NOT NULL,
  customer_id        text,
  plan_id            text,
  threshold_percent  numeric(7, 4) CHECK (threshold_percent > 0 AND threshold_percent <= 1000),
  threshold_quantity numeric(38, 12) CHECK (threshold_quantity > 0),
  created_at         timestamptz NOT NULL DEFAULT now(),
  archived_at        timestamptz,
  PRIMARY KEY (organization_id, alert_id),
  CHECK ((threshold_percent IS NULL) <> (threshold_quantity IS NULL)),
  CHECK (customer_id IS NULL OR plan_id IS NULL)
);
CREATE INDEX usage_alerts_feature ON usage_alerts (organization_id, feature_id) WHERE archived_at IS NULL;

CREATE TABLE usage_alert_crossings (
  organization_id text NOT NULL,
  alert_id        text NOT NULL,
  customer_id     text NOT NULL,
  window_start    timestamptz NOT NULL,
  usage           text NOT NULL,
  usage_limit     text,
  crossed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (organization_id, alert_id, customer_id, window_start)
);
