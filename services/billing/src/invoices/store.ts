// Invoices in Postgres (migrations 0002, 0003, 0004_invoice_lifecycle). Lifecycle rules are in
// lifecycle.ts; this module only reads and writes rows.
import type { PgClient, PgPool } from '@meterline/core';
import { fromMinor } from '../money.ts';
import type { LineItem } from '../pricing.ts';

export type InvoiceStatus = 'draft' | 'finalized' | 'paid' | 'void' | 'uncollectible';

/** Late usage of an earlier, finalized period, billed on a later invoice (lifecycle.ts). */
export interface AdjustmentLine {
  kind: 'usage_adjustment';
  description: string;
  metric_id?: string;
  /** the metric version whose rollups priced the period's usage now (metric-version history: migration 0011) */
  metric_version?: number;
  group?: Record<string, string>;
  /** the change of the billed quantity (exact decimal; negative when usage went down) */
  quantity: string;
  amount: string;
  amount_minor: string;
  /** the period whose usage it adjusts */
  period_start: string;
  period_end: string;
}

/** A coupon's discount or a prepaid credit applied at finalization (settle.ts). */
export interface SettlementLine {
  kind: 'discount' | 'credit';
  description: string;
  quantity: string;
  amount: string;
  amount_minor: string;
  coupon_id?: string;
  grant_id?: string;
  metric_id?: undefined;
  metric_version?: undefined;
  group?: undefined;
}

export type InvoiceLine = LineItem | AdjustmentLine | SettlementLine;

export interface InvoiceRow {
  invoice_id: string;
  number: string | null;
  customer_id: string;
  subscription_id: string | null;
  status: InvoiceStatus;
  currency: string;
  period_start: Date;
  period_end: Date;
  reason: string;
  total_minor: string;
  line_items: InvoiceLine[];
  plan_id: string | null;
  plan_version: number | null;
  grace_until: Date | null;
  finalize_offsets: Record<string, string> | null;
  refreshed_at: Date | null;
  finalized_at: Date | null;
  paid_at: Date | null;
  voided_at: Date | null;
  created_at: Date;
}
const COLS =
  'invoice_id, number, customer_id, subscription_id, status, currency, period_start, period_end, reason, total_minor, line_items, ' +
  'plan_id, plan_version, grace_until, finalize_offsets, refreshed_at, finalized_at, paid_at, voided_at, created_at';

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function invoiceJson(r: InvoiceRow) {
  const cur = r.currency.trim();
  return {
    invoice_id: r.invoice_id,
    number: r.number,
    customer_id: r.customer_id,
    subscription_id: r.subscription_id,
    status: r.status,
    currency: cur,
    period_start: r.period_start.toISOString(),
    period_end: r.period_end.toISOString(),
    reason: r.reason,
    total: fromMinor(r.total_minor, cur),
    line_items: r.line_items.map((l) => ({
      ...l,
      // usage lines name the metric version that priced them; null on lines written before migration 0011
      ...(l.kind === 'usage' || l.kind === 'usage_adjustment' ? { metric_version: l.metric_version ?? null } : {}),
      amount_due: fromMinor(l.amount_minor, cur),
    })),
    /** drafts: when the grace period for late usage ends and the invoice is finalized */
    grace_until: r.status === 'draft' ? iso(r.grace_until) : null,
    finalized_at: iso(r.finalized_at),
    paid_at: iso(r.paid_at),
    voided_at: iso(r.voided_at),
    created_at: r.created_at.toISOString(),
  };
}

/** What issue.ts writes; the rest of a row (number, lifecycle timestamps) comes with finalization. */
export type NewInvoice = Pick<
  InvoiceRow,
  | 'invoice_id'
  | 'customer_id'
  | 'subscription_id'
  | 'currency'
  | 'period_start'
  | 'period_end'
  | 'reason'
  | 'total_minor'
  | 'line_items'
  | 'plan_id'
  | 'plan_version'
> & { grace_until: Date };

/** Inserts a draft. */
export async function insertInvoice(c: PgClient | PgPool, orgId: string, inv: NewInvoice) {
  await c.query(
    `INSERT INTO invoices (organization_id, invoice_id, customer_id, subscription_id, status, currency, period_start, period_end, reason,
                           total_minor, line_items, plan_id, plan_version, grace_until, refreshed_at, created_at)
     VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $11, $12, $13, clock_timestamp(), clock_timestamp())`,
    [
      orgId,
      inv.invoice_id,
      inv.customer_id,
      inv.subscription_id,
      inv.currency,
      inv.period_start,
      inv.period_end,
      inv.reason,
      inv.total_minor,
      JSON.stringify(inv.line_items),
      inv.plan_id,
      inv.plan_version,
      inv.grace_until,
    ],
  );
}

/** The organization's grace period for late usage (seconds). */
export async function graceSeconds(c: PgClient | PgPool, orgId: string): Promise<number> {
  const { rows } = await c.query<{ g: number }>('SELECT invoice_grace_seconds AS g FROM organizations WHERE id = $1', [orgId]);
  return rows[0]?.g ?? 3600;
}

export async function setGraceSeconds(c: PgPool, orgId: string, seconds: number): Promise<void> {
  await c.query('UPDATE organizations SET invoice_grace_seconds = $2 WHERE id = $1', [orgId, seconds]);
}

/** One invoice locked for update ('skip': null when another transaction holds it). */
export async function lockInvoice(c: PgClient, orgId: string, invoiceId: string, lock: 'update' | 'skip') {
  const { rows } = await c.query<InvoiceRow>(
    `SELECT ${COLS} FROM invoices WHERE organization_id = $1 AND invoice_id = $2 FOR UPDATE${lock === 'skip' ? ' SKIP LOCKED' : ''}`,
    [orgId, invoiceId],
  );
  return rows[0] ?? null;
}

export async function saveDraftLines(c: PgClient, orgId: string, invoiceId: string, lines: InvoiceLine[], totalMinor: bigint, now: Date) {
  await c.query(
    `UPDATE invoices SET line_items = $3, total_minor = $4, refreshed_at = $5, updated_at = clock_timestamp()
      WHERE organization_id = $1 AND invoice_id = $2 AND status = 'draft'`,
    [orgId, invoiceId, JSON.stringify(lines), totalMinor.toString(), now],
  );
}

export async function saveFinalizeOffsets(c: PgClient, orgId: string, invoiceId: string, offsets: Record<string, string>) {
  await c.query(
    `UPDATE invoices SET finalize_offsets = $3, updated_at = clock_timestamp() WHERE organization_id = $1 AND invoice_id = $2`,
    [orgId, invoiceId, JSON.stringify(offsets)],
  );
}

/** The organization's next invoice number, taken in the caller's transaction (the counter row stays locked until it ends: gapless). */
export async function nextInvoiceNumber(c: PgClient, orgId: string): Promise<string> {
  const { rows } = await c.query<{ n: string }>(
    `INSERT INTO invoice_numbers (organization_id, last_number) VALUES ($1, 1)
     ON CONFLICT (organization_id) DO UPDATE SET last_number = invoice_numbers.last_number + 1 RETURNING last_number::text AS n`,
    [orgId],
  );
  return `INV-${rows[0]!.n.padStart(6, '0')}`;
}

export async function markFinalized(
  c: PgClient,
  orgId: string,
  invoiceId: string,
  number: string,
  status: 'finalized' | 'paid',
  now: Date,
) {
  await c.query(
    `UPDATE invoices SET status = $3::text, number = $4, finalized_at = $5::timestamptz, paid_at = CASE WHEN $3::text = 'paid' THEN $5::timestamptz ELSE NULL END,
            updated_at = clock_timestamp() WHERE organization_id = $1 AND invoice_id = $2 AND status = 'draft'`,
    [orgId, invoiceId, status, number, now],
  );
}

export async function setStatus(c: PgClient, orgId: string, invoiceId: string, status: InvoiceStatus, now: Date) {
  await c.query(
    `UPDATE invoices SET status = $3::text, paid_at = CASE WHEN $3::text = 'paid' THEN $4::timestamptz ELSE paid_at END,
            voided_at = CASE WHEN $3::text = 'void' THEN $4::timestamptz ELSE voided_at END, updated_at = clock_timestamp()
      WHERE organization_id = $1 AND invoice_id = $2`,
    [orgId, invoiceId, status, now],
  );
}

/** Drafts whose grace period is over at `now`, and drafts due a refresh, a page at a time. */
export async function draftsDue(
  pool: PgPool,
  now: Date,
  kind: 'finalize' | 'refresh',
  refreshBefore: Date,
  limit: number,
  organizationId: string | null,
): Promise<{ organization_id: string; invoice_id: string }[]> {
  const { rows } = await pool.query<{ organization_id: string; invoice_id: string }>(
    kind === 'finalize'
      ? `SELECT organization_id, invoice_id FROM invoices WHERE status = 'draft' AND grace_until <= $1 AND ($4::text IS NULL OR organization_id = $4)
           AND $2::timestamptz IS NOT NULL ORDER BY grace_until, invoice_id LIMIT $3`
      : `SELECT organization_id, invoice_id FROM invoices WHERE status = 'draft' AND grace_until > $1 AND (refreshed_at IS NULL OR refreshed_at < $2::timestamptz)
           AND ($4::text IS NULL OR organization_id = $4) ORDER BY refreshed_at NULLS FIRST, invoice_id LIMIT $3`,
    [now, refreshBefore, limit, organizationId],
  );
  return rows;
}

/** Earlier usage invoices of a subscription that late usage may still change (not void, not drafts). */
export async function billedPeriods(c: PgClient, orgId: string, subscriptionId: string, before: Date, notEndedBefore: Date) {
  const { rows } = await c.query<InvoiceRow>(
    `SELECT ${COLS} FROM invoices WHERE organization_id = $1 AND subscription_id = $2 AND reason IN ('period_close', 'plan_change_usage', 'cancel')
        AND status IN ('finalized', 'paid', 'uncollectible') AND period_start < $3 AND period_end > $4
      ORDER BY period_start`,
    [orgId, subscriptionId, before, notEndedBefore],
  );
  return rows;
}

export interface BilledUsage {
  line_key: string;
  quantity: string;
  amount_minor: string;
}

export async function billedUsage(c: PgClient, orgId: string, subscriptionId: string, periodStart: Date): Promise<BilledUsage[]> {
  const { rows } = await c.query<BilledUsage>(
    `SELECT line_key, quantity, amount_minor::text AS amount_minor FROM billed_usage
      WHERE organization_id = $1 AND subscription_id = $2 AND period_start = $3`,
    [orgId, subscriptionId, periodStart],
  );
  return rows;
}

export async function recordBilledUsage(
  c: PgClient,
  orgId: string,
  subscriptionId: string,
  periodStart: Date,
  rows: BilledUsage[],
  invoiceId: string,
): Promise<void> {
  for (const r of rows)
    await c.query(
      `INSERT INTO billed_usage (organization_id, subscription_id, period_start, line_key, quantity, amount_minor, invoice_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (organization_id, subscription_id, period_start, line_key)
       DO UPDATE SET quantity = EXCLUDED.quantity, amount_minor = EXCLUDED.amount_minor, invoice_id = EXCLUDED.invoice_id`,
      [orgId, subscriptionId, periodStart, r.line_key, r.quantity, r.amount_minor, invoiceId],
    );
}

export async function listInvoices(
  pool: PgPool,
  orgId: string,
  o: {
    customer_id?: string;
    subscription_id?: string;
    status?: InvoiceStatus;
    /** created_at in [created_from, created_to), period_start in [period_from, period_to) (the CSV export's filters too) */
    created_from?: Date | null;
    created_to?: Date | null;
    period_from?: Date | null;
    period_to?: Date | null;
    limit: number;
    offset: number;
  },
) {
  const { rows } = await pool.query<InvoiceRow>(
    `SELECT ${COLS} FROM invoices WHERE organization_id = $1 AND ($2::text IS NULL OR customer_id = $2) AND ($3::text IS NULL OR subscription_id = $3)
       AND ($6::text IS NULL OR status = $6)
       AND ($7::timestamptz IS NULL OR created_at >= $7) AND ($8::timestamptz IS NULL OR created_at < $8)
       AND ($9::timestamptz IS NULL OR period_start >= $9) AND ($10::timestamptz IS NULL OR period_start < $10)
     ORDER BY created_at, period_start, invoice_id LIMIT $4 OFFSET $5`,
    [
      orgId,
      o.customer_id ?? null,
      o.subscription_id ?? null,
      o.limit + 1,
      o.offset,
      o.status ?? null,
      o.created_from ?? null,
      o.created_to ?? null,
      o.period_from ?? null,
      o.period_to ?? null,
    ],
  );
  return rows;
}

export async function getInvoice(pool: PgPool, orgId: string, invoiceId: string) {
  const { rows } = await pool.query<InvoiceRow>(`SELECT ${COLS} FROM invoices WHERE organization_id = $1 AND invoice_id = $2`, [
    orgId,
    invoiceId,
  ]);
  return rows[0] ?? null;
}

/** Sum of open (finalized, unpaid) invoices per currency, minor units: drafts, paid, void and uncollectible ones are not due. */
export async function amountDue(pool: PgPool, orgId: string, customerId: string): Promise<Map<string, bigint>> {
  const { rows } = await pool.query<{ currency: string; due: string }>(
    `SELECT currency, sum(total_minor)::text AS due FROM invoices WHERE organization_id = $1 AND customer_id = $2 AND status = 'finalized' GROUP BY currency`,
    [orgId, customerId],
  );
  return new Map(rows.map((r) => [r.currency.trim(), BigInt(r.due)]));
}
