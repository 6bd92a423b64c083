// Subscriptions: lifecycle (not_started -> active -> ended), periods anchored on start_date,
// renewals, cancel and plan changes, and the invoices they produce.
//
// Invoices (status 'issued', amounts in minor units):
//   - subscription_start: the first period's flat fee when it is billed in advance.
//   - period_close:       usage of the closed period (priced with the subscription's plan version),
//                         the in-arrears flat fee (prorated from plan_started_at), and, when the
//                         subscription renews, the next period's in-advance flat fee.
//   - plan_change:        change_subscription_plan mid-period: credit for the unused part of an
//                         in-advance old fee (or the used part of an in-arrears old fee is charged),
//                         and the prorated in-advance new fee. Usage of the period is billed at close
//                         with the new plan version.
//   - cancel:             end_current_subscription_and_bill: usage so far + prorated in-arrears fee.
//                         (An in-advance fee already billed is not refunded.) _dont_bill: no invoice.
// A trial waives the flat fee of periods that start inside it. Every change runs in one Postgres
// transaction holding the subscription's row lock, so a renewal and a cancel never interleave.
import { withTransaction, type PgClient } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import * as customers from '../customers/store.ts';
import * as metricStore from '../metrics/store.ts';
import * as plans from '../plans/store.ts';
import * as invoices from '../invoices/store.ts';
import { newId } from '../orgs/store.ts';
import { addInterval } from '../periods.ts';
import { flatFeeLine, invoiceTotalMinor, priceComponent, prorationFraction, type LineItem } from '../pricing.ts';
import { MAX_MINOR, fromMinor, minorInRange } from '../money.ts';
import * as store from './store.ts';

export type SubscriptionRow = store.SubscriptionRow;

export function subscriptionJson(r: SubscriptionRow) {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    subscription_id: r.subscription_id, customer_id: r.customer_id, plan_id: r.plan_id, plan_version: r.plan_version, status: r.status,
    start_date: r.start_date.toISOString(), end_date: iso(r.end_date), auto_renew: r.auto_renew,
    current_period_start: r.current_period_start.toISOString(), current_period_end: r.current_period_end.toISOString(),
    plan_started_at: r.plan_started_at.toISOString(), trial_end: iso(r.trial_end), ended_at: iso(r.ended_at), end_reason: r.end_reason,
    replaced_by: r.replaced_by, created_at: r.created_at.toISOString(),
  };
}

export interface CreateInput { customer_id: string; plan_id: string; start_date?: string; end_date?: string | null; subscription_id?: string; auto_renew?: boolean }

const inTrial = (s: { trial_end: Date | null }, periodStart: Date) => s.trial_end !== null && periodStart.getTime() < s.trial_end.getTime();

/** Prices the usage components of a plan version for [from, to). */
export async function usageLines(deps: Deps, orgId: string, customerId: string, plan: plans.PlanVersion, from: Date, to: Date): Promise<LineItem[]> {
  const lines: LineItem[] = [];
  for (const c of plan.components) {
    const m = await metricStore.getMetric(deps.pool, orgId, c.metric_id);
    if (!m) continue;
    const rows = to.getTime() > from.getTime()
      ? await deps.usage.query({ metric: metricStore.toDefinition(orgId, m), customerId, from, to, window: null, includeGroups: (c.group_prices ?? []).length > 0 })
      : [];
    lines.push(...priceComponent(c, rows.map((r) => ({ groups: r.groups, value: r.value })), plan.currency.trim()));
  }
  return lines;
}

async function issue(db: PgClient, orgId: string, s: SubscriptionRow, currency: string, reason: string, periodStart: Date, periodEnd: Date, lines: LineItem[]) {
  if (lines.length === 0) return null;
  const total = invoiceTotalMinor(lines);
  // plans are bounded on input (money.ts); a row from before the bounds must not overflow BIGINT
  if (!minorInRange(total) || lines.some((l) => !minorInRange(BigInt(l.amount_minor)))) throw badRequest(`invoice amount out of range (|amount| < ${MAX_MINOR} minor units)`);
  const invoice_id = newId('inv');
  await invoices.insertInvoice(db, orgId, { invoice_id, customer_id: s.customer_id, subscription_id: s.subscription_id, currency, period_start: periodStart, period_end: periodEnd, reason, total_minor: total.toString(), line_items: lines });
  return invoice_id;
}

async function planOf(db: PgClient, orgId: string, s: SubscriptionRow) {
  return (await plans.getPlan(db, orgId, s.plan_id, s.plan_version))!;
}

export async function createSubscription(deps: Deps, orgId: string, input: CreateInput) {
  const now = deps.now();
  const customer = await customers.getCustomer(deps.pool, orgId, input.customer_id);
  if (!customer) throw notFound('customer', input.customer_id);
  const plan = await plans.getPlan(deps.pool, orgId, input.plan_id);
  if (!plan || plan.archived_at) throw notFound('plan', input.plan_id);
  if (plan.currency.trim() !== customer.currency.trim()) throw badRequest(`plan currency ${plan.currency.trim()} differs from the customer's ${customer.currency.trim()}`);
  const start = input.start_date ? new Date(input.start_date) : now;
  const end = input.end_date ? new Date(input.end_date) : null;
  if (end && end.getTime() <= start.getTime()) throw badRequest('end_date must be after start_date');
  const id = input.subscription_id ?? newId('sub');
  const auto_renew = input.auto_renew ?? true;

  const created = await withTransaction(deps.pool, async (db) => {
    // one live subscription per customer and plan; serialize per customer
    await db.query('SELECT 1 FROM customers WHERE organization_id = $1 AND customer_id = $2 FOR UPDATE', [orgId, input.customer_id]);
    const existing = await store.getSubscription(db, orgId, id);
    if (existing) {
      const same = existing.customer_id === input.customer_id && existing.plan_id === input.plan_id && existing.start_date.getTime() === start.getTime()
        && (existing.end_date?.getTime() ?? null) === (end?.getTime() ?? null) && existing.auto_renew === auto_renew;
      if (same && input.start_date) return { row: existing, created: false };
      throw conflict(`subscription "${id}" already exists`);
    }
    const live = await store.liveSubscriptions(db, orgId, input.customer_id);
    if (live.some((s) => s.plan_id === input.plan_id)) throw conflict(`customer "${input.customer_id}" already has a live subscription to plan "${input.plan_id}"`);
    const row = (await store.insertSubscription(db, orgId, {
      subscription_id: id, customer_id: input.customer_id, plan_id: plan.plan_id, plan_version: plan.version,
      status: start.getTime() > now.getTime() ? 'not_started' : 'active', start_date: start, end_date: end, auto_renew,
      current_period_start: start, current_period_end: addInterval(start, plan.interval, 1), plan_started_at: start,
      trial_end: plan.trial_days > 0 ? new Date(start.getTime() + plan.trial_days * 86_400_000) : null,
    }))!;
    if (plan.flat_fee_timing === 'in_advance' && !inTrial(row, start)) {
      await issue(db, orgId, row, plan.currency.trim(), 'subscription_start', row.current_period_start, row.current_period_end,
        [flatFeeLine('flat_fee', `${plan.name} flat fee`, plan.flat_fee, prorationFraction(start, row.current_period_end, start, row.current_period_end), plan.currency.trim())].filter((l) => l.amount_minor !== '0'));
    }
    return { row, created: true };
  });
  deps.cache.invalidateCustomer(orgId, input.customer_id);
  const row = created.created ? await advance(deps, orgId, id) : created.row;
  return { created: created.created, subscription: subscriptionJson(row) };
}

/**
 * Brings a subscription up to `now`: starts it, closes every elapsed period (invoicing it) and
 * renews or ends it. Idempotent; safe to call from any request and from the renewal loop.
 */
export async function advance(deps: Deps, orgId: string, subscriptionId: string): Promise<SubscriptionRow> {
  const now = deps.now();
  const { row, changed } = await withTransaction(deps.pool, async (db) => {
    let s = await store.getSubscription(db, orgId, subscriptionId, true);
    if (!s) throw notFound('subscription', subscriptionId);
    let changed = false;
    if (s.status === 'not_started' && s.start_date.getTime() <= now.getTime()) { s.status = 'active'; changed = true; }
    for (let guard = 0; s.status === 'active' && guard < 1000; guard++) {
      const periodEnd: Date = s.current_period_end;
      const closeAt: Date = s.end_date && s.end_date.getTime() < periodEnd.getTime() ? s.end_date : periodEnd;
      if (closeAt.getTime() > now.getTime()) break;
      const plan = await planOf(db, orgId, s);
      const cur = plan.currency.trim();
      const lines = await usageLines(deps, orgId, s.customer_id, plan, s.current_period_start, closeAt);
      if (plan.flat_fee_timing === 'in_arrears' && !inTrial(s, s.current_period_start)) {
        lines.unshift(flatFeeLine('flat_fee', `${plan.name} flat fee`, plan.flat_fee, prorationFraction(s.plan_started_at, closeAt, s.current_period_start, periodEnd), cur));
      }
      const renews = s.auto_renew && closeAt.getTime() === periodEnd.getTime() && (!s.end_date || s.end_date.getTime() > periodEnd.getTime());
      const nextStart: Date = periodEnd;
      // periods are anchored on start_date: count how many periods precede nextStart
      let k = 1;
      while (addInterval(s.start_date, plan.interval, k).getTime() <= nextStart.getTime()) k++;
      const nextEnd = addInterval(s.start_date, plan.interval, k);
      if (renews && plan.flat_fee_timing === 'in_advance' && !inTrial(s, nextStart)) {
        lines.push(flatFeeLine('flat_fee', `${plan.name} flat fee (next period)`, plan.flat_fee, prorationFraction(nextStart, nextEnd, nextStart, nextEnd), cur));
      }
      await issue(db, orgId, s, cur, 'period_close', s.current_period_start, closeAt, lines.filter((l) => l.kind !== 'flat_fee' || l.amount_minor !== '0'));
      if (renews) {
        s = { ...s, current_period_start: nextStart, current_period_end: nextEnd, plan_started_at: nextStart };
      } else {
        s = { ...s, status: 'ended', ended_at: closeAt, end_reason: s.auto_renew ? 'end_date_reached' : 'auto_renew_off' };
      }
      changed = true;
    }
    return { row: changed ? await store.saveSubscription(db, orgId, s) : s, changed };
  });
  if (changed) deps.cache.invalidateCustomer(orgId, row.customer_id);
  return row;
}

/** Advances the live subscriptions of one customer when one is due (cheap when none is). */
export async function advanceCustomer(deps: Deps, orgId: string, live: SubscriptionRow[]): Promise<boolean> {
  const now = deps.now().getTime();
  const due = live.filter((s) => s.current_period_end.getTime() <= now || (s.end_date && s.end_date.getTime() <= now) || (s.status === 'not_started' && s.start_date.getTime() <= now));
  for (const s of due) await advance(deps, orgId, s.subscription_id);
  return due.length > 0;
}

export interface UpdateInput {
  turn_off_auto_renew?: boolean;
  auto_renew?: boolean;
  end_date?: string | null;
  replace_immediately_type?: 'end_current_subscription_and_bill' | 'end_current_subscription_and_dont_bill' | 'change_subscription_plan';
  plan_id?: string;
}

export async function updateSubscription(deps: Deps, orgId: string, subscriptionId: string, input: UpdateInput) {
  const current = await advance(deps, orgId, subscriptionId);
  if (current.status === 'ended') throw conflict(`subscription "${subscriptionId}" has ended`);
  const now = deps.now();
  let newPlan: plans.PlanVersion | null = null;
  if (input.plan_id) {
    newPlan = await plans.getPlan(deps.pool, orgId, input.plan_id);
    if (!newPlan || newPlan.archived_at) throw notFound('plan', input.plan_id);
  }
  if (input.replace_immediately_type === 'change_subscription_plan' && !newPlan) throw badRequest('change_subscription_plan needs plan_id');
  if (input.plan_id && !input.replace_immediately_type) throw badRequest('plan_id needs replace_immediately_type');

  let replacement: { customer_id: string; plan_id: string } | null = null;
  const result = await withTransaction(deps.pool, async (db) => {
    let s = (await store.getSubscription(db, orgId, subscriptionId, true))!;
    if (s.status === 'ended') throw conflict(`subscription "${subscriptionId}" has ended`);
    const plan = await planOf(db, orgId, s);
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
      if (np.interval !== plan.interval) throw badRequest(`change_subscription_plan keeps the billing period: plan intervals differ (${plan.interval} vs ${np.interval}); use end_current_subscription_and_bill with plan_id`);
      if (np.currency.trim() !== cur) throw badRequest('plan currencies differ');
      if (s.plan_id !== np.plan_id && (await store.liveSubscriptions(db, orgId, s.customer_id)).some((x) => x.plan_id === np.plan_id)) throw conflict(`customer already has a live subscription to plan "${np.plan_id}"`);
      const at = now.getTime() < s.current_period_start.getTime() ? s.current_period_start : now;
      const lines: LineItem[] = [];
      if (s.status === 'active' && !inTrial(s, s.current_period_start)) {
        if (plan.flat_fee_timing === 'in_advance') lines.push(flatFeeLine('proration_credit', `${plan.name} unused time`, plan.flat_fee, prorationFraction(at, s.current_period_end, s.current_period_start, s.current_period_end), cur));
        else lines.push(flatFeeLine('proration_charge', `${plan.name} used time`, plan.flat_fee, prorationFraction(s.plan_started_at, at, s.current_period_start, s.current_period_end), cur));
        if (np.flat_fee_timing === 'in_advance') lines.push(flatFeeLine('proration_charge', `${np.name} remaining time`, np.flat_fee, prorationFraction(at, s.current_period_end, s.current_period_start, s.current_period_end), cur));
      }
      await issue(db, orgId, s, cur, 'plan_change', at, s.current_period_end, lines.filter((l) => l.amount_minor !== '0'));
      s = { ...s, plan_id: np.plan_id, plan_version: np.version, plan_started_at: at };
    } else if (type === 'end_current_subscription_and_bill' || type === 'end_current_subscription_and_dont_bill') {
      const at = now.getTime() < s.current_period_start.getTime() ? s.current_period_start : now;
      if (type === 'end_current_subscription_and_bill' && s.status === 'active') {
        const lines = await usageLines(deps, orgId, s.customer_id, plan, s.current_period_start, at);
        if (plan.flat_fee_timing === 'in_arrears' && !inTrial(s, s.current_period_start)) lines.unshift(flatFeeLine('flat_fee', `${plan.name} flat fee (prorated)`, plan.flat_fee, prorationFraction(s.plan_started_at, at, s.current_period_start, s.current_period_end), cur));
        await issue(db, orgId, s, cur, 'cancel', s.current_period_start, at, lines.filter((l) => l.kind !== 'flat_fee' || l.amount_minor !== '0'));
      }
      s = { ...s, status: 'ended', ended_at: at, end_reason: type === 'end_current_subscription_and_bill' ? 'canceled_and_billed' : 'canceled_not_billed', auto_renew: false };
      if (newPlan) replacement = { customer_id: s.customer_id, plan_id: newPlan.plan_id };
    }
    return store.saveSubscription(db, orgId, s);
  });
  deps.cache.invalidateCustomer(orgId, result.customer_id);
  let replacedBy: ReturnType<typeof subscriptionJson> | null = null;
  if (replacement) {
    const r = replacement as { customer_id: string; plan_id: string };
    replacedBy = (await createSubscription(deps, orgId, { customer_id: r.customer_id, plan_id: r.plan_id, start_date: (result.ended_at ?? now).toISOString() })).subscription;
    await deps.pool.query('UPDATE subscriptions SET replaced_by = $3 WHERE organization_id = $1 AND subscription_id = $2', [orgId, subscriptionId, replacedBy.subscription_id]);
    return { ...subscriptionJson(result), replaced_by: replacedBy.subscription_id, replacement: replacedBy };
  }
  return subscriptionJson(result);
}

export async function subscriptionDetail(deps: Deps, orgId: string, subscriptionId: string) {
  const s = await advance(deps, orgId, subscriptionId);
  const plan = (await plans.getPlan(deps.pool, orgId, s.plan_id, s.plan_version))!;
  const cur = plan.currency.trim();
  const to = s.status === 'ended' ? s.ended_at ?? deps.now() : deps.now();
  const lines = s.status === 'not_started' ? [] : await usageLines(deps, orgId, s.customer_id, plan, s.current_period_start, to);
  return {
    ...subscriptionJson(s),
    plan: plans.planJson(plan),
    current_period: { start: s.current_period_start.toISOString(), end: s.current_period_end.toISOString(), usage_until: to.toISOString() },
    usage: lines.map((l) => ({ metric_id: l.metric_id, group: l.group ?? null, quantity: l.quantity, amount: fromMinor(l.amount_minor, cur) })),
    usage_amount_so_far: fromMinor(invoiceTotalMinor(lines), cur),
  };
}

/** The renewal loop: advances every due subscription, a batch at a time. */
export async function runRenewals(deps: Deps): Promise<number> {
  const due = await store.dueSubscriptions(deps.pool, deps.now());
  let n = 0;
  for (const d of due) {
    try {
      await advance(deps, d.organization_id, d.subscription_id);
      n++;
    } catch (err) {
      deps.logger.error({ err, subscription: d.subscription_id }, 'renewal failed');
    }
  }
  return n;
}
