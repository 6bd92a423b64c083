// Add-on segments with their plan versions (no dependency on invoicing: the entitlement snapshot reads it).
import type { PgClient, PgPool } from '@meterline/core';
import * as plans from '../plans/store.ts';
import { inTrial } from '../invoices/price.ts';
import type { PeriodClose } from '../subscriptions/current.ts';
import type { SubscriptionRow } from '../subscriptions/store.ts';
import { addOnCloseLines, addOnLine, type AddOnLine } from './price.ts';
import * as store from './store.ts';

/** Plan versions of segments, loaded once each. */
export async function withPlans(db: PgPool | PgClient, orgId: string, segs: store.AddOnSegment[]) {
  const cache = new Map<string, plans.PlanVersion>();
  const out: { seg: store.AddOnSegment; plan: plans.PlanVersion }[] = [];
  for (const seg of segs) {
    const k = `${seg.add_on_id}\u0000${seg.plan_version}`;
    let p = cache.get(k);
    if (!p) {
      p = (await plans.getPlan(db, orgId, seg.add_on_id, seg.plan_version))!;
      cache.set(k, p);
    }
    out.push({ seg, plan: p });
  }
  return out;
}

/** The open add-ons of some subscriptions with their plan versions (the entitlement snapshot). */
export async function openAddOns(db: PgPool | PgClient, orgId: string, subscriptionIds: string[]) {
  return withPlans(db, orgId, await store.openSegments(db, orgId, subscriptionIds));
}

/** The add-on lines of one period close of `c.before` (issue.ts at the close, estimate.ts for the upcoming invoice). */
export async function periodCloseAddOnLines(db: PgPool | PgClient, orgId: string, c: PeriodClose): Promise<AddOnLine[]> {
  const s = c.before;
  const segs = await store.segmentsOverlapping(db, orgId, s.subscription_id, c.periodStart, c.closeAt);
  if (segs.length === 0) return [];
  return addOnCloseLines(await withPlans(db, orgId, segs), {
    periodStart: c.periodStart,
    periodEnd: c.periodEnd,
    closeAt: c.closeAt,
    renews: c.renews,
    nextStart: c.nextStart,
    nextEnd: c.nextEnd,
    trialNow: inTrial(s, c.periodStart),
    trialNext: inTrial(s, c.nextStart),
  });
}

/**
 * Ending a subscription early at `at` (end_current_subscription_*): its in-arrears add-ons' part of the
 * period until `at` (billed only by ..._and_bill) and, unless `prorate` is false, a credit for the unused
 * part of in-advance add-ons; every open segment ends at `at`.
 */
export async function cancelAddOnLines(
  db: PgClient,
  orgId: string,
  s: SubscriptionRow,
  at: Date,
  prorate: boolean,
): Promise<{ charge: AddOnLine[]; credit: AddOnLine[] }> {
  const out = { charge: [] as AddOnLine[], credit: [] as AddOnLine[] };
  // not_started: `at` is the period start; its in-advance add-ons were billed for the whole first period
  // at attach, so they are credited in full (and their segments, starting at the start, end there)
  const notStarted = s.status === 'not_started';
  const segs = await store.segmentsOverlapping(
    db,
    orgId,
    s.subscription_id,
    s.current_period_start,
    notStarted ? s.current_period_end : at,
  );
  if (segs.length === 0) return out;
  const trial = inTrial(s, s.current_period_start);
  if ((s.status === 'active' || notStarted) && !trial) {
    for (const { seg, plan } of await withPlans(db, orgId, segs)) {
      const end = seg.ended_at && seg.ended_at.getTime() < at.getTime() ? seg.ended_at : at;
      if (plan.flat_fee_timing === 'in_arrears' && seg.started_at.getTime() < at.getTime())
        out.charge.push(
          addOnLine(
            plan,
            seg.quantity,
            seg.started_at,
            end,
            s.current_period_start,
            s.current_period_end,
            `${plan.name} x ${seg.quantity}`,
          ),
        );
      else if (plan.flat_fee_timing === 'in_advance' && prorate && seg.ended_at === null)
        out.credit.push(
          addOnLine(
            plan,
            -seg.quantity,
            at,
            s.current_period_end,
            s.current_period_start,
            s.current_period_end,
            `${plan.name} unused time`,
          ),
        );
    }
  }
  for (const seg of segs) if (seg.ended_at === null) await store.endSegment(db, orgId, seg.segment_id, at);
  return { charge: out.charge.filter((l) => l.amount_minor !== '0'), credit: out.credit.filter((l) => l.amount_minor !== '0') };
}
