-- Prepaid credits and coupons (services/billing/README.md, "Credits and coupons"). Both are applied when
-- an invoice is finalized, in the finalizing transaction (services/billing/src/invoices/settle.ts):
-- coupons first (discount lines on the subtotal), then credits (credit lines, by priority).

CREATE TABLE credit_grants (
  organization_id text NOT NULL,
  grant_id        text NOT NULL,
  customer_id     text NOT NULL,
  currency        char(3) NOT NULL,
  amount_minor    bigint NOT NULL CHECK (amount_minor > 0),      -- granted, plus top-ups
  remaining_minor bigint NOT NULL CHECK (remaining_minor >= 0),
  priority        integer NOT NULL DEFAULT 0,                    -- lower is used first
  effective_at    timestamptz NOT NULL,
  expires_at      timestamptz,
  description     text,
  voided_at       timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, grant_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id),
  CHECK (expires_at IS NULL OR expires_at > effective_at)
);
CREATE INDEX credit_grants_customer ON credit_grants (organization_id, customer_id, priority, effective_at);

-- The balance history: every grant, top-up, application to an invoice and void, with the amount.
CREATE TABLE credit_transactions (
  organization_id text NOT NULL,
  transaction_id  text NOT NULL,
  grant_id        text NOT NULL,
  customer_id     text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('grant', 'top_up', 'applied', 'void')),
  amount_minor    bigint NOT NULL,                               -- + adds to the balance, - takes from it
  invoice_id      text,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (organization_id, transaction_id)
);
CREATE INDEX credit_transactions_customer ON credit_transactions (organization_id, customer_id, created_at);

CREATE TABLE coupons (
  organization_id  text NOT NULL,
  coupon_id        text NOT NULL,
  name             text NOT NULL,
  percent_off      numeric(7, 4) CHECK (percent_off > 0 AND percent_off <= 100),
  amount_off_minor bigint CHECK (amount_off_minor > 0),
  currency         char(3),
  duration         text NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
  duration_periods integer CHECK (duration_periods > 0),
  max_redemptions  integer CHECK (max_redemptions > 0),
  times_redeemed   integer NOT NULL DEFAULT 0,
  redeem_by        timestamptz,
  archived_at      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, coupon_id),
  CHECK ((percent_off IS NULL) <> (amount_off_minor IS NULL)),
  CHECK (amount_off_minor IS NULL OR currency IS NOT NULL),
  CHECK ((duration = 'repeating') = (duration_periods IS NOT NULL))
);

CREATE TABLE coupon_redemptions (
  organization_id text NOT NULL,
  redemption_id   text NOT NULL,
  coupon_id       text NOT NULL,
  customer_id     text NOT NULL,
  subscription_id text,                                          -- null: every invoice of the customer
  invoices_applied integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, redemption_id),
  FOREIGN KEY (organization_id, coupon_id) REFERENCES coupons (organization_id, coupon_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id)
);
CREATE INDEX coupon_redemptions_customer ON coupon_redemptions (organization_id, customer_id);
