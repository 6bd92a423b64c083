// Billable metrics: exactly core's MetricDefinition, stored in billable_metrics. An update that
// changes the definition bumps `version` and `updated_at`; the aggregator polls updated_at and
// recomputes that metric's aggregates for the new version.
import { isDeepStrictEqual } from 'node:util';
import { MAX_GROUP_BY, withTransaction } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ApiError, badRequest, conflict, notFound } from '../http/errors.ts';
import * as store from './store.ts';

function check(m: store.MetricInput): void {
  if (m.aggregation !== 'count' && !m.property) throw badRequest(`aggregation "${m.aggregation}" needs a property`);
  if (m.group_by.length > MAX_GROUP_BY) throw badRequest(`group_by takes at most ${MAX_GROUP_BY} properties`);
  if (new Set(m.group_by).size !== m.group_by.length) throw badRequest('group_by properties must differ');
}

function normalize(input: Partial<store.MetricInput> & { metric_id: string }, base?: store.MetricInput): store.MetricInput {
  const m: store.MetricInput = {
    metric_id: input.metric_id,
    name: input.name !== undefined ? input.name : (base?.name ?? null),
    event_name: input.event_name ?? base?.event_name ?? '',
    aggregation: input.aggregation ?? base?.aggregation ?? 'count',
    property: input.property !== undefined ? input.property : (base?.property ?? null),
    filters: input.filters ?? base?.filters ?? [],
    group_by: input.group_by ?? base?.group_by ?? [],
  };
  if (m.aggregation === 'count' && input.aggregation === 'count' && input.property === undefined) m.property = null;
  check(m);
  return m;
}

const definitionOf = (m: store.MetricInput) => ({
  event_name: m.event_name,
  aggregation: m.aggregation,
  property: m.property,
  filters: m.filters,
  group_by: m.group_by,
});

export async function createMetric(deps: Deps, orgId: string, input: store.MetricInput) {
  const m = normalize(input);
  const limit = deps.config.billing.maxMetricsPerOrganization;
  // The limit holds under concurrent creates: they serialize on the organization's row, so the count
  // and the insert are one decision. A repeat of an existing metric is answered whatever the count.
  const row = await withTransaction(deps.pool, async (db) => {
    await db.query('SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE', [orgId]);
    if (await store.getMetric(db, orgId, m.metric_id)) return null;
    const live = await store.countLiveMetrics(db, orgId);
    if (live >= limit) {
      throw new ApiError(
        409,
        'metric_limit_reached',
        `the organization has ${live} metrics, the limit (BILLING_MAX_METRICS_PER_ORGANIZATION) is ${limit}: archive one first`,
        { limit, live },
      );
    }
    return store.insertMetric(db, orgId, m);
  });
  if (row) {
    await deps.cache.invalidateOrg(orgId);
    return { created: true, metric: store.metricJson(row) };
  }
  const existing = (await store.getMetric(deps.pool, orgId, m.metric_id))!;
  if (!existing.archived_at && existing.name === m.name && isDeepStrictEqual(definitionOf(existing), definitionOf(m)))
    return { created: false, metric: store.metricJson(existing) };
  throw conflict(`metric "${m.metric_id}" already exists with a different definition; use PATCH to change it`);
}

export async function updateMetric(deps: Deps, orgId: string, metricId: string, patch: Partial<store.MetricInput>) {
  const current = await store.getMetric(deps.pool, orgId, metricId, false);
  if (!current) throw notFound('metric', metricId);
  const next = normalize({ ...patch, metric_id: metricId }, current);
  const changed = !isDeepStrictEqual(definitionOf(current), definitionOf(next));
  const row = await store.updateMetric(deps.pool, orgId, metricId, next, changed);
  if (!row) throw notFound('metric', metricId);
  await deps.cache.invalidateOrg(orgId);
  return store.metricJson(row);
}

export async function archiveMetric(deps: Deps, orgId: string, metricId: string) {
  const row = await store.archiveMetric(deps.pool, orgId, metricId);
  if (!row) throw notFound('metric', metricId);
  await deps.cache.invalidateOrg(orgId);
  return store.metricJson(row);
}
