-- Outbound webhooks (services/billing/README.md, "Webhooks"): endpoints per organization, an outbox of
-- events written in the transaction of the change that caused them, one delivery per (event, endpoint)
-- and a log of every attempt. Delivered by services/billing/src/webhooks/worker.ts (Standard Webhooks).

CREATE TABLE webhook_endpoints (
  organization_id          text NOT NULL REFERENCES organizations (id),
  endpoint_id              text NOT NULL,
  url                      text NOT NULL,
  description              text,
  event_types              text[] NOT NULL DEFAULT '{}',   -- empty = every event type
  enabled                  boolean NOT NULL DEFAULT true,
  disabled_reason          text,
  -- signing secrets in clear (whsec_<base64>): a signature needs the key itself, unlike API keys (hashed)
  secret                   text NOT NULL,
  previous_secret          text,
  previous_secret_expires_at timestamptz,                  -- rotation overlap: both sign until then
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  deleted_at               timestamptz,
  PRIMARY KEY (organization_id, endpoint_id)
);

-- The outbox. event_id is the webhook-id header (msg_...), stable across retries and re-sends.
CREATE TABLE webhook_events (
  organization_id text NOT NULL REFERENCES organizations (id),
  event_id        text NOT NULL,
  type            text NOT NULL,
  payload         jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (organization_id, event_id)
);
CREATE INDEX webhook_events_created ON webhook_events (organization_id, created_at);

CREATE TABLE webhook_deliveries (
  delivery_id        text PRIMARY KEY,
  organization_id    text NOT NULL,
  event_id           text NOT NULL,
  endpoint_id        text NOT NULL,
  status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'abandoned')),
  attempts           integer NOT NULL DEFAULT 0,            -- every attempt ever (the log's numbering)
  schedule_base      integer NOT NULL DEFAULT 0,            -- attempts at the last manual re-send: the retry schedule restarts
  next_attempt_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_attempt_at    timestamptz,
  last_status_code   integer,
  last_response_ms   integer,
  last_response_body text,                                  -- truncated to 1 KiB
  last_error         text,
  delivered_at       timestamptz,
  created_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (organization_id, event_id, endpoint_id),
  FOREIGN KEY (organization_id, event_id) REFERENCES webhook_events (organization_id, event_id),
  FOREIGN KEY (organization_id, endpoint_id) REFERENCES webhook_endpoints (organization_id, endpoint_id)
);
-- the worker's claim: due pending deliveries, oldest due first
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (organization_id, endpoint_id, created_at DESC);

-- Every attempt (the delivery log per endpoint).
CREATE TABLE webhook_attempts (
  organization_id text NOT NULL,
  delivery_id     text NOT NULL REFERENCES webhook_deliveries (delivery_id),
  attempt         integer NOT NULL,
  attempted_at    timestamptz NOT NULL,
  status_code     integer,
  response_ms     integer NOT NULL,
  response_body   text,
  error           text,
  PRIMARY KEY (delivery_id, attempt)
);
