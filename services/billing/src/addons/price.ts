// What add-ons put on invoices: pure functions from (add-on plan version, segments, period) to `add_on`
// lines, on top of pricing.ts's flatFeeLine (exact, rounded half-even to minor units once per line).
//   - an add-on's price is its plan's flat fee per unit: a line is fee x quantity x the fraction of the
//     billing period it covers (prorated like the plan: prorationFraction over the subscription's period).
//   - in_arrears add-on: at each period close, one line per segment (constant quantity) for the part of
//     the period it was attached.
//   - in_advance add-on: attaching or raising the quantity mid-period bills the added units for the rest
//     of the period at once (an add_on_change invoice), lowering or removing credits the unused part
//     (a negative add_on line); at a renewal close, the quantity attached then for the whole next period.
//   - a trial waives add-on fees of periods that start inside it, like the plan's flat fee.
import type { PlanVersion } from '../plans/store.ts';
import { flatFeeLine, prorationFraction } from '../pricing.ts';
import { dec } from '../money.ts';
import type { LineItem } from '../invoices/price.ts';
import type { AddOnSegment } from './store.ts';

export type AddOnLine = LineItem & { kind: 'add_on'; add_on_id: string; add_on_quantity: number; unit_price: string };

/** fee x |quantity| x fraction of [periodStart, periodEnd) covered by [from, to); negative quantity = a credit. */
export function addOnLine(
  plan: PlanVersion,
  quantity: number,
  from: Date,
  to: Date,
  periodStart: Date,
  periodEnd: Date,
  description: string,
): AddOnLine {
  const fraction = prorationFraction(from, to, periodStart, periodEnd);
  const fee = dec(plan.flat_fee).times(Math.abs(quantity)).toString();
  const l = flatFeeLine(quantity < 0 ? 'proration_credit' : 'flat_fee', description, fee, fraction, plan.currency.trim());
  return {
    ...l,
    kind: 'add_on',
    quantity: String(quantity),
    add_on_id: plan.plan_id,
    add_on_quantity: quantity,
    unit_price: plan.flat_fee,
    period_start: new Date(Math.max(from.getTime(), periodStart.getTime())).toISOString(),
    period_end: new Date(Math.min(to.getTime(), periodEnd.getTime())).toISOString(),
  };
}

export interface CloseWindow {
  periodStart: Date;
  periodEnd: Date;
  closeAt: Date;
  renews: boolean;
  nextStart: Date;
  nextEnd: Date;
  /** fees of the closed period / of the next one are waived (trial) */
  trialNow: boolean;
  trialNext: boolean;
}

/** The add-on lines of a period close: in-arrears segments of the period, in-advance quantities of the next one. */
export function addOnCloseLines(segments: { seg: AddOnSegment; plan: PlanVersion }[], c: CloseWindow): AddOnLine[] {
  const lines: AddOnLine[] = [];
  for (const { seg, plan } of segments) {
    const end = seg.ended_at ?? c.closeAt;
    if (plan.flat_fee_timing === 'in_arrears') {
      if (c.trialNow || end.getTime() <= c.periodStart.getTime() || seg.started_at.getTime() >= c.closeAt.getTime()) continue;
      const to = end.getTime() < c.closeAt.getTime() ? end : c.closeAt;
      lines.push(addOnLine(plan, seg.quantity, seg.started_at, to, c.periodStart, c.periodEnd, `${plan.name} x ${seg.quantity}`));
    } else if (
      c.renews &&
      !c.trialNext &&
      seg.started_at.getTime() <= c.closeAt.getTime() &&
      (seg.ended_at === null || seg.ended_at > c.closeAt)
    ) {
      lines.push(
        addOnLine(plan, seg.quantity, c.nextStart, c.nextEnd, c.nextStart, c.nextEnd, `${plan.name} x ${seg.quantity} (next period)`),
      );
    }
  }
  return lines.filter((l) => l.amount_minor !== '0');
}
