// Writing invoices. Every invoice is written in the same Postgres transaction as the subscription change
// it belongs to, under the subscription's row lock:
//   - closeSubscription (the scheduler, and writes that must first bring a subscription up to date):
//     lock the row (the scheduler with SKIP LOCKED: a row another instance is closing is skipped, not
//     waited for), re-read it, close every elapsed period with one period_close invoice each, save the
//     advanced row, commit. A second run — same instance or another — reads the advanced row and finds
//     nothing due, so a period is invoiced once.
//   - migration 0003_invoicing.sql backs this with unique indexes: one period_close invoice per
//     (subscription, period_start) and one subscription_start per subscription. A violation aborts the
//     whole transaction (invoice and advance together), it never yields a second invoice.
import { withTransaction, type PgClient } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest, notFound } from '../http/errors.ts';
import { newId } from '../orgs/store.ts';
import * as plans from '../plans/store.ts';
import { MAX_MINOR, minorInRange } from '../money.ts';
import { invoiceTotalMinor } from '../pricing.ts';
import * as subs from '../subscriptions/store.ts';
import { componentUsage, type UsageBatch } from '../usage/billable.ts';
import { clearCloseFailure, elapsedPeriods } from './close.ts';
import { periodCloseLines, usageStart, type LineItem } from './price.ts';
import { finalizeWritten } from './lifecycle.ts';
import { graceSeconds, insertInvoice } from './store.ts';
import { invoiceEvent, periodEvents } from '../webhooks/emit.ts';
import { periodCloseAddOnLines } from '../addons/load.ts';

import { USAGE_REASONS, type InvoiceReason } from './reasons.ts';

export { USAGE_REASONS, type InvoiceReason };

/**
 * Inserts an invoice (nothing when there are no lines); returns its id. Usage invoices are drafts until
 * their period end + the organization's grace period (lifecycle.ts finalizes them); the others (start,
 * plan change: fixed fees, nothing to wait for) are finalized in the same transaction.
 */
export async function issueInvoice(
  db: PgClient,
  orgId: string,
  s: subs.SubscriptionRow,
  plan: Pick<plans.PlanVersion, 'plan_id' | 'version'>,
  currency: string,
  reason: InvoiceReason,
  periodStart: Date,
  periodEnd: Date,
  lines: LineItem[],
  now: Date,
): Promise<string | null> {
  if (lines.length === 0) return null;
  const total = invoiceTotalMinor(lines);
  // plans are bounded on input (money.ts); a row from before the bounds must not overflow BIGINT
  if (!minorInRange(total) || lines.some((l) => !minorInRange(BigInt(l.amount_minor))))
    throw badRequest(`invoice amount out of range (|amount| < ${MAX_MINOR} minor units)`);
  const invoice_id = newId('inv');
  const graceUntil = USAGE_REASONS.includes(reason) ? new Date(periodEnd.getTime() + (await graceSeconds(db, orgId)) * 1000) : now;
  await insertInvoice(db, orgId, {
    invoice_id,
    customer_id: s.customer_id,
    subscription_id: s.subscription_id,
    currency,
    period_start: periodStart,
    period_end: periodEnd,
    reason,
    total_minor: total.toString(),
    line_items: lines,
    plan_id: plan.plan_id,
    plan_version: plan.version,
    grace_until: graceUntil,
  });
  await invoiceEvent(db, orgId, 'invoice.created', invoice_id);
  if (!USAGE_REASONS.includes(reason))
    await finalizeWritten(db, orgId, { invoice_id, customer_id: s.customer_id, subscription_id: s.subscription_id, currency }, lines, now);
  return invoice_id;
}

export interface Closed {
  row: subs.SubscriptionRow;
  changed: boolean;
  invoices: string[];
}

/** Closes per transaction at most this many periods (a long-overdue subscription continues on the next run). */
export const MAX_CLOSES_PER_TRANSACTION = 1000;

/**
 * Inside a transaction holding `locked`'s row lock: applies every transition due at `now` (start, period
 * closes with their invoices, renewal or end) and saves the row if it changed. `prefetched` (the
 * scheduler's batch, read before the lock): usage it holds for exactly a close's (customer, plan version,
 * from, to) is used instead of reading it again; anything else is read here as before.
 */
export async function closeElapsedLocked(
  deps: Pick<Deps, 'pool' | 'usage'>,
  db: PgClient,
  orgId: string,
  locked: subs.SubscriptionRow,
  now: Date,
  prefetched?: { usage?: UsageBatch; plan?: plans.PlanVersion },
): Promise<Closed> {
  const e = elapsedPeriods(locked, now, MAX_CLOSES_PER_TRANSACTION);
  if (!e.changed) return { row: locked, changed: false, invoices: [] };
  const invoices: string[] = [];
  if (e.closes.length > 0) {
    const p = prefetched?.plan;
    const plan =
      p && p.plan_id === locked.plan_id && p.version === locked.plan_version
        ? p
        : (await plans.getPlan(db, orgId, locked.plan_id, locked.plan_version))!;
    for (const c of e.closes) {
      // the usage this plan version prices: from the period start, or from a mid-period plan change
      const from = usageStart({ current_period_start: c.periodStart, plan_started_at: c.before.plan_started_at });
      const usage =
        prefetched?.usage?.get({ orgId, customerId: locked.customer_id, plan, from, to: c.closeAt }) ??
        (await componentUsage(deps, orgId, locked.customer_id, plan, from, c.closeAt));
      const id = await issueInvoice(
        db,
        orgId,
        c.before,
        plan,
        plan.currency.trim(),
        'period_close',
        from, // the invoice covers the usage it prices (after a plan change: from the change)
        c.closeAt,
        // the subscription's add-ons (addons/price.ts): their own add_on lines
        [...periodCloseLines(plan, c, usage), ...(await periodCloseAddOnLines(db, orgId, c))],
        now,
      );
      if (id) invoices.push(id);
    }
  }
  const saved = await subs.saveSubscription(db, orgId, e.row);
  await periodEvents(db, orgId, locked, e, saved);
  return { row: saved, changed: true, invoices };
}

/**
 * Brings one subscription up to `now` in its own transaction. lock 'skip' (the scheduler): returns null
 * when another transaction holds the row; 'update' (a write request on this subscription): waits.
 */
export async function closeSubscription(
  deps: Pick<Deps, 'pool' | 'usage' | 'cache'>,
  orgId: string,
  subscriptionId: string,
  now: Date,
  lock: 'skip' | 'update',
  opts: { usage?: UsageBatch; plan?: plans.PlanVersion; clearFailure?: boolean } = {},
): Promise<Closed | null> {
  const r = await withTransaction(deps.pool, async (db) => {
    const s = await subs.getSubscription(db, orgId, subscriptionId, lock);
    if (!s) {
      if (lock === 'update') throw notFound('subscription', subscriptionId);
      return null; // locked elsewhere (or deleted)
    }
    const closed = await closeElapsedLocked(deps, db, orgId, s, now, opts);
    // a subscription set aside after a failed close (close.ts) is back in the queue once one succeeds
    if (opts.clearFailure) await clearCloseFailure(db, orgId, subscriptionId);
    return closed;
  });
  if (r?.changed) await deps.cache.invalidateCustomer(orgId, r.row.customer_id);
  return r;
}
