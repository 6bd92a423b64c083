// What the entitlement hot path needs about one customer, loaded with a handful of queries and
// cached (see cache.ts for TTL and invalidation). Loading writes nothing: each subscription is taken as
// of now (currentPeriod: the period computed from its dates), so a check right after a period boundary
// already counts in the new period even before the scheduler has closed the old one.
import type { Deps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import * as customers from '../customers/store.ts';
import * as featureStore from '../features/store.ts';
import * as metricStore from '../metrics/store.ts';
import * as plans from '../plans/store.ts';
import * as subs from '../subscriptions/store.ts';
import { currentPeriod } from '../subscriptions/current.ts';
import { openAddOns } from '../addons/load.ts';
import type { AddOnSegment } from '../addons/store.ts';
import * as promotions from '../promotions/store.ts';

export interface CustomerSnapshot {
  customer: customers.CustomerRow;
  subscriptions: { row: subs.SubscriptionRow; plan: plans.PlanVersion; addOns?: { seg: AddOnSegment; plan: plans.PlanVersion }[] }[];
  /** Promotional entitlements in force when loaded (each is checked again against the clock when read). */
  promotions?: promotions.PromotionRow[];
  features: Map<string, featureStore.FeatureRow>;
  metrics: Map<string, metricStore.MetricRow>;
  /** The snapshot is stale from this instant (earliest period end or start among live subscriptions). */
  validUntilMs: number;
}

async function load(deps: Deps, orgId: string, customerId: string): Promise<CustomerSnapshot> {
  const customer = await customers.getCustomer(deps.pool, orgId, customerId);
  if (!customer) throw notFound('customer', customerId);
  const now = deps.now();
  const live = (await subs.liveSubscriptions(deps.pool, orgId, customerId))
    .map((s) => currentPeriod(s, now))
    .filter((s) => s.status !== 'ended');
  const active = live.filter((s) => s.status === 'active');
  const withPlans = await Promise.all(
    active.map(async (row) => ({ row, plan: (await plans.getPlan(deps.pool, orgId, row.plan_id, row.plan_version))! })),
  );
  // add-ons attached to the active subscriptions, and promotional grants (migration 0012)
  const [addOns, promos] = await Promise.all([
    openAddOns(
      deps.pool,
      orgId,
      withPlans.map((s) => s.row.subscription_id),
    ),
    promotions.customerPromotions(deps.pool, orgId, customerId),
  ]);
  const inForce = promos.filter((p) => promotions.inForce(p, now));
  const featureIds = [
    ...new Set([
      ...withPlans.flatMap((s) => s.plan.entitlements.map((e) => e.feature_id)),
      ...addOns.flatMap((a) => a.plan.entitlements.map((e) => e.feature_id)),
      ...inForce.map((p) => p.feature_id),
    ]),
  ];
  const features = new Map((await featureStore.getFeatures(deps.pool, orgId, featureIds)).map((f) => [f.feature_id, f]));
  const metricIds = new Set([...features.values()].flatMap((f) => (f.metric_id ? [f.metric_id] : [])));
  for (const s of withPlans) for (const c of s.plan.components) metricIds.add(c.metric_id);
  const metrics = new Map<string, metricStore.MetricRow>();
  for (const id of metricIds) {
    const m = await metricStore.getMetric(deps.pool, orgId, id);
    if (m) metrics.set(id, m);
  }
  const boundaries = live.flatMap((s) => [
    s.current_period_end.getTime(),
    ...(s.end_date ? [s.end_date.getTime()] : []),
    ...(s.status === 'not_started' ? [s.start_date.getTime()] : []),
  ]);
  // a promotion's expiry is a boundary too: the first read at or after it loads afresh
  for (const p of inForce) if (p.expires_at) boundaries.push(p.expires_at.getTime());
  for (const a of addOns) if (a.seg.started_at.getTime() > now.getTime()) boundaries.push(a.seg.started_at.getTime());
  const subscriptions = withPlans.map((s) => ({ ...s, addOns: addOns.filter((a) => a.seg.subscription_id === s.row.subscription_id) }));
  return { customer, subscriptions, promotions: inForce, features, metrics, validUntilMs: Math.min(Infinity, ...boundaries) };
}

export async function customerSnapshot(deps: Deps, orgId: string, customerId: string): Promise<CustomerSnapshot> {
  const key = `${orgId}\u0000${customerId}\u0000snapshot`;
  const snap = (await deps.cache.customers.get(key, () => load(deps, orgId, customerId))) as CustomerSnapshot;
  if (snap.validUntilMs <= deps.now().getTime()) {
    deps.cache.dropCustomer(orgId, customerId); // a period boundary passed: every instance notices by itself
    return (await deps.cache.customers.get(key, () => load(deps, orgId, customerId))) as CustomerSnapshot;
  }
  return snap;
}
