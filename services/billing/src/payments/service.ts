// Recording payments and refunds of invoices (provider.ts): each attempt is a row; an invoice whose
// succeeded charges minus refunds cover its total becomes `paid` in the same transaction, with its
// `invoice.paid` webhook event (webhooks/outbox.ts). Amounts: decimal strings in the API, minor units inside.
import { withTransaction, type PgClient } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ApiError, badRequest, conflict, notFound } from '../http/errors.ts';
import { fitsMinor, fromMinor, toMinor } from '../money.ts';
import { newId } from '../orgs/store.ts';
import * as invoices from '../invoices/store.ts';
import { enqueueWebhookEvent } from '../webhooks/outbox.ts';
import { PROVIDERS } from './provider.ts';

interface PaymentRow {
  payment_id: string;
  invoice_id: string;
  provider: string;
  kind: 'charge' | 'refund';
  status: 'pending' | 'succeeded' | 'failed';
  amount_minor: string;
  currency: string;
  reference: string | null;
  note: string | null;
  refunds: string | null;
  created_at: Date;
}
const COLS =
  'payment_id, invoice_id, provider, kind, status, amount_minor::text AS amount_minor, currency, reference, note, refunds, created_at';

function paymentJson(p: PaymentRow) {
  const cur = p.currency.trim();
  return {
    payment_id: p.payment_id,
    invoice_id: p.invoice_id,
    provider: p.provider,
    kind: p.kind,
    status: p.status,
    amount: fromMinor(p.amount_minor, cur),
    currency: cur,
    reference: p.reference,
    note: p.note,
    refunds: p.refunds,
    created_at: p.created_at.toISOString(),
  };
}

async function paymentsOf(db: PgClient | Deps['pool'], orgId: string, invoiceId: string) {
  const { rows } = await db.query<PaymentRow>(
    `SELECT ${COLS} FROM invoice_payments WHERE organization_id = $1 AND invoice_id = $2 ORDER BY created_at, payment_id`,
    [orgId, invoiceId],
  );
  return rows;
}

/** Succeeded charges and refunds of an invoice's payment rows (minor units). */
function settled(rows: PaymentRow[]) {
  const ok = rows.filter((r) => r.status === 'succeeded');
  const paid = ok.filter((r) => r.kind === 'charge').reduce((a, r) => a + BigInt(r.amount_minor), 0n);
  const refunded = ok.filter((r) => r.kind === 'refund').reduce((a, r) => a + BigInt(r.amount_minor), 0n);
  return { paid, refunded, net: paid - refunded };
}

function summary(inv: invoices.InvoiceRow, rows: PaymentRow[]) {
  const cur = inv.currency.trim();
  const { paid, refunded, net } = settled(rows);
  const total = BigInt(inv.total_minor);
  const outstanding = total - net > 0n ? total - net : 0n;
  const payment_status: 'unpaid' | 'partially_paid' | 'paid' | 'refunded' =
    refunded > 0n && net <= 0n
      ? 'refunded'
      : net >= total && total > 0n
        ? 'paid'
        : net > 0n
          ? 'partially_paid'
          : inv.status === 'paid'
            ? 'paid'
            : 'unpaid';
  return {
    invoice_id: inv.invoice_id,
    status: inv.status,
    payment_status,
    currency: cur,
    total: fromMinor(total, cur),
    amount_paid: fromMinor(paid, cur),
    amount_refunded: fromMinor(refunded, cur),
    amount_outstanding: fromMinor(inv.status === 'void' ? 0n : outstanding, cur),
    payments: rows.map(paymentJson),
  };
}

export async function invoicePayments(deps: Deps, orgId: string, invoiceId: string) {
  const inv = await invoices.getInvoice(deps.pool, orgId, invoiceId);
  if (!inv) throw notFound('invoice', invoiceId);
  return summary(inv, await paymentsOf(deps.pool, orgId, invoiceId));
}

/** Records a charge through a provider (default manual); marks the invoice paid once it is covered. */
export async function recordPayment(
  deps: Deps,
  orgId: string,
  invoiceId: string,
  input: { provider?: string; amount?: string; reference?: string; note?: string },
) {
  const provider = PROVIDERS[input.provider ?? 'manual'];
  if (!provider) throw badRequest(`unknown payment provider "${input.provider}"; available: ${Object.keys(PROVIDERS).join(', ')}`);
  const now = deps.now();
  return withTransaction(deps.pool, async (db) => {
    const inv = await invoices.lockInvoice(db, orgId, invoiceId, 'update');
    if (!inv) throw notFound('invoice', invoiceId);
    if (inv.status !== 'finalized' && inv.status !== 'uncollectible')
      throw new ApiError(
        409,
        'invalid_state',
        `invoice "${invoiceId}" is ${inv.status}; only a finalized or uncollectible invoice takes payments`,
      );
    const cur = inv.currency.trim();
    const { net } = settled(await paymentsOf(db, orgId, invoiceId));
    const total = BigInt(inv.total_minor);
    const outstanding = total - net;
    let amount = outstanding;
    if (input.amount !== undefined) {
      if (!fitsMinor(input.amount, cur)) throw badRequest(`amount has more decimals than ${cur} allows`);
      amount = toMinor(input.amount, cur);
    }
    if (amount <= 0n) throw badRequest('amount must be greater than 0 (and the invoice must have something outstanding)');
    if (amount > outstanding)
      throw badRequest(`amount ${fromMinor(amount, cur)} is more than the outstanding ${fromMinor(outstanding, cur)}`);
    const paymentId = newId('pay');
    const r = await provider.charge({
      idempotency_key: paymentId,
      invoice_id: invoiceId,
      customer_id: inv.customer_id,
      amount_minor: amount,
      currency: cur,
      reference: input.reference,
    });
    const ins = await db.query<PaymentRow>(
      `INSERT INTO invoice_payments (organization_id, payment_id, invoice_id, provider, kind, status, amount_minor, currency, reference, note)
       VALUES ($1, $2, $3, $4, 'charge', $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING ${COLS}`,
      [orgId, paymentId, invoiceId, provider.name, r.status, amount.toString(), cur, r.reference, input.note ?? null],
    );
    if (!ins.rows[0]) throw conflict(`a ${provider.name} payment with reference "${r.reference}" is already recorded`);
    if (r.status === 'succeeded' && net + amount >= total) {
      await invoices.setStatus(db, orgId, invoiceId, 'paid', now);
      const paid = (await invoices.lockInvoice(db, orgId, invoiceId, 'update'))!;
      await enqueueWebhookEvent(db, orgId, 'invoice.paid', invoices.invoiceJson(paid));
    }
    return paymentJson(ins.rows[0]);
  });
}

/** Refunds (part of) a succeeded charge. A paid invoice stays paid (final); its payment_status shows the refund. */
export async function refundPayment(deps: Deps, orgId: string, paymentId: string, input: { amount?: string; note?: string }) {
  return withTransaction(deps.pool, async (db) => {
    const { rows } = await db.query<PaymentRow>(
      `SELECT ${COLS} FROM invoice_payments WHERE organization_id = $1 AND payment_id = $2 FOR UPDATE`,
      [orgId, paymentId],
    );
    const p = rows[0];
    if (!p) throw notFound('payment', paymentId);
    if (p.kind !== 'charge' || p.status !== 'succeeded') throw conflict(`payment "${paymentId}" is not a succeeded charge`);
    const cur = p.currency.trim();
    const { rows: prior } = await db.query<{ sum: string | null }>(
      `SELECT sum(amount_minor)::text AS sum FROM invoice_payments WHERE organization_id = $1 AND refunds = $2 AND status = 'succeeded'`,
      [orgId, paymentId],
    );
    const left = BigInt(p.amount_minor) - BigInt(prior[0]?.sum ?? '0');
    let amount = left;
    if (input.amount !== undefined) {
      if (!fitsMinor(input.amount, cur)) throw badRequest(`amount has more decimals than ${cur} allows`);
      amount = toMinor(input.amount, cur);
    }
    if (amount <= 0n || amount > left) throw badRequest(`a refund is between 0 and the ${fromMinor(left, cur)} not yet refunded`);
    const provider = PROVIDERS[p.provider]!;
    const id = newId('pay');
    const r = await provider.refund({ idempotency_key: id, payment_reference: p.reference, amount_minor: amount, currency: cur });
    const ins = await db.query<PaymentRow>(
      `INSERT INTO invoice_payments (organization_id, payment_id, invoice_id, provider, kind, status, amount_minor, currency, reference, note, refunds)
       VALUES ($1, $2, $3, $4, 'refund', $5, $6, $7, $8, $9, $10) RETURNING ${COLS}`,
      [orgId, id, p.invoice_id, p.provider, r.status, amount.toString(), cur, r.reference, input.note ?? null, paymentId],
    );
    return paymentJson(ins.rows[0]!);
  });
}

/**
 * Inside a transaction: money a hosted provider already collected (a checkout's completion) recorded as a
 * succeeded charge — no provider call — of min(collected, outstanding). Idempotent on (provider,
 * reference): a repeat answers the recorded payment. Nothing when the invoice takes no payment (not
 * finalized/uncollectible) or nothing is outstanding; the invoice becomes paid when covered.
 */
export async function recordCollectedLocked(
  db: PgClient,
  orgId: string,
  invoiceId: string,
  input: { provider: string; reference: string; amount_minor: bigint; note?: string },
  now: Date,
) {
  const inv = await invoices.lockInvoice(db, orgId, invoiceId, 'update');
  if (!inv) throw notFound('invoice', invoiceId);
  const { rows: prior } = await db.query<PaymentRow>(
    `SELECT ${COLS} FROM invoice_payments WHERE organization_id = $1 AND provider = $2 AND reference = $3`,
    [orgId, input.provider, input.reference],
  );
  if (prior[0]) return paymentJson(prior[0]);
  if (inv.status !== 'finalized' && inv.status !== 'uncollectible') return null;
  const { net } = settled(await paymentsOf(db, orgId, invoiceId));
  const total = BigInt(inv.total_minor);
  const outstanding = total - net;
  const amount = input.amount_minor < outstanding ? input.amount_minor : outstanding;
  if (amount <= 0n) return null;
  const ins = await db.query<PaymentRow>(
    `INSERT INTO invoice_payments (organization_id, payment_id, invoice_id, provider, kind, status, amount_minor, currency, reference, note)
     VALUES ($1, $2, $3, $4, 'charge', 'succeeded', $5, $6, $7, $8) RETURNING ${COLS}`,
    [orgId, newId('pay'), invoiceId, input.provider, amount.toString(), inv.currency.trim(), input.reference, input.note ?? null],
  );
  if (net + amount >= total) {
    await invoices.setStatus(db, orgId, invoiceId, 'paid', now);
    const paid = (await invoices.lockInvoice(db, orgId, invoiceId, 'update'))!;
    await enqueueWebhookEvent(db, orgId, 'invoice.paid', invoices.invoiceJson(paid));
  }
  return paymentJson(ins.rows[0]!);
}
