-- Entities (services/billing/README.md "Entities"): sub-accounts of a customer (seats, workspaces) with
-- their own usage (events carry entity_id) and, for plan entitlements marked per_entity, their own
-- balances. Deleting one is soft (deleted_at): its usage stays in ClickHouse and still counts toward the
-- customer; creating the same entity_id again restores it.
CREATE TABLE entities (
  organization_id text NOT NULL,
  customer_id     text NOT NULL,
  entity_id       text NOT NULL,
  name            text,
  feature_id      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  deleted_at      timestamptz,
  PRIMARY KEY (organization_id, customer_id, entity_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id)
);

-- the check path counts a customer's active entities (limit x active entities without entity_id)
CREATE INDEX entities_active ON entities (organization_id, customer_id) WHERE deleted_at IS NULL;
