// Add-on segments with their plan versions (no dependency on invoicing: the entitlement snapshot reads it).
import type { PgClient, PgPool } from '@meterline/core';
import * as plans from '../plans/store.ts';
import { inTrial } from '../invoices/price.ts';
import type { PeriodClose } from '../subscriptions/current.ts';
import { addOnCloseLines, type AddOnLine } from './price.ts';
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
