// Subscriptions: lifecycle (not_started -> active -> ended), periods anchored on start_date,
// renewals, cancel and plan changes.
//
// Reads are pure: detail, lists and every snapshot show currentPeriod(row, now) (current.ts), computed from
// the stored dates without writing. Period transitions and their invoices are written only by
//   - the scheduler (invoices/scheduler.ts), and
//   - a write to the subscription itself, which first brings it up to date the same way (create with a
//     start_date in the past, PATCH/cancel) — issue.ts's closeSubscription, one transaction, row lock.
// What each invoice contains is invoices/price.ts; writing it is invoices/issue.ts. Every change runs in
// one Postgres transaction holding the subscription's row lock, so a close and a cancel never interleave.
import { withTransaction } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import * as customers from '../customers/store.ts';
import * as plans from '../plans/store.ts';
import { newId } from '../orgs/store.ts';
import { addInterval } from '../periods.ts';
import { invoiceTotalMinor } from '../pricing.ts';
import { fromMinor } from '../money.ts';
import { closeElapsedLocked, closeSubscription, issueInvoice } from '../invoices/issue.ts';
import {
  cancelCreditLines,
  cancelLines,
  planChangeLines,
  startLines,
  usageLines,
  usageLinesCovering,
  usageStart,
} from '../invoices/price.ts';
import { componentUsage } from '../usage/billable.ts';
import { currentPeriod } from './current.ts';
import * as store from './store.ts';
import { subscriptionCreatedEvent, subscriptionUpdateEvents } from '../webhooks/emit.ts';
import { cancelAddOnLines } from '../addons/load.ts';

export type SubscriptionRow = store.SubscriptionRow;
export { currentPeriod } from './current.ts';

/** The API shape of a row; with `now`, of the row as of now (currentPeriod) — what reads answer. */
export function subscriptionJson(stored: SubscriptionRow, now?: Date) {
  const r = now instanceof Date ? currentPeriod(stored, now) : stored;
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    subscription_id: r.subscription_id,
    customer_id: r.customer_id,
    plan_id: r.plan_id,
    plan_version: r.plan_version,
    status: r.status,
    start_date: r.start_date.toISOString(),
    end_date: iso(r.end_date),
    auto_renew: r.auto_renew,
    current_period_start: r.current_period_start.toISOString(),
    current_period_end: r.current_period_end.toISOString(),
    plan_started_at: r.plan_started_at.toISOString(),
    trial_end: iso(r.trial_end),
    ended_at: iso(r.ended_at),
    end_reason: r.end_reason,
    replaced_by: r.replaced_by,
    created_at: r.created_at.toISOString(),
  };
}

export interface CreateInput {
  customer_id: string;
  plan_id: string;
  start_date?: string;
  end_date?: string | null;
  subscription_id?: string;
  auto_renew?: boolean;
  /** internal (not in the API body): a fixed plan version instead of the current one (a checkout's, fixed at attach) */
  plan_version?: number;
}

/** An add-on plan is attached to a base subscription (addons/service.ts), never subscribed to itself. */
function refuseAddOnPlan(plan: plans.PlanVersion) {
  if (plan.plan_type === 'add_on')
    throw badRequest(
      `plan "${plan.plan_id}" is an add-on (plan_type add_on): attach it to a base subscription with POST /v1/subscriptions/:id/add_ons`,
    );
}

/**
 * A new subscription's terms, checked (customer and plan exist, currencies agree, end after start) and
 * its first row as it would be inserted at `now` — shared by creation and its estimate (invoices/estimate.ts).
 */
export async function newSubscriptionTerms(deps: Deps, orgId: string, input: CreateInput, now: Date) {
  const customer = await customers.getCustomer(deps.pool, orgId, input.customer_id);
  if (!customer) throw notFound('customer', input.customer_id);
  const plan = await plans.getPlan(deps.pool, orgId, input.plan_id, input.plan_version);
  if (!plan || plan.archived_at) throw notFound('plan', input.plan_id);
  refuseAddOnPlan(plan);
  if (plan.currency.trim() !== customer.currency.trim())
    throw badRequest(`plan currency ${plan.currency.trim()} differs from the customer's ${customer.currency.trim()}`);
  const start = input.start_date ? new Date(input.start_date) : now;
  const end = input.end_date ? new Date(input.end_date) : null;
  if (end && end.getTime() <= start.getTime()) throw badRequest('end_date must be after start_date');
  const row = {
    subscription_id: input.subscription_id ?? newId('sub'),
    customer_id: input.customer_id,
    plan_id: plan.plan_id,
    plan_version: plan.version,
    status: start.getTime() > now.getTime() ? 'not_started' : 'active',
    start_date: start,
    end_date: end,
    auto_renew: input.auto_renew ?? true,
    current_period_start: start,
    current_period_end: addInterval(start, plan.interval, 1),
    plan_started_at: start,
    trial_end: plan.trial_days > 0 ? new Date(start.getTime() + plan.trial_days * 86_400_000) : null,
  } satisfies Parameters<typeof store.insertSubscription>[2];
  return { plan, row };
}

export async function createSubscription(deps: Deps, orgId: string, input: CreateInput) {
  const now = deps.now();
  const { plan, row: first } = await newSubscriptionTerms(deps, orgId, input, now);
  const { subscription_id: id, start_date: start, end_date: end, auto_renew } = first;

  const created = await withTransaction(deps.pool, async (db) => {
    // one live subscription per customer and plan; serialize per customer
    const locked = await db.query<{ archived_at: Date | null }>(
      'SELECT archived_at FROM customers WHERE organization_id = $1 AND customer_id = $2 FOR UPDATE',
      [orgId, input.customer_id],
    );
    // archiving refuses customers with live subscriptions (customers/service.ts), and this refuses the reverse
    if (locked.rows[0]?.archived_at) throw conflict(`customer "${input.customer_id}" is archived`);
    const existing = await store.getSubscription(db, orgId, id);
    if (existing) {
      const same =
        existing.customer_id === input.customer_id &&
        existing.plan_id === input.plan_id &&
        (input.plan_version === undefined || existing.plan_version === input.plan_version) &&
        existing.start_date.getTime() === start.getTime() &&
        (existing.end_date?.getTime() ?? null) === (end?.getTime() ?? null) &&
        existing.auto_renew === auto_renew;
      if (same && input.start_date) return { row: existing, created: false };
      throw conflict(`subscription "${id}" already exists`);
    }
    const live = (await store.liveSubscriptions(db, orgId, input.customer_id)).map((s) => currentPeriod(s, now));
    if (live.some((s) => s.plan_id === input.plan_id && s.status !== 'ended'))
      throw conflict(`customer "${input.customer_id}" already has a live subscription to plan "${input.plan_id}"`);
    const row = (await store.insertSubscription(db, orgId, first))!;
    await issueInvoice(
      db,
      orgId,
      row,
      plan,
      plan.currency.trim(),
      'subscription_start',
      row.current_period_start,
      row.current_period_end,
      startLines(plan, row),
      now,
    );
    await subscriptionCreatedEvent(db, orgId, row, now);
    // a start_date in the past: close the periods that already elapsed (this is a write; the row is ours)
    return { row: (await closeElapsedLocked(deps, db, orgId, row, now)).row, created: true };
  });
  if (created.created) await deps.cache.invalidateCustomer(orgId, input.customer_id);
  return { created: created.created, subscription: subscriptionJson(created.row, now) };
}

/** Read: subscriptions of the organization as of now (status filter on the status as of now). */
export async function listSubscriptions(
  deps: Deps,
  orgId: string,
  q: { limit: number; offset: number; customer_id?: string; status?: string; plan_id?: string },
) {
  const now = deps.now();
  return (await store.listSubscriptions(deps.pool, orgId, { ...q, now })).map((r) => subscriptionJson(r, now));
}

export interface UpdateInput {
  turn_off_auto_renew?: boolean;
  auto_renew?: boolean;
  end_date?: string | null;
  replace_immediately_type?: 'end_current_subscription_and_bill' | 'end_current_subscription_and_dont_bill' | 'change_subscription_plan';
  plan_id?: string;
  /** Ending early: credit the unused part of an in-advance flat fee (default true). */
  prorate?: boolean;
}

export async function updateSubscription(deps: Deps, orgId: string, subscriptionId: string, input: UpdateInput) {
  const now = deps.now();
  // a write: first persist the transitions due at now (closing elapsed periods), as the scheduler would
  const current = (await closeSubscription(deps, orgId, subscriptionId, now, 'update'))!.row;
  if (current.status === 'ended') throw conflict(`subscription "${subscriptionId}" has ended`);
  let newPlan: plans.PlanVersion | null = null;
  if (input.plan_id) {
    newPlan = await plans.getPlan(deps.pool, orgId, input.plan_id);
    if (!newPlan || newPlan.archived_at) throw notFound('plan', input.plan_id);
    refuseAddOnPlan(newPlan);
  }
  if (input.replace_immediately_type === 'change_subscription_plan' && !newPlan) throw badRequest('change_subscription_plan needs plan_id');
  if (input.plan_id && !input.replace_immediately_type) throw badRequest('plan_id needs replace_immediately_type');

  let replacement: { customer_id: string; plan_id: string } | null = null;
  const result = await withTransaction(deps.pool, async (db) => {
    let s = (await store.getSubscription(db, orgId, subscriptionId, 'update'))!;
    if (s.status === 'ended') throw conflict(`subscription "${subscriptionId}" has ended`);
    const before = { ...s }; // s is edited in place below
    const plan = (await plans.getPlan(db, orgId, s.plan_id, s.plan_version))!;
    const cur = plan.currency.trim();
    if (input.turn_off_auto_renew) s.auto_renew = false;
    if (input.auto_renew !== undefined) s.auto_renew = input.auto_renew;
    if (input.end_date !== undefined) {
      const end = input.end_date ? new Date(input.end_date) : null;
      if (end && end.getTime() <= Math.max(now.getTime(), s.start_date.getTime())) throw badRequest('end_date must be in the future');
      s.end_date = end;
    }
    const type = input.replace_immediately_type;
    if (type === 'change_subscription_plan') {
      const np = newPlan!;
      if (np.plan_id === s.plan_id && np.version === s.plan_version) throw conflict('the subscription is already on this plan version');
      if (np.interval !== plan.interval)
        throw badRequest(
          `change_subscription_plan keeps the billing period: plan intervals differ (${plan.interval} vs ${np.interval}); use end_current_subscription_and_bill with plan_id`,
        );
      if (np.currency.trim() !== cur) throw badRequest('plan currencies differ');
      if (
        s.plan_id !== np.plan_id &&
        (await store.liveSubscriptions(db, orgId, s.customer_id)).some(
          (x) => x.plan_id === np.plan_id && currentPeriod(x, now).status !== 'ended',
        )
      )
        throw conflict(`customer already has a live subscription to plan "${np.plan_id}"`);
      const at = now.getTime() < s.current_period_start.getTime() ? s.current_period_start : now;
      // usage until now is priced by the plan in force until now: its own draft (refreshed and finalized
      // like a period close); the period close prices the rest with the new plan
      const from = usageStart(s);
      if (at.getTime() > from.getTime()) {
        const usage = await componentUsage(deps, orgId, s.customer_id, plan, from, at);
        await issueInvoice(db, orgId, s, plan, cur, 'plan_change_usage', from, at, usageLinesCovering(plan, usage, from, at), now);
      }
      await issueInvoice(db, orgId, s, np, cur, 'plan_change', at, s.current_period_end, planChangeLines(plan, np, s, at), now);
      s = { ...s, plan_id: np.plan_id, plan_version: np.version, plan_started_at: at };
    } else if (type === 'end_current_subscription_and_bill' || type === 'end_current_subscription_and_dont_bill') {
      const at = now.getTime() < s.current_period_start.getTime() ? s.current_period_start : now;
      // add-ons (addons/load.ts): in-arrears ones billed until now, in-advance ones credited; their segments end now
      const addOns = await cancelAddOnLines(db, orgId, s, at, input.prorate !== false);
      const credit = [...(input.prorate === false ? [] : cancelCreditLines(plan, s, at)), ...addOns.credit];
      if (type === 'end_current_subscription_and_bill' && s.status === 'active') {
        const usage = await componentUsage(deps, orgId, s.customer_id, plan, usageStart(s), at);
        const lines = [...cancelLines(plan, s, at, usage), ...addOns.charge, ...credit];
        await issueInvoice(db, orgId, s, plan, cur, 'cancel', usageStart(s), at, lines, now);
      } else if (credit.length > 0) {
        // not billed: no usage, no arrears fee; only the unused in-advance fee comes back (finalized at once)
        await issueInvoice(db, orgId, s, plan, cur, 'cancel_credit', at, s.current_period_end, credit, now);
      }
      s = {
        ...s,
        status: 'ended',
        ended_at: at,
        end_reason: type === 'end_current_subscription_and_bill' ? 'canceled_and_billed' : 'canceled_not_billed',
        auto_renew: false,
      };
      if (newPlan) replacement = { customer_id: s.customer_id, plan_id: newPlan.plan_id };
    }
    const saved = await store.saveSubscription(db, orgId, s);
    await subscriptionUpdateEvents(db, orgId, before, saved);
    return saved;
  });
  await deps.cache.invalidateCustomer(orgId, result.customer_id);
  let replacedBy: ReturnType<typeof subscriptionJson> | null = null;
  if (replacement) {
    const r = replacement as { customer_id: string; plan_id: string };
    replacedBy = (
      await createSubscription(deps, orgId, {
        customer_id: r.customer_id,
        plan_id: r.plan_id,
        start_date: (result.ended_at ?? now).toISOString(),
      })
    ).subscription;
    await deps.pool.query('UPDATE subscriptions SET replaced_by = $3 WHERE organization_id = $1 AND subscription_id = $2', [
      orgId,
      subscriptionId,
      replacedBy.subscription_id,
    ]);
    return { ...subscriptionJson(result), replaced_by: replacedBy.subscription_id, replacement: replacedBy };
  }
  return subscriptionJson(result);
}

/** Read: the subscription as of now, its current period and the usage (priced) so far. Writes nothing. */
export async function subscriptionDetail(deps: Deps, orgId: string, subscriptionId: string) {
  const now = deps.now();
  const stored = await store.getSubscription(deps.pool, orgId, subscriptionId);
  if (!stored) throw notFound('subscription', subscriptionId);
  const s = currentPeriod(stored, now);
  const plan = (await plans.getPlan(deps.pool, orgId, s.plan_id, s.plan_version))!;
  const cur = plan.currency.trim();
  const to = s.status === 'ended' ? (s.ended_at ?? now) : now;
  const lines =
    s.status === 'not_started' ? [] : usageLines(plan, await componentUsage(deps, orgId, s.customer_id, plan, usageStart(s), to));
  return {
    ...subscriptionJson(s),
    plan: plans.planJson(plan),
    current_period: { start: s.current_period_start.toISOString(), end: s.current_period_end.toISOString(), usage_until: to.toISOString() },
    usage: lines.map((l) => ({
      metric_id: l.metric_id,
      group: l.group ?? null,
      quantity: l.quantity,
      amount: fromMinor(l.amount_minor, cur),
    })),
    usage_amount_so_far: fromMinor(invoiceTotalMinor(lines), cur),
  };
}
