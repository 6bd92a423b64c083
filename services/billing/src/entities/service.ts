// Entities: create (or restore) / get / list / soft-delete, and what the check path needs — whether an
// entity is active and how many a customer has — cached with the customer's catalog entries (cache.ts:
// every write here invalidates the customer in every billing instance).
import type { CreateEntityInput } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { ApiError, conflict, notFound } from '../http/errors.ts';
import { requireCustomer } from '../customers/service.ts';
import * as store from './store.ts';

export const entityNotFound = (customerId: string, entityId: string) =>
  new ApiError(
    404,
    'entity_not_found',
    `entity "${entityId}" of customer "${customerId}" not found (create it with POST /v1/customers/:customer_id/entities)`,
    {
      customer_id: customerId,
      entity_id: entityId,
    },
  );

/** Create, or restore a deleted one. The same id active again: 200 when name/feature_id match, else 409. */
export async function createEntity(deps: Deps, orgId: string, customerId: string, input: CreateEntityInput) {
  const customer = await requireCustomer(deps, orgId, customerId);
  if (customer.archived_at) throw notFound('customer', customerId);
  const wanted = { customer_id: customerId, entity_id: input.entity_id, name: input.name ?? null, feature_id: input.feature_id ?? null };
  const r = await store.upsertEntity(deps.pool, orgId, wanted);
  if (!r.created) {
    if (r.row.name !== wanted.name || r.row.feature_id !== wanted.feature_id)
      throw conflict(`entity "${input.entity_id}" already exists with different data`, { entity: store.entityJson(r.row) });
    return { created: false, entity: store.entityJson(r.row) };
  }
  await deps.cache.invalidateCustomer(orgId, customerId);
  return { created: true, entity: store.entityJson(r.row) };
}

export async function getEntity(deps: Deps, orgId: string, customerId: string, entityId: string) {
  const row = await store.getEntity(deps.pool, orgId, customerId, entityId);
  if (!row) throw entityNotFound(customerId, entityId);
  return store.entityJson(row);
}

export async function listEntities(
  deps: Deps,
  orgId: string,
  customerId: string,
  q: { limit: number; offset: number; include_deleted?: boolean },
) {
  await requireCustomer(deps, orgId, customerId);
  return (await store.listEntities(deps.pool, orgId, customerId, q)).map(store.entityJson);
}

export async function deleteEntity(deps: Deps, orgId: string, customerId: string, entityId: string) {
  const row = await store.softDeleteEntity(deps.pool, orgId, customerId, entityId);
  if (!row) throw entityNotFound(customerId, entityId);
  await deps.cache.invalidateCustomer(orgId, customerId);
  return store.entityJson(row);
}

/** A customer's active entity ids, cached like the customer's snapshot (TTL + cross-instance invalidation). */
export async function activeEntities(deps: Deps, orgId: string, customerId: string): Promise<ReadonlySet<string>> {
  const ids = (await deps.cache.customers.get(`${orgId}\u0000${customerId}\u0000entities`, () =>
    store.activeEntityIds(deps.pool, orgId, customerId),
  )) as string[];
  return new Set(ids);
}

/** Throws 404 entity_not_found unless the entity is active. */
export async function requireActiveEntity(deps: Deps, orgId: string, customerId: string, entityId: string): Promise<ReadonlySet<string>> {
  const all = await activeEntities(deps, orgId, customerId);
  if (!all.has(entityId)) throw entityNotFound(customerId, entityId);
  return all;
}
