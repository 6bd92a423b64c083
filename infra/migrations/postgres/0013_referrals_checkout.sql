-- Referrals and hosted checkouts (services/billing/README.md, "Referrals" and "Checkout, portal and hosted
-- payment providers").

-- A referral program: what a redemption gives the referrer (the code's owner) and the redeemer, each a
-- coupon (redeemed for the customer) and/or a credit grant; at most max_redemptions per code; no
-- redemptions after expires_at or once archived.
CREATE TABLE referral_programs (
  organization_id               text NOT NULL,
  program_id                    text NOT NULL,
  name                          text NOT NULL,
  referrer_coupon_id            text,
  referrer_credit_minor         bigint CHECK (referrer_credit_minor > 0),
  referrer_credit_currency      char(3),
  referrer_credit_expires_days  integer CHECK (referrer_credit_expires_days > 0),
  redeemer_coupon_id            text,
  redeemer_credit_minor         bigint CHECK (redeemer_credit_minor > 0),
  redeemer_credit_currency      char(3),
  redeemer_credit_expires_days  integer CHECK (redeemer_credit_expires_days > 0),
  max_redemptions               integer CHECK (max_redemptions > 0),         -- per code; null: unlimited
  expires_at                    timestamptz,
  archived_at                   timestamptz,
  created_at                    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, program_id),
  FOREIGN KEY (organization_id, referrer_coupon_id) REFERENCES coupons (organization_id, coupon_id),
  FOREIGN KEY (organization_id, redeemer_coupon_id) REFERENCES coupons (organization_id, coupon_id),
  CHECK ((referrer_credit_minor IS NULL) = (referrer_credit_currency IS NULL)),
  CHECK ((redeemer_credit_minor IS NULL) = (redeemer_credit_currency IS NULL)),
  CHECK (referrer_coupon_id IS NOT NULL OR referrer_credit_minor IS NOT NULL OR redeemer_coupon_id IS NOT NULL OR redeemer_credit_minor IS NOT NULL)
);

-- One stable code per (program, customer); times_redeemed is taken under the row's lock.
CREATE TABLE referral_codes (
  organization_id text NOT NULL,
  code            text NOT NULL,
  program_id      text NOT NULL,
  customer_id     text NOT NULL,
  times_redeemed  integer NOT NULL DEFAULT 0 CHECK (times_redeemed >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, code),
  UNIQUE (organization_id, program_id, customer_id),
  FOREIGN KEY (organization_id, program_id) REFERENCES referral_programs (organization_id, program_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id)
);

-- A customer is referred at most once per program; the rewards granted are named by their ids.
CREATE TABLE referral_redemptions (
  organization_id               text NOT NULL,
  redemption_id                 text NOT NULL,
  code                          text NOT NULL,
  program_id                    text NOT NULL,
  referrer_id                   text NOT NULL,
  customer_id                   text NOT NULL,
  referrer_coupon_redemption_id text,
  referrer_credit_grant_id      text,
  redeemer_coupon_redemption_id text,
  redeemer_credit_grant_id      text,
  created_at                    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, redemption_id),
  UNIQUE (organization_id, program_id, customer_id),
  FOREIGN KEY (organization_id, code) REFERENCES referral_codes (organization_id, code),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id),
  CHECK (referrer_id <> customer_id)
);
CREATE INDEX referral_redemptions_code ON referral_redemptions (organization_id, code, created_at);

-- A hosted checkout opened by POST /v1/attach with a provider that collects payment first: the
-- subscription (its id reserved here) is created when the checkout completes.
CREATE TABLE checkouts (
  organization_id    text NOT NULL,
  checkout_id        text NOT NULL,
  customer_id        text NOT NULL,
  plan_id            text NOT NULL,
  subscription_id    text NOT NULL,
  provider           text NOT NULL,
  status             text NOT NULL CHECK (status IN ('open', 'completed', 'expired', 'canceled')),
  options            jsonb NOT NULL,          -- start_date, end_date, auto_renew of the subscription to create
  start_date         timestamptz,             -- fixed by the first completion attempt (or options.start_date)
  amount_due_minor   bigint NOT NULL,
  currency           char(3) NOT NULL,
  success_url        text,
  payment_url        text,
  provider_reference text,
  expires_at         timestamptz,
  completed_at       timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, checkout_id),
  UNIQUE (organization_id, subscription_id),
  FOREIGN KEY (organization_id, customer_id) REFERENCES customers (organization_id, customer_id)
);
CREATE INDEX checkouts_customer ON checkouts (organization_id, customer_id, created_at);
CREATE UNIQUE INDEX checkouts_reference ON checkouts (organization_id, provider, provider_reference) WHERE provider_reference IS NOT NULL;
