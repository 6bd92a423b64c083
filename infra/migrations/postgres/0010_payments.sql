-- Payments of invoices (services/billing/src/payments): one row per charge or refund through a payment
-- provider (built in: `manual`, i.e. recorded through the API). An invoice is marked paid, in the same
-- transaction, when its succeeded payments minus refunds cover its total.
CREATE TABLE invoice_payments (
  organization_id text NOT NULL,
  payment_id      text NOT NULL,
  invoice_id      text NOT NULL,
  provider        text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('charge', 'refund')),
  status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  amount_minor    bigint NOT NULL CHECK (amount_minor > 0),
  currency        char(3) NOT NULL,
  reference       text,                   -- the provider's id (or the caller's, for manual)
  note            text,
  refunds         text,                   -- kind refund: the payment it refunds
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (organization_id, payment_id),
  FOREIGN KEY (organization_id, invoice_id) REFERENCES invoices (organization_id, invoice_id)
);
CREATE INDEX invoice_payments_invoice ON invoice_payments (organization_id, invoice_id, created_at);
CREATE UNIQUE INDEX invoice_payments_reference ON invoice_payments (organization_id, provider, reference) WHERE reference IS NOT NULL;
