// Feature references on the check routes: `feature_name=` of GET /v1/customer_access (Lotus) and
// `feature_id` of POST /v1/check (Autumn) take the feature's id or its name. An id always wins (ids are
// unique; a name is not); a name matches the non-archived features with exactly that name (case-
// sensitive): one -> its id, several -> 400 naming the candidates, none -> the reference is passed on
// as an id (the service answers 404 feature not found). Both lookups are cached with the catalog
// (cache.ts: a feature create/rename/archive drops them), so a check by id costs nothing extra.
import type { Deps } from '../deps.ts';
import { ApiError } from '../http/errors.ts';
import * as featureStore from '../features/store.ts';

const MAX_CANDIDATES = 10;

async function featuresNamed(deps: Deps, orgId: string, name: string): Promise<string[] | null> {
  const { rows } = await deps.pool.query<{ feature_id: string }>(
    'SELECT feature_id FROM features WHERE organization_id = $1 AND name = $2 AND archived_at IS NULL ORDER BY feature_id LIMIT $3',
    [orgId, name, MAX_CANDIDATES + 1],
  );
  return rows.length ? rows.map((r) => r.feature_id) : null; // null: cached as "not found" (short TTL)
}

/** The feature id `ref` (an id or a name) stands for; `field` names the request field in errors. */
export async function resolveFeatureRef(deps: Deps, orgId: string, ref: string, field: string): Promise<string> {
  // the same cache entry as the service's featureOrThrow (entitlements/service.ts)
  const byId = await deps.cache.customers.get(`${orgId}\u0000\u0000feature\u0000${ref}`, () =>
    featureStore.getFeature(deps.pool, orgId, ref),
  );
  if (byId) return ref;
  const named = (await deps.cache.customers.get(`${orgId}\u0000\u0000feature_named\u0000${ref}`, () => featuresNamed(deps, orgId, ref))) as
    | string[]
    | null;
  if (!named) return ref;
  if (named.length === 1) return named[0]!;
  const shown = named.slice(0, MAX_CANDIDATES);
  throw new ApiError(
    400,
    'ambiguous_feature',
    `${field} "${ref}" is the name of ${named.length > MAX_CANDIDATES ? `more than ${MAX_CANDIDATES}` : named.length} features (${shown.map((id) => `"${id}"`).join(', ')}); pass the feature id`,
    [{ field, reason: 'ambiguous', candidates: shown }],
  );
}
