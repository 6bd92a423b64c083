// What finalizing an invoice applies, in the finalizing transaction (so a retried or concurrent
// finalization applies nothing twice: the draft row lock serializes it, and the grant and redemption
// rows are locked as they are used):
//   1. coupons the customer redeemed (for this subscription, or for every invoice of the customer) that
//      are still running: a `discount` line each, on the subtotal of the invoice's positive lines;
//      percent_off rounded half-even once, amount_off capped at what is left; `once` / `repeating`
//      count the invoices they were applied to.
//   2. credit grants of the invoice's currency, effective and not expired, lowest priority first, then
//      soonest expiry, then oldest: a `credit` line each for min(remaining, still due); the grant's
//      remaining amount goes down and the balance history records it; a grant taken to 20 % of its
//      amount or below writes `credits.low` (webhooks) in the same transaction.
// Invoices with a total <= 0 before this (credits, refunds) get neither.
import type { PgClient } from '@meterline/core';
import { newId } from '../orgs/store.ts';
import { Decimal, fromMinor } from '../money.ts';
import { invoiceTotalMinor } from '../pricing.ts';
import type { InvoiceLine } from './store.ts';
import { enqueueWebhookEvent } from '../webhooks/outbox.ts';

interface Settled {
  lines: InvoiceLine[];
  total: bigint;
}

const sum = invoiceTotalMinor;

/** Applies running coupons, then credits, to an invoice being finalized (see above). */
export async function applyCouponsAndCredits(
  db: PgClient,
  orgId: string,
  inv: { invoice_id: string; customer_id: string; subscription_id: string | null; currency: string },
  lines: InvoiceLine[],
  now: Date,
): Promise<Settled> {
  const cur = inv.currency.trim();
  const out: InvoiceLine[] = [...lines];
  let total = sum(lines);
  if (total <= 0n) return { lines: out, total };

  // 1. coupons
  const { rows: redemptions } = await db.query<{
    redemption_id: string;
    coupon_id: string;
    name: string;
    percent_off: string | null;
    amount_off_minor: string | null;
    currency: string | null;
    duration: 'once' | 'repeating' | 'forever';
    duration_periods: number | null;
    invoices_applied: number;
  }>(
    `SELECT r.redemption_id, r.coupon_id, c.name, c.percent_off::text AS percent_off, c.amount_off_minor::text AS amount_off_minor,
            c.currency, c.duration, c.duration_periods, r.invoices_applied
       FROM coupon_redemptions r JOIN coupons c USING (organization_id, coupon_id)
      WHERE r.organization_id = $1 AND r.customer_id = $2 AND (r.subscription_id IS NULL OR r.subscription_id = $3)
        AND (c.duration = 'forever' OR (c.duration = 'once' AND r.invoices_applied < 1)
             OR (c.duration = 'repeating' AND r.invoices_applied < c.duration_periods))
      ORDER BY r.created_at, r.redemption_id FOR UPDATE OF r`,
    [orgId, inv.customer_id, inv.subscription_id],
  );
  const subtotal = sum(lines.filter((l) => BigInt(l.amount_minor) > 0n));
  let discountable = subtotal;
  for (const r of redemptions) {
    if (discountable <= 0n) break;
    if (r.amount_off_minor !== null && r.currency?.trim() !== cur) continue; // a fixed amount in another currency
    const off =
      r.percent_off !== null
        ? BigInt(new Decimal(subtotal.toString()).times(r.percent_off).div(100).toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN).toFixed(0))
        : BigInt(r.amount_off_minor!);
    const applied = off > discountable ? discountable : off;
    if (applied <= 0n) continue;
    discountable -= applied;
    out.push({
      kind: 'discount',
      description: `${r.name} (${r.percent_off !== null ? `${new Decimal(r.percent_off).toFixed()} % off` : `${fromMinor(r.amount_off_minor!, cur)} off`})`,
      quantity: '1',
      amount: fromMinor((-applied).toString(), cur),
      amount_minor: (-applied).toString(),
      coupon_id: r.coupon_id,
    });
    await db.query(
      'UPDATE coupon_redemptions SET invoices_applied = invoices_applied + 1 WHERE organization_id = $1 AND redemption_id = $2',
      [orgId, r.redemption_id],
    );
  }
  total = sum(out);
  if (total <= 0n) return { lines: out, total };

  // 2. credits
  const { rows: grants } = await db.query<{ grant_id: string; amount_minor: string; remaining_minor: string; description: string | null }>(
    `SELECT grant_id, amount_minor::text AS amount_minor, remaining_minor::text AS remaining_minor, description FROM credit_grants
      WHERE organization_id = $1 AND customer_id = $2 AND currency = $3 AND voided_at IS NULL AND remaining_minor > 0
        AND effective_at <= $4 AND (expires_at IS NULL OR expires_at > $4)
      ORDER BY priority, expires_at NULLS LAST, created_at, grant_id FOR UPDATE`,
    [orgId, inv.customer_id, cur, now],
  );
  for (const g of grants) {
    if (total <= 0n) break;
    const rem = BigInt(g.remaining_minor);
    const use = rem < total ? rem : total;
    total -= use;
    out.push({
      kind: 'credit',
      description: `Prepaid credit${g.description ? `: ${g.description}` : ''}`,
      quantity: '1',
      amount: fromMinor((-use).toString(), cur),
      amount_minor: (-use).toString(),
      grant_id: g.grant_id,
    });
    await db.query('UPDATE credit_grants SET remaining_minor = remaining_minor - $3 WHERE organization_id = $1 AND grant_id = $2', [
      orgId,
      g.grant_id,
      use.toString(),
    ]);
    await db.query(
      `INSERT INTO credit_transactions (organization_id, transaction_id, grant_id, customer_id, kind, amount_minor, invoice_id)
       VALUES ($1, $2, $3, $4, 'applied', $5, $6)`,
      [orgId, newId('ctx'), g.grant_id, inv.customer_id, (-use).toString(), inv.invoice_id],
    );
    // credits.low: this application took the grant to 20 % of its amount or below (once: from above to below)
    const low = BigInt(g.amount_minor) / 5n;
    if (rem > low && rem - use <= low)
      await enqueueWebhookEvent(db, orgId, 'credits.low', {
        customer_id: inv.customer_id,
        grant_id: g.grant_id,
        currency: cur,
        amount: fromMinor(g.amount_minor, cur),
        remaining: fromMinor((rem - use).toString(), cur),
        invoice_id: inv.invoice_id,
      });
  }
  return { lines: out, total: sum(out) };
}
