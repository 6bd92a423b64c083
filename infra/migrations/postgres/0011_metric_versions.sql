-- Metric-version history (issue #16 item 4). billable_metrics keeps only the current definition of a
-- metric; the aggregator keeps ClickHouse rollups per (metric_id, metric_version) and invoice lines say
-- which metric_version priced them, so every version's definition is kept here to reconcile a past
-- invoice with the usage it billed.
--
--   - One row per (organization, metric, version): the definition that version aggregated (event_name,
--     aggregation, property, filters, group_by), the metric's name (renames without a definition
--     change update the current version's name: a name is not part of the definition),
--     valid_from = when that version became current, superseded_at = when the next one replaced it
--     (null for the current version). Archiving a metric supersedes nothing.
--   - Written by a trigger on billable_metrics, so in the same transaction as every create and update
--     of a metric, whoever writes it (the billing API, the bench, tests writing rows directly).
--   - Backfill: the CURRENT row of every metric becomes its version (valid_from = created_at for version
--     1, else updated_at: the last write, which is when that version started unless a later rename or
--     archive touched the row). Earlier versions were never stored before this migration: they are lost.
--   - Invoice lines (invoices.line_items jsonb) get a `metric_version` key from now on (issue.ts,
--     lifecycle.ts). Lines written before this migration are NOT backfilled: they read as
--     metric_version null. The version current now need not be the one that priced them, and finalized
--     invoices are frozen (0004's trigger). Drafts get it on their next refresh or at finalization.
CREATE TABLE billable_metric_versions (
  organization_id text NOT NULL,
  metric_id       text NOT NULL,
  version         integer NOT NULL,
  name            text,
  event_name      text NOT NULL,
  aggregation     text NOT NULL,
  property        text,
  filters         jsonb NOT NULL DEFAULT '[]'::jsonb,
  group_by        jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  valid_from      timestamptz NOT NULL,
  superseded_at   timestamptz,
  PRIMARY KEY (organization_id, metric_id, version),
  FOREIGN KEY (organization_id, metric_id) REFERENCES billable_metrics (organization_id, metric_id)
);

INSERT INTO billable_metric_versions (organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by,
                                      created_at, valid_from)
  SELECT organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by,
         now(), CASE WHEN version = 1 THEN created_at ELSE updated_at END
    FROM billable_metrics;

CREATE FUNCTION billable_metric_versions_record() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.version IS DISTINCT FROM OLD.version THEN
    -- a new version: the previous current one is superseded when this one starts
    UPDATE billable_metric_versions SET superseded_at = CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE NEW.updated_at END
     WHERE organization_id = NEW.organization_id AND metric_id = NEW.metric_id AND version <> NEW.version AND superseded_at IS NULL;
    INSERT INTO billable_metric_versions (organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by, valid_from)
    VALUES (NEW.organization_id, NEW.metric_id, NEW.version, NEW.name, NEW.event_name, NEW.aggregation, NEW.property, NEW.filters,
            NEW.group_by, CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE NEW.updated_at END)
    ON CONFLICT (organization_id, metric_id, version) DO UPDATE
      SET name = EXCLUDED.name, event_name = EXCLUDED.event_name, aggregation = EXCLUDED.aggregation, property = EXCLUDED.property,
          filters = EXCLUDED.filters, group_by = EXCLUDED.group_by, superseded_at = NULL;
  ELSIF (NEW.name, NEW.event_name, NEW.aggregation, NEW.property, NEW.filters, NEW.group_by)
        IS DISTINCT FROM (OLD.name, OLD.event_name, OLD.aggregation, OLD.property, OLD.filters, OLD.group_by) THEN
    -- same version (a rename; or a direct write that changed the definition without a bump): mirror it
    UPDATE billable_metric_versions
       SET name = NEW.name, event_name = NEW.event_name, aggregation = NEW.aggregation, property = NEW.property,
           filters = NEW.filters, group_by = NEW.group_by
     WHERE organization_id = NEW.organization_id AND metric_id = NEW.metric_id AND version = NEW.version;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billable_metric_versions_record AFTER INSERT OR UPDATE ON billable_metrics
  FOR EACH ROW EXECUTE FUNCTION billable_metric_versions_record();
