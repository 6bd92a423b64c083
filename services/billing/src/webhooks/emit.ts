// The events of subscription and invoice changes, each enqueued in the change's own transaction (the
// callers: subscriptions/service.ts, invoices/issue.ts, invoices/lifecycle.ts; one call each). `data` is
// the object's public JSON, as GET answers it (services/billing/README.md, "Webhooks").
import type { PgClient } from '@meterline/core';
import type { Elapsed } from '../subscriptions/current.ts';
import type { SubscriptionRow } from '../subscriptions/store.ts';
import { subscriptionJson } from '../subscriptions/service.ts';
import * as invoices from '../invoices/store.ts';
import { enqueueIfWanted } from './outbox.ts';

/** invoice.created / finalized / paid / voided: the invoice as it is in this transaction. */
export async function invoiceEvent(
  db: PgClient,
  orgId: string,
  type: 'invoice.created' | 'invoice.finalized' | 'invoice.paid' | 'invoice.voided',
  invoiceId: string,
) {
  await enqueueIfWanted(db, orgId, type, async () => {
    const row = await invoices.lockInvoice(db, orgId, invoiceId, 'update');
    return row ? invoices.invoiceJson(row) : { invoice_id: invoiceId };
  });
}

/** A finalization (finalizeWritten): invoice.finalized, then invoice.paid too when nothing was owed (total 0). */
export async function invoiceFinalizedEvent(db: PgClient, orgId: string, invoiceId: string, status: 'finalized' | 'paid') {
  await invoiceEvent(db, orgId, 'invoice.finalized', invoiceId);
  if (status === 'paid') await invoiceEvent(db, orgId, 'invoice.paid', invoiceId);
}

/** The scheduler's transitions (closeElapsedLocked): one subscription.renewed per renewing close, subscription.ended. */
export async function periodEvents(db: PgClient, orgId: string, before: SubscriptionRow, e: Elapsed, after: SubscriptionRow) {
  for (const c of e.closes) {
    if (!c.renews) continue;
    await enqueueIfWanted(db, orgId, 'subscription.renewed', () => ({
      ...subscriptionJson(after),
      renewed_period: { start: c.nextStart.toISOString(), end: c.nextEnd.toISOString() },
    }));
  }
  if (after.status === 'ended' && before.status !== 'ended')
    await enqueueIfWanted(db, orgId, 'subscription.ended', () => subscriptionJson(after));
}

export const subscriptionCreatedEvent = (db: PgClient, orgId: string, row: SubscriptionRow, now: Date) =>
  enqueueIfWanted(db, orgId, 'subscription.created', () => subscriptionJson(row, now));

/**
 * An API update (updateSubscription): plan_changed (with previous_plan_id / previous_plan_version);
 * cancelled when it ends now (then also ended) or is set to end (auto_renew turned off, end_date set).
 */
export async function subscriptionUpdateEvents(db: PgClient, orgId: string, before: SubscriptionRow, after: SubscriptionRow) {
  if (before.plan_id !== after.plan_id || before.plan_version !== after.plan_version)
    await enqueueIfWanted(db, orgId, 'subscription.plan_changed', () => ({
      ...subscriptionJson(after),
      previous_plan_id: before.plan_id,
      previous_plan_version: before.plan_version,
    }));
  const endsNow = after.status === 'ended' && before.status !== 'ended';
  const setToEnd =
    (before.auto_renew && !after.auto_renew) || (after.end_date !== null && after.end_date.getTime() !== before.end_date?.getTime());
  if (endsNow || setToEnd) await enqueueIfWanted(db, orgId, 'subscription.cancelled', () => subscriptionJson(after));
  if (endsNow) await enqueueIfWanted(db, orgId, 'subscription.ended', () => subscriptionJson(after));
}
