-- Invoice lifecycle (services/billing/README.md, "Invoices"): draft -> finalized -> paid | void | uncollectible.
--   draft:      created when a period ends (or a subscription starts, changes plan, is cancelled); its
--               usage lines are refreshed by the billing worker until grace_until, then it is finalized.
--   finalized:  numbered (per organization, gapless: the number is taken in the finalizing transaction),
--               owed; its content never changes again (trigger below).
--   paid / void / uncollectible: end states of a finalized invoice (a draft may be voided too).
ALTER TABLE invoices DROP CONSTRAINT IF EXISTS invoices_status_check;
ALTER TABLE invoices
  ADD COLUMN number           text,
  ADD COLUMN grace_until      timestamptz,
  ADD COLUMN finalized_at     timestamptz,
  ADD COLUMN paid_at          timestamptz,
  ADD COLUMN voided_at        timestamptz,
  ADD COLUMN plan_id          text,
  ADD COLUMN plan_version     integer,
  -- Kafka end offsets observed once the grace period was over: the draft is finalized only when the
  -- aggregator's watermarks have passed them (every event acknowledged until then is in the usage)
  ADD COLUMN finalize_offsets jsonb,
  ADD COLUMN refreshed_at     timestamptz,
  ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now();
-- invoices written before this migration were final at once ('issued')
UPDATE invoices SET status = 'finalized', finalized_at = created_at WHERE status = 'issued';
ALTER TABLE invoices ADD CONSTRAINT invoices_status_check CHECK (status IN ('draft', 'finalized', 'paid', 'void', 'uncollectible'));

CREATE TABLE invoice_numbers (
  organization_id text PRIMARY KEY REFERENCES organizations(id),
  last_number     bigint NOT NULL
);
WITH numbered AS (
  SELECT organization_id, invoice_id, row_number() OVER (PARTITION BY organization_id ORDER BY created_at, invoice_id) AS n
    FROM invoices WHERE status <> 'draft'
)
UPDATE invoices i SET number = 'INV-' || lpad(numbered.n::text, 6, '0')
  FROM numbered WHERE i.organization_id = numbered.organization_id AND i.invoice_id = numbered.invoice_id;
INSERT INTO invoice_numbers (organization_id, last_number)
  SELECT organization_id, count(*) FROM invoices WHERE number IS NOT NULL GROUP BY organization_id;
CREATE UNIQUE INDEX invoices_number ON invoices (organization_id, number) WHERE number IS NOT NULL;
CREATE INDEX invoices_drafts ON invoices (grace_until) WHERE status = 'draft';

-- What has been billed per (subscription, period, usage line): late usage is billed as the difference
-- against this, once (an adjustment updates it in the transaction that finalizes the adjustment).
CREATE TABLE billed_usage (
  organization_id text NOT NULL,
  subscription_id text NOT NULL,
  period_start    timestamptz NOT NULL,
  line_key        text NOT NULL,          -- metric_id and group values of the usage line
  quantity        text NOT NULL,          -- exact decimal
  amount_minor    bigint NOT NULL,
  invoice_id      text NOT NULL,          -- the invoice that billed it last
  PRIMARY KEY (organization_id, subscription_id, period_start, line_key)
);

ALTER TABLE organizations ADD COLUMN invoice_grace_seconds integer NOT NULL DEFAULT 3600
  CHECK (invoice_grace_seconds >= 0 AND invoice_grace_seconds <= 2592000);

-- A finalized invoice never changes: only its status may move on (and the timestamps that record it).
CREATE FUNCTION invoices_final_content() RETURNS trigger AS $$
BEGIN
  IF OLD.status <> 'draft' AND (
       NEW.line_items IS DISTINCT FROM OLD.line_items OR NEW.total_minor IS DISTINCT FROM OLD.total_minor
    OR NEW.number IS DISTINCT FROM OLD.number OR NEW.period_start IS DISTINCT FROM OLD.period_start
    OR NEW.period_end IS DISTINCT FROM OLD.period_end OR NEW.currency IS DISTINCT FROM OLD.currency
    OR NEW.customer_id IS DISTINCT FROM OLD.customer_id) THEN
    RAISE EXCEPTION 'invoice % is %: its content cannot change', OLD.invoice_id, OLD.status USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.status IN ('paid', 'void') AND NEW.status IS DISTINCT FROM OLD.status THEN
    RAISE EXCEPTION 'invoice % is %: final', OLD.invoice_id, OLD.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER invoices_final_content BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_final_content();
