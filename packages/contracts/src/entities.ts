// Entities (Autumn entities, Stigg resources): sub-accounts of a customer — seats, workspaces — with
// their own usage and, for entitlements marked `per_entity`, their own balances. Billing's routes:
// /v1/customers/:customer_id/entities[/:entity_id] (services/billing/README.md, "Entities").
import { Type, type Static } from '@sinclair/typebox';
import { Nullable } from './schema.ts';
import { ID_MAX_LENGTH, ID_PATTERN } from './limits.ts';
import { PaginationQuery } from './common.ts';

/** An entity id: the characters of other ids (A-Z a-z 0-9 _ . : @ -), 1..200. */
export const EntityId = Type.String({
  minLength: 1,
  maxLength: ID_MAX_LENGTH,
  pattern: ID_PATTERN,
  description: "the customer's entity (seat, workspace): 1..200 of A-Z a-z 0-9 _ . : @ -",
});

export const CreateEntityBody = Type.Object(
  {
    entity_id: EntityId,
    name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
    feature_id: Type.Optional(Nullable(Type.String({ maxLength: ID_MAX_LENGTH, pattern: ID_PATTERN }))),
  },
  { additionalProperties: false },
);
export type CreateEntityInput = Static<typeof CreateEntityBody>;

export const Entity = Type.Object({
  customer_id: Type.String(),
  entity_id: Type.String(),
  name: Nullable(Type.String()),
  feature_id: Nullable(Type.String()),
  created_at: Type.String(),
  deleted_at: Nullable(Type.String()),
});
export type Entity = Static<typeof Entity>;

export const EntityParams = Type.Object({ customer_id: Type.String(), entity_id: Type.String() });
export const ListEntitiesQuery = Type.Object(
  { ...PaginationQuery, include_deleted: Type.Optional(Type.Boolean({ default: false })) },
  { additionalProperties: false },
);
