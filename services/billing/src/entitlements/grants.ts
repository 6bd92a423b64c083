// Which grants give a customer a feature now, and which one is in force (services/billing/README.md,
// "Promotional entitlements" and "Add-ons"):
//   - a subscription grants a feature through its plan and its add-ons together: an add-on's limit
//     counts once per unit (limit x quantity) and ADDS to the plan's limit for the same feature;
//     any unlimited contribution makes the whole grant unlimited. Limit type and reset period are the
//     plan's (an add-on's own when the plan does not have the feature: source add_on).
//   - a promotional entitlement is a grant of its own (source promotional), in force until expires_at
//     (exclusive), its usage counted in windows anchored on when it was granted.
//   - the most generous grant wins (unlimited beats any limit, then the largest limit; on a tie the
//     subscription's): a promotion extends access, it never reduces what the plan gives.
import type { EntitlementGrant } from '@meterline/contracts';
import type { ResetPeriod } from '../periods.ts';
import { inForce } from '../promotions/store.ts';
import type { CustomerSnapshot } from './snapshot.ts';

type Sub = CustomerSnapshot['subscriptions'][number];

export interface Grant {
  source: 'plan' | 'add_on' | 'promotional';
  /** null: unlimited (or a boolean feature) */
  limit: number | null;
  limitType: 'hard' | 'soft';
  reset: ResetPeriod;
  /** what the usage window is anchored on (periods.ts usageWindow) */
  anchor: { startDate: Date; periodStart: Date; periodEnd: Date };
  sub: Sub | null;
  expiresAt: Date | null;
  grants: EntitlementGrant[];
}

const FAR = new Date(8_640_000_000_000_000);

function subscriptionGrant(sub: Sub, featureId: string, now: Date): Grant | null {
  const base = sub.plan.entitlements.find((e) => e.feature_id === featureId);
  const addOns = (sub.addOns ?? []).flatMap(({ seg, plan }) => {
    if (seg.started_at.getTime() > now.getTime() || (seg.ended_at && seg.ended_at.getTime() <= now.getTime())) return [];
    const ent = plan.entitlements.find((e) => e.feature_id === featureId);
    return ent ? [{ seg, plan, ent }] : [];
  });
  if (!base && addOns.length === 0) return null;
  const grants: EntitlementGrant[] = [];
  if (base)
    grants.push({
      source: 'plan',
      plan_id: sub.plan.plan_id,
      subscription_id: sub.row.subscription_id,
      quantity: null,
      usage_limit: base.limit ?? null,
      expires_at: null,
    });
  for (const a of addOns)
    grants.push({
      source: 'add_on',
      plan_id: a.plan.plan_id,
      subscription_id: sub.row.subscription_id,
      quantity: a.seg.quantity,
      usage_limit: a.ent.limit === null || a.ent.limit === undefined ? null : a.ent.limit * a.seg.quantity,
      expires_at: null,
    });
  const limit = grants.some((g) => g.usage_limit === null) ? null : grants.reduce((s, g) => s + (g.usage_limit as number), 0);
  const rule = base ?? addOns[0]!.ent;
  return {
    source: base ? 'plan' : 'add_on',
    limit,
    limitType: rule.limit_type ?? 'hard',
    reset: rule.reset_period ?? 'billing_period',
    anchor: { startDate: sub.row.start_date, periodStart: sub.row.current_period_start, periodEnd: sub.row.current_period_end },
    sub,
    expiresAt: null,
    grants,
  };
}

/** Every grant of the feature in force at `now`: each active subscription's, then the promotion. */
export function grantsFor(snap: CustomerSnapshot, featureId: string, now: Date): Grant[] {
  const out: Grant[] = [];
  for (const sub of snap.subscriptions) {
    const g = subscriptionGrant(sub, featureId, now);
    if (g) out.push(g);
  }
  const p = (snap.promotions ?? []).find((x) => x.feature_id === featureId && inForce(x, now));
  if (p) {
    const limit = p.unlimited ? null : p.usage_limit;
    out.push({
      source: 'promotional',
      limit,
      limitType: 'hard',
      reset: p.reset_period,
      anchor: { startDate: p.granted_at, periodStart: p.granted_at, periodEnd: p.expires_at ?? FAR },
      sub: null,
      expiresAt: p.expires_at,
      grants: [
        {
          source: 'promotional',
          plan_id: null,
          subscription_id: null,
          quantity: null,
          usage_limit: limit,
          expires_at: p.expires_at?.toISOString() ?? null,
        },
      ],
    });
  }
  return out;
}

/** The most generous grant: unlimited beats any limit, then the largest limit; ties keep the first. */
export function bestGrant(grants: Grant[]): Grant | null {
  let best: Grant | null = null;
  for (const g of grants) {
    if (!best) best = g;
    else if (best.limit !== null && (g.limit === null || g.limit > best.limit)) best = g;
  }
  return best;
}
