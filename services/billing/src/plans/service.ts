// Plans are versioned: create makes version 1; every edit appends version N+1 and moves the plan's
// current_version. Subscriptions keep the version they were created on (or changed to).
import { isDeepStrictEqual } from 'node:util';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import * as featureStore from '../features/store.ts';
import * as metricStore from '../metrics/store.ts';
import { validatePricing } from '../pricing.ts';
import { dec } from '../money.ts';
import * as store from './store.ts';

export type PlanInput = Partial<store.PlanDefinition> & { plan_id?: string; plan_type?: store.PlanVersion['plan_type'] };

const DEFAULTS: Omit<store.PlanDefinition, 'name' | 'interval'> = {
  currency: 'USD',
  flat_fee: '0',
  flat_fee_timing: 'in_advance',
  trial_days: 0,
  components: [],
  entitlements: [],
};

function definitionFrom(input: PlanInput, base?: store.PlanDefinition): store.PlanDefinition {
  const pick = <K extends keyof store.PlanDefinition>(k: K): store.PlanDefinition[K] =>
    (input[k] ?? base?.[k] ?? (DEFAULTS as Partial<store.PlanDefinition>)[k]) as store.PlanDefinition[K];
  const d: store.PlanDefinition = {
    name: pick('name'),
    interval: pick('interval'),
    currency: String(pick('currency')).toUpperCase(),
    flat_fee: pick('flat_fee'),
    flat_fee_timing: pick('flat_fee_timing'),
    trial_days: pick('trial_days'),
    components: pick('components'),
    entitlements: (pick('entitlements') ?? []).map((e) => ({ ...e })),
  };
  if (!d.name || !d.interval) throw badRequest('name and interval are required');
  return d;
}

async function validate(deps: Deps, orgId: string, d: store.PlanDefinition): Promise<void> {
  const metricIds = d.components.map((c) => c.metric_id);
  if (new Set(metricIds).size !== metricIds.length) throw badRequest('each metric may appear in one component only');
  for (const c of d.components) {
    const err = validatePricing(c.pricing) ?? (c.group_prices ?? []).map((g) => validatePricing(g.pricing)).find(Boolean);
    if (err) throw badRequest(`component ${c.metric_id}: ${err}`);
    const m = await metricStore.getMetric(deps.pool, orgId, c.metric_id, false);
    if (!m) throw badRequest(`component ${c.metric_id}: metric does not exist`);
    for (const g of c.group_prices ?? []) {
      const unknown = Object.keys(g.group).filter((k) => !m.group_by.includes(k));
      if (unknown.length)
        throw badRequest(`component ${c.metric_id}: group_prices use ${unknown.join(', ')} which the metric does not group by`);
    }
  }
  const featureIds = d.entitlements.map((e) => e.feature_id);
  if (new Set(featureIds).size !== featureIds.length) throw badRequest('each feature may appear in one entitlement only');
  const features = new Map((await featureStore.getFeatures(deps.pool, orgId, featureIds)).map((f) => [f.feature_id, f]));
  for (const e of d.entitlements) {
    const f = features.get(e.feature_id);
    if (!f || f.archived_at) throw badRequest(`entitlement ${e.feature_id}: feature does not exist`);
    if (f.type === 'boolean' && (e.limit !== undefined || e.limit_type !== undefined || e.reset_period !== undefined))
      throw badRequest(`entitlement ${e.feature_id}: a boolean feature takes no limit`);
    if (f.type === 'metered') {
      e.limit = e.limit ?? null;
      e.limit_type = e.limit_type ?? 'hard';
      e.reset_period = e.reset_period ?? 'billing_period';
    }
  }
}

export async function createPlan(deps: Deps, orgId: string, input: PlanInput & { plan_id: string }) {
  const d = definitionFrom(input);
  await validate(deps, orgId, d);
  const planType = input.plan_type ?? 'base';
  // an add-on is priced by its flat fee per unit; usage is priced by the base plan (README, "Add-ons")
  if (planType === 'add_on' && d.components.length > 0)
    throw badRequest('an add-on plan has no usage components (price: flat_fee per unit)');
  if (await store.insertPlan(deps.pool, orgId, input.plan_id, d, planType)) {
    await deps.cache.invalidateOrg(orgId);
    return { created: true, plan: store.planJson((await store.getPlan(deps.pool, orgId, input.plan_id))!) };
  }
  const existing = (await store.getPlan(deps.pool, orgId, input.plan_id))!;
  const {
    plan_id: _a,
    version: _b,
    current_version: _c,
    created_at: _d,
    version_created_at: _e,
    archived_at,
    plan_type,
    ...def
  } = existing;
  if (!archived_at && plan_type === planType && isDeepStrictEqual(normalizeForCompare(def), normalizeForCompare(d)))
    return { created: false, plan: store.planJson(existing) };
  throw conflict(`plan "${input.plan_id}" already exists with a different definition; PATCH it to create a new version`);
}

function normalizeForCompare(d: store.PlanDefinition) {
  return JSON.parse(JSON.stringify({ ...d, currency: d.currency.trim(), flat_fee: dec(d.flat_fee).toString() }));
}

export async function editPlan(deps: Deps, orgId: string, planId: string, patch: PlanInput) {
  let next: store.PlanDefinition | null = null;
  const current = await store.getPlan(deps.pool, orgId, planId);
  if (!current || current.archived_at) throw notFound('plan', planId);
  next = definitionFrom(patch, current);
  await validate(deps, orgId, next);
  if (current.plan_type === 'add_on' && next.components.length > 0)
    throw badRequest('an add-on plan has no usage components (price: flat_fee per unit)');
  const row = await store.addVersion(deps.pool, orgId, planId, (cur) => {
    const {
      plan_id: _a,
      version: _b,
      current_version: _c,
      created_at: _d,
      version_created_at: _e,
      archived_at: _f,
      plan_type: _g,
      ...def
    } = cur;
    return isDeepStrictEqual(normalizeForCompare(def), normalizeForCompare(next!)) ? null : next;
  });
  if (!row) throw notFound('plan', planId);
  await deps.cache.invalidateOrg(orgId);
  return store.planJson(row);
}
