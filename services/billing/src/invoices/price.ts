// What each invoice of a subscription contains: pure functions from (plan version, subscription state,
// usage per component) to line items, on top of pricing.ts / money.ts. No I/O, no clock.
//
//   subscription_start: the first period's flat fee when it is billed in advance.
//   period_close:       usage of the closed period (priced with the subscription's plan version), the
//                       in-arrears flat fee (prorated from plan_started_at), and, when the subscription
//                       renews, the next period's in-advance flat fee.
//   plan_change:        change_subscription_plan mid-period: credit for the unused part of an in-advance
//                       old fee (or charge for the used part of an in-arrears old fee) and the prorated
//                       in-advance new fee. plan_change_usage: the usage until the change, priced by the
//                       old plan (a draft like a period close); the close prices the rest by the new one.
//   cancel:             end_current_subscription_and_bill: usage so far + prorated in-arrears fee, and a
//                       credit for the unused part of an in-advance fee (cancelCreditLines, unless
//                       prorate: false); cancel_credit: that credit alone (..._and_dont_bill).
// A trial waives the flat fee of periods that start inside it. Zero flat-fee lines are dropped.
// Every line is labelled with the period it covers (period_start, period_end): a period_close invoice
// carries this period's usage and in-arrears fee and, when it renews, the NEXT period's in-advance fee.
import type { PlanVersion } from '../plans/store.ts';
import { flatFeeLine, priceComponent, prorationFraction, type LineItem as PricedLine } from '../pricing.ts';

/** A priced line and the period it covers. */
export type LineItem = PricedLine & { period_start?: string; period_end?: string };

const covering =
  (start: Date, end: Date) =>
  (l: PricedLine): LineItem => ({
    ...l,
    period_start: start.toISOString(),
    period_end: end.toISOString(),
  });
import type { PeriodClose } from '../subscriptions/current.ts';
import type { SubscriptionRow } from '../subscriptions/store.ts';
import type { ComponentUsage } from '../usage/billable.ts';

export const inTrial = (s: { trial_end: Date | null }, periodStart: Date) =>
  s.trial_end !== null && periodStart.getTime() < s.trial_end.getTime();

const dropZeroFees = (lines: LineItem[]) => lines.filter((l) => l.kind !== 'flat_fee' || l.amount_minor !== '0');

/**
 * Where the usage the current plan prices starts: the period start, or the instant of a mid-period plan
 * change (usage before it was priced by the old plan: its plan_change_usage invoice).
 */
export const usageStart = (s: Pick<SubscriptionRow, 'current_period_start' | 'plan_started_at'>) =>
  s.plan_started_at.getTime() > s.current_period_start.getTime() ? s.plan_started_at : s.current_period_start;

/** Usage lines of a plan version for the usage of [from, to), labelled with that range. */
export function usageLinesCovering(plan: PlanVersion, usage: ComponentUsage[], from: Date, to: Date): LineItem[] {
  return usageLines(plan, usage).map(covering(from, to));
}

/** Usage lines of a plan version for some usage; each names the metric version whose rollups it priced. */
export function usageLines(plan: PlanVersion, usage: ComponentUsage[]): PricedLine[] {
  return usage.flatMap((u) =>
    priceComponent(u.component, u.rows, plan.currency.trim()).map((l) =>
      u.metric_version === undefined ? l : { ...l, metric_version: u.metric_version },
    ),
  );
}

export function startLines(plan: PlanVersion, s: SubscriptionRow): LineItem[] {
  if (plan.flat_fee_timing !== 'in_advance' || inTrial(s, s.current_period_start)) return [];
  const fraction = prorationFraction(s.start_date, s.current_period_end, s.start_date, s.current_period_end);
  return dropZeroFees([flatFeeLine('flat_fee', `${plan.name} flat fee`, plan.flat_fee, fraction, plan.currency.trim())]).map(
    covering(s.current_period_start, s.current_period_end),
  );
}

export function periodCloseLines(plan: PlanVersion, c: PeriodClose, usage: ComponentUsage[]): LineItem[] {
  const s = c.before;
  const cur = plan.currency.trim();
  const lines: LineItem[] = usageLines(plan, usage).map(
    covering(usageStart({ current_period_start: c.periodStart, plan_started_at: s.plan_started_at }), c.closeAt),
  );
  if (plan.flat_fee_timing === 'in_arrears' && !inTrial(s, c.periodStart)) {
    lines.unshift(
      covering(
        s.plan_started_at,
        c.closeAt,
      )(
        flatFeeLine(
          'flat_fee',
          `${plan.name} flat fee`,
          plan.flat_fee,
          prorationFraction(s.plan_started_at, c.closeAt, c.periodStart, c.periodEnd),
          cur,
        ),
      ),
    );
  }
  if (c.renews && plan.flat_fee_timing === 'in_advance' && !inTrial(s, c.nextStart)) {
    lines.push(
      covering(
        c.nextStart,
        c.nextEnd,
      )(
        flatFeeLine(
          'flat_fee',
          `${plan.name} flat fee (next period)`,
          plan.flat_fee,
          prorationFraction(c.nextStart, c.nextEnd, c.nextStart, c.nextEnd),
          cur,
        ),
      ),
    );
  }
  return dropZeroFees(lines);
}

/** change_subscription_plan at `at` (inside the current period). */
export function planChangeLines(oldPlan: PlanVersion, newPlan: PlanVersion, s: SubscriptionRow, at: Date): LineItem[] {
  if (s.status !== 'active' || inTrial(s, s.current_period_start)) return [];
  const cur = oldPlan.currency.trim();
  const lines: LineItem[] = [];
  if (oldPlan.flat_fee_timing === 'in_advance')
    lines.push(
      flatFeeLine(
        'proration_credit',
        `${oldPlan.name} unused time`,
        oldPlan.flat_fee,
        prorationFraction(at, s.current_period_end, s.current_period_start, s.current_period_end),
        cur,
      ),
    );
  else
    lines.push(
      flatFeeLine(
        'proration_charge',
        `${oldPlan.name} used time`,
        oldPlan.flat_fee,
        prorationFraction(s.plan_started_at, at, s.current_period_start, s.current_period_end),
        cur,
      ),
    );
  if (newPlan.flat_fee_timing === 'in_advance')
    lines.push(
      flatFeeLine(
        'proration_charge',
        `${newPlan.name} remaining time`,
        newPlan.flat_fee,
        prorationFraction(at, s.current_period_end, s.current_period_start, s.current_period_end),
        cur,
      ),
    );
  return lines.filter((l) => l.amount_minor !== '0');
}

/** end_current_subscription_and_bill at `at`: usage of [current_period_start, at) + prorated in-arrears fee. */
export function cancelLines(plan: PlanVersion, s: SubscriptionRow, at: Date, usage: ComponentUsage[]): LineItem[] {
  const lines: LineItem[] = usageLines(plan, usage).map(covering(usageStart(s), at));
  if (plan.flat_fee_timing === 'in_arrears' && !inTrial(s, s.current_period_start)) {
    lines.unshift(
      flatFeeLine(
        'flat_fee',
        `${plan.name} flat fee (prorated)`,
        plan.flat_fee,
        prorationFraction(s.plan_started_at, at, s.current_period_start, s.current_period_end),
        plan.currency.trim(),
      ),
    );
  }
  return dropZeroFees(lines);
}

/**
 * Ending a subscription early at `at` (either end type, unless `prorate: false`): a credit for the unused
 * part [at, period end) of an in-advance flat fee that the period's invoice already billed.
 */
export function cancelCreditLines(plan: PlanVersion, s: SubscriptionRow, at: Date): LineItem[] {
  // not_started: the first period's in-advance fee was billed at creation (subscription_start) and `at`
  // is the period start, so a cancel before the start credits all of it
  if (s.status === 'ended' || plan.flat_fee_timing !== 'in_advance' || inTrial(s, s.current_period_start)) return [];
  const line = flatFeeLine(
    'proration_credit',
    `${plan.name} unused time`,
    plan.flat_fee,
    prorationFraction(at, s.current_period_end, s.current_period_start, s.current_period_end),
    plan.currency.trim(),
  );
  return line.amount_minor === '0' ? [] : [covering(at, s.current_period_end)(line)];
}
