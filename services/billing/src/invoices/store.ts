import type { PgClient, PgPool } from '@meterline/core';
import { fromMinor } from '../money.ts';
import type { LineItem } from '../pricing.ts';

export interface InvoiceRow {
  invoice_id: string;
  customer_id: string;
  subscription_id: string | null;
  status: string;
  currency: string;
  period_start: Date;
  period_end: Date;
  reason: string;
  total_minor: string;
  line_items: LineItem[];
  created_at: Date;
}
const COLS =
  'invoice_id, customer_id, subscription_id, status, currency, period_start, period_end, reason, total_minor, line_items, created_at';

export function invoiceJson(r: InvoiceRow) {
  const cur = r.currency.trim();
  return {
    invoice_id: r.invoice_id,
    customer_id: r.customer_id,
    subscription_id: r.subscription_id,
    status: r.status,
    currency: cur,
    period_start: r.period_start.toISOString(),
    period_end: r.period_end.toISOString(),
    reason: r.reason,
    total: fromMinor(r.total_minor, cur),
    line_items: r.line_items.map((l) => ({ ...l, amount_due: fromMinor(l.amount_minor, cur) })),
    created_at: r.created_at.toISOString(),
  };
}

export async function insertInvoice(c: PgClient | PgPool, orgId: string, inv: Omit<InvoiceRow, 'created_at' | 'status'>) {
  await c.query(
    `INSERT INTO invoices (organization_id, invoice_id, customer_id, subscription_id, status, currency, period_start, period_end, reason, total_minor, line_items, created_at)
     VALUES ($1, $2, $3, $4, 'issued', $5, $6, $7, $8, $9, $10, clock_timestamp())`,
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
    ],
  );
}

export async function listInvoices(
  pool: PgPool,
  orgId: string,
  o: { customer_id?: string; subscription_id?: string; limit: number; offset: number },
) {
  const { rows } = await pool.query<InvoiceRow>(
    `SELECT ${COLS} FROM invoices WHERE organization_id = $1 AND ($2::text IS NULL OR customer_id = $2) AND ($3::text IS NULL OR subscription_id = $3)
     ORDER BY created_at, period_start, invoice_id LIMIT $4 OFFSET $5`,
    [orgId, o.customer_id ?? null, o.subscription_id ?? null, o.limit + 1, o.offset],
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

/** Sum of issued (unpaid) invoices per currency, minor units. */
export async function amountDue(pool: PgPool, orgId: string, customerId: string): Promise<Map<string, bigint>> {
  const { rows } = await pool.query<{ currency: string; due: string }>(
    `SELECT currency, sum(total_minor)::text AS due FROM invoices WHERE organization_id = $1 AND customer_id = $2 AND status = 'issued' GROUP BY currency`,
    [orgId, customerId],
  );
  return new Map(rows.map((r) => [r.currency.trim(), BigInt(r.due)]));
}
