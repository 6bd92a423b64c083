// Add-ons (Stigg addons with quantity, Autumn add-on products): a plan with plan_type 'add_on' attached
// to a base subscription with a quantity. Priced per unit (addons/price.ts), entitled per unit
// (entitlements/grants.ts: the add-on's limit x quantity adds to the base plan's limit). Rules in
// services/billing/README.md, "Add-ons".
//
// Every change runs in one transaction holding the subscription's row lock (after bringing the
// subscription up to date, as every write to it does: closeSubscription), so it never interleaves with
// a period close; an in-advance add-on's proration invoice is written in that same transaction.
import { withTransaction, type PgClient } from '@meterline/core';
import type { SubscriptionAddOn } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import { closeSubscription, issueInvoice } from '../invoices/issue.ts';
import { inTrial } from '../invoices/price.ts';
import { newId } from '../orgs/store.ts';
import * as plans from '../plans/store.ts';
import * as subs from '../subscriptions/store.ts';
import { addOnLine } from './price.ts';
import * as store from './store.ts';
import { openAddOns } from './load.ts';

export { openAddOns };

function addOnJson(seg: store.AddOnSegment, plan: plans.PlanVersion, invoiceId?: string | null): SubscriptionAddOn {
  return {
    subscription_id: seg.subscription_id,
    plan_id: seg.add_on_id,
    plan_version: seg.plan_version,
    name: plan.name,
    quantity: seg.quantity,
    started_at: seg.started_at.toISOString(),
    ended_at: seg.ended_at?.toISOString() ?? null,
    unit_price: plan.flat_fee,
    flat_fee_timing: plan.flat_fee_timing,
    ...(invoiceId !== undefined ? { invoice_id: invoiceId } : {}),
  };
}

/**
 * Brings the subscription up to date, then runs `change` holding its row lock; `at` is when the change
 * takes effect (now, or the start of a subscription that has not started).
 */
async function onSubscription<T>(
  deps: Deps,
  orgId: string,
  subscriptionId: string,
  change: (db: PgClient, s: subs.SubscriptionRow, base: plans.PlanVersion, at: Date, now: Date) => Promise<T>,
): Promise<T> {
  const now = deps.now();
  await closeSubscription(deps, orgId, subscriptionId, now, 'update');
  const out = await withTransaction(deps.pool, async (db) => {
    const s = (await subs.getSubscription(db, orgId, subscriptionId, 'update'))!;
    if (s.status === 'ended') throw conflict(`subscription "${subscriptionId}" has ended`);
    const base = (await plans.getPlan(db, orgId, s.plan_id, s.plan_version))!;
    const at = now.getTime() < s.current_period_start.getTime() ? s.current_period_start : now;
    const r = await change(db, s, base, at, now);
    return { r, customerId: s.customer_id };
  });
  await deps.cache.invalidateCustomer(orgId, out.customerId);
  return out.r;
}

/**
 * An in-advance add-on's quantity change `delta` at `at`: billed (or credited) for the rest of the period at once.
 * A subscription that has not started is billed too (`at` is its start: the whole first period), as its
 * plan's in-advance fee is on its subscription_start invoice at creation: nothing else bills that first
 * period (the start transition issues nothing; period closes bill the next period).
 */
async function prorate(
  db: PgClient,
  orgId: string,
  s: subs.SubscriptionRow,
  addOn: plans.PlanVersion,
  delta: number,
  at: Date,
  now: Date,
): Promise<string | null> {
  if (addOn.flat_fee_timing !== 'in_advance' || delta === 0 || s.status === 'ended' || inTrial(s, s.current_period_start)) return null;
  const line = addOnLine(
    addOn,
    delta,
    at,
    s.current_period_end,
    s.current_period_start,
    s.current_period_end,
    `${addOn.name} ${delta > 0 ? `+${delta}` : delta} (remaining time)`,
  );
  if (line.amount_minor === '0') return null;
  return issueInvoice(db, orgId, s, addOn, addOn.currency.trim(), 'add_on_change', at, s.current_period_end, [line], now);
}

export async function attachAddOn(deps: Deps, orgId: string, subscriptionId: string, input: { plan_id: string; quantity?: number }) {
  const quantity = input.quantity ?? 1;
  return onSubscription(deps, orgId, subscriptionId, async (db, s, base, at, now) => {
    const addOn = await plans.getPlan(db, orgId, input.plan_id);
    if (!addOn || addOn.archived_at) throw notFound('plan', input.plan_id);
    if (addOn.plan_type !== 'add_on') throw badRequest(`plan "${input.plan_id}" is not an add-on (plan_type ${addOn.plan_type})`);
    if (addOn.currency.trim() !== base.currency.trim())
      throw badRequest(`add-on currency ${addOn.currency.trim()} differs from the subscription's ${base.currency.trim()}`);
    if (addOn.interval !== base.interval)
      throw badRequest(
        `add-on interval ${addOn.interval} differs from the subscription plan's ${base.interval}: add-ons follow its billing period`,
      );
    if (await store.openSegment(db, orgId, s.subscription_id, addOn.plan_id))
      throw conflict(`add-on "${addOn.plan_id}" is already attached; PATCH its quantity`);
    const seg = await store.insertSegment(db, orgId, {
      segment_id: newId('sao'),
      subscription_id: s.subscription_id,
      add_on_id: addOn.plan_id,
      plan_version: addOn.version,
      quantity,
      started_at: at,
      ended_at: null,
    });
    const invoiceId = await prorate(db, orgId, s, addOn, quantity, at, now);
    return addOnJson(seg, addOn, invoiceId);
  });
}

export async function updateAddOn(deps: Deps, orgId: string, subscriptionId: string, addOnId: string, input: { quantity: number }) {
  return onSubscription(deps, orgId, subscriptionId, async (db, s, _base, at, now) => {
    const open = await store.openSegment(db, orgId, s.subscription_id, addOnId);
    if (!open) throw notFound('add-on', addOnId);
    const addOn = (await plans.getPlan(db, orgId, addOnId, open.plan_version))!;
    if (open.quantity === input.quantity) return addOnJson(open, addOn, null);
    await store.endSegment(db, orgId, open.segment_id, at);
    const seg = await store.insertSegment(db, orgId, {
      ...open,
      segment_id: newId('sao'),
      quantity: input.quantity,
      started_at: at,
      ended_at: null,
    });
    const invoiceId = await prorate(db, orgId, s, addOn, input.quantity - open.quantity, at, now);
    return addOnJson(seg, addOn, invoiceId);
  });
}

export async function removeAddOn(deps: Deps, orgId: string, subscriptionId: string, addOnId: string) {
  return onSubscription(deps, orgId, subscriptionId, async (db, s, _base, at, now) => {
    const open = await store.openSegment(db, orgId, s.subscription_id, addOnId);
    if (!open) throw notFound('add-on', addOnId);
    const addOn = (await plans.getPlan(db, orgId, addOnId, open.plan_version))!;
    const ended = (await store.endSegment(db, orgId, open.segment_id, at)) ?? { ...open, ended_at: at };
    const invoiceId = await prorate(db, orgId, s, addOn, -open.quantity, at, now);
    return addOnJson(ended, addOn, invoiceId);
  });
}

export async function listAddOns(deps: Deps, orgId: string, subscriptionId: string) {
  const s = await subs.getSubscription(deps.pool, orgId, subscriptionId);
  if (!s) throw notFound('subscription', subscriptionId);
  return (await openAddOns(deps.pool, orgId, [subscriptionId])).map(({ seg, plan }) => addOnJson(seg, plan));
}
