// Estimates: what an invoice would say, computed with the same pure line functions as the real ones
// (price.ts) and written nowhere (reads never write).
//   - upcoming:  the current period's close as of now (Lotus get_current_usage / Stripe upcoming invoice):
//                usage so far priced by the plan in force, its in-arrears fee, and the next period's
//                in-advance fee when it renews.
//   - new subscription: the first invoice creating it would issue (Stigg estimateSubscription, Autumn
//                checkout preview).
//   - plan change: the usage so far billed by the old plan, the proration credit of the old fee and the
//                debit of the new one (Stigg estimateSubscriptionUpdate, Autumn preview).
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import { fromMinor } from '../money.ts';
import * as plans from '../plans/store.ts';
import { invoiceTotalMinor } from '../pricing.ts';
import { currentPeriod, elapsedPeriods } from '../subscriptions/current.ts';
import { newSubscriptionTerms } from '../subscriptions/service.ts';
import * as subs from '../subscriptions/store.ts';
import { componentUsage } from '../usage/billable.ts';
import { periodCloseAddOnLines } from '../addons/load.ts';
import { periodCloseLines, planChangeLines, startLines, usageLinesCovering, usageStart, type LineItem } from './price.ts';

function preview<E extends { subscription_id: string | null; customer_id: string; reason: string }>(
  currency: string,
  periodStart: Date,
  periodEnd: Date,
  lines: LineItem[],
  extra: E,
) {
  return {
    ...extra,
    currency,
    period_start: periodStart.toISOString(),
    period_end: periodEnd.toISOString(),
    line_items: lines.map((l) => ({ ...l, amount_due: fromMinor(l.amount_minor, currency) })),
    total: fromMinor(invoiceTotalMinor(lines), currency),
  };
}

/** The current period's invoice as it would be if the period closed with the usage so far. */
export async function upcomingInvoice(deps: Deps, orgId: string, subscriptionId: string) {
  const now = deps.now();
  const stored = await subs.getSubscription(deps.pool, orgId, subscriptionId);
  if (!stored) throw notFound('subscription', subscriptionId);
  const s = currentPeriod(stored, now);
  if (s.status !== 'active') throw conflict(`subscription "${subscriptionId}" is ${s.status}: no upcoming invoice`);
  const plan = (await plans.getPlan(deps.pool, orgId, s.plan_id, s.plan_version))!;
  // the current period's close (at its end, or at end_date when that comes first: elapsedPeriods decides)
  const close = elapsedPeriods(s, s.current_period_end, 1).closes[0]!;
  const from = usageStart(s);
  const usage = await componentUsage(deps, orgId, s.customer_id, plan, from, now);
  const addOns = await periodCloseAddOnLines(deps.pool, orgId, close);
  return preview(plan.currency.trim(), from, close.closeAt, [...periodCloseLines(plan, close, usage), ...addOns], {
    subscription_id: subscriptionId,
    customer_id: s.customer_id,
    reason: 'period_close',
    usage_until: now.toISOString(),
  });
}

/** The first invoice a new subscription would get (nothing is created). */
export async function previewSubscription(deps: Deps, orgId: string, input: { customer_id: string; plan_id: string; start_date?: string }) {
  const { plan, row: first } = await newSubscriptionTerms(deps, orgId, input, deps.now());
  const row = first as unknown as subs.SubscriptionRow; // the row before it is inserted: what startLines reads
  return preview(plan.currency.trim(), row.current_period_start, row.current_period_end, startLines(plan, row), {
    subscription_id: null,
    customer_id: input.customer_id,
    reason: 'subscription_start',
    plan_id: plan.plan_id,
    plan_version: plan.version,
  });
}

/** What change_subscription_plan to `plan_id` now would bill (nothing is changed). */
export async function previewPlanChange(deps: Deps, orgId: string, subscriptionId: string, input: { plan_id: string }) {
  const now = deps.now();
  const stored = await subs.getSubscription(deps.pool, orgId, subscriptionId);
  if (!stored) throw notFound('subscription', subscriptionId);
  const s = currentPeriod(stored, now);
  if (s.status !== 'active') throw conflict(`subscription "${subscriptionId}" is ${s.status}`);
  const plan = (await plans.getPlan(deps.pool, orgId, s.plan_id, s.plan_version))!;
  const np = await plans.getPlan(deps.pool, orgId, input.plan_id);
  if (!np || np.archived_at) throw notFound('plan', input.plan_id);
  if (np.plan_id === s.plan_id && np.version === s.plan_version) throw conflict('the subscription is already on this plan version');
  if (np.interval !== plan.interval) throw badRequest(`plan intervals differ (${plan.interval} vs ${np.interval})`);
  if (np.currency.trim() !== plan.currency.trim()) throw badRequest('plan currencies differ');
  const at = now.getTime() < s.current_period_start.getTime() ? s.current_period_start : now;
  const from = usageStart(s);
  const usage = at.getTime() > from.getTime() ? await componentUsage(deps, orgId, s.customer_id, plan, from, at) : [];
  const usageLines = usageLinesCovering(plan, usage, from, at);
  const change = planChangeLines(plan, np, s, at);
  const cur = plan.currency.trim();
  const sum = (kind: string) => fromMinor(invoiceTotalMinor(change.filter((l) => l.kind === kind)), cur);
  return preview(cur, from, s.current_period_end, [...usageLines, ...change], {
    subscription_id: subscriptionId,
    customer_id: s.customer_id,
    reason: 'plan_change',
    plan_id: np.plan_id,
    plan_version: np.version,
    effective_at: at.toISOString(),
    proration_credit: sum('proration_credit'),
    proration_charge: sum('proration_charge'),
    usage_so_far: fromMinor(invoiceTotalMinor(usageLines), cur),
  });
}
