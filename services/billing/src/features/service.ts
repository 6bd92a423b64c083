// Features: boolean (granted or not, e.g. slack_integration) or metered (bound to a billable metric,
// limited per plan entitlement). The binding to a metric is immutable: create a new feature instead.
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import * as metrics from '../metrics/store.ts';
import * as store from './store.ts';

export interface FeatureInput {
  feature_id: string;
  name?: string | null;
  type: 'boolean' | 'metered';
  metric_id?: string | null;
}

export async function createFeature(deps: Deps, orgId: string, input: FeatureInput) {
  const f = { feature_id: input.feature_id, name: input.name ?? null, type: input.type, metric_id: input.metric_id ?? null };
  if (f.type === 'metered' && !f.metric_id) throw badRequest('a metered feature needs metric_id');
  if (f.type === 'boolean' && f.metric_id) throw badRequest('a boolean feature has no metric_id');
  if (f.metric_id && !(await metrics.getMetric(deps.pool, orgId, f.metric_id, false)))
    throw badRequest(`metric "${f.metric_id}" does not exist`);
  const row = await store.insertFeature(deps.pool, orgId, f);
  if (row) {
    await deps.cache.invalidateOrg(orgId); // drops a cached "not found" of this feature everywhere
    return { created: true, feature: store.featureJson(row) };
  }
  const existing = (await store.getFeature(deps.pool, orgId, f.feature_id))!;
  if (!existing.archived_at && existing.name === f.name && existing.type === f.type && existing.metric_id === f.metric_id)
    return { created: false, feature: store.featureJson(existing) };
  throw conflict(`feature "${f.feature_id}" already exists with different data`);
}

export async function renameFeature(deps: Deps, orgId: string, featureId: string, name: string | null) {
  const row = await store.updateFeatureName(deps.pool, orgId, featureId, name);
  if (!row) throw notFound('feature', featureId);
  await deps.cache.invalidateOrg(orgId);
  return store.featureJson(row);
}

export async function archiveFeature(deps: Deps, orgId: string, featureId: string) {
  const row = await store.archiveFeature(deps.pool, orgId, featureId);
  if (!row) throw notFound('feature', featureId);
  await deps.cache.invalidateOrg(orgId);
  return store.featureJson(row);
}
