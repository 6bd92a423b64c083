import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ERROR_SCHEMA, notFound } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import { AMOUNT_SCHEMA, MAX_QUANTITY, QUANTITY_PATTERN } from '../money.ts';
import { ID } from '../customers/routes.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

const DECIMAL = AMOUNT_SCHEMA;
const UNITS = { anyOf: [{ type: 'number', minimum: 0, maximum: MAX_QUANTITY }, { type: 'string', pattern: QUANTITY_PATTERN, maxLength: 28 }] } as const;
const TIER = {
  type: 'object', additionalProperties: false, required: ['up_to', 'unit_price'],
  properties: { up_to: { type: ['integer', 'null'], minimum: 1, maximum: MAX_QUANTITY, description: 'a whole number of units 1..10^15; null = unbounded (last tier)' }, unit_price: DECIMAL, flat_fee: DECIMAL },
} as const;
// if/then on `model` instead of oneOf: a bad tier is reported at its own path (oneOf reports the first branch's complaint).
const PRICING = {
  type: 'object', required: ['model'],
  properties: { model: { type: 'string', enum: ['per_unit', 'graduated', 'volume', 'package'] } },
  allOf: [
    { if: { properties: { model: { const: 'per_unit' } } }, then: { additionalProperties: false, required: ['model', 'unit_price'], properties: { model: { const: 'per_unit' }, unit_price: DECIMAL } } },
    { if: { properties: { model: { enum: ['graduated', 'volume'] } } }, then: { additionalProperties: false, required: ['model', 'tiers'], properties: { model: { enum: ['graduated', 'volume'] }, tiers: { type: 'array', items: TIER, minItems: 1, maxItems: 50 } } } },
    { if: { properties: { model: { const: 'package' } } }, then: { additionalProperties: false, required: ['model', 'package_size', 'package_price'], properties: { model: { const: 'package' }, package_size: { type: 'integer', minimum: 1, maximum: MAX_QUANTITY }, package_price: DECIMAL } } },
  ],
} as const;
const COMPONENT = {
  type: 'object', additionalProperties: false, required: ['metric_id', 'pricing'],
  properties: {
    metric_id: { type: 'string', minLength: 1 }, free_units: UNITS, pricing: PRICING,
    group_prices: { type: 'array', maxItems: 100, items: { type: 'object', additionalProperties: false, required: ['group', 'pricing'], properties: { group: { type: 'object', additionalProperties: { type: 'string', maxLength: 1024 }, propertyNames: { minLength: 1, maxLength: 200 }, minProperties: 1, maxProperties: 2 }, pricing: PRICING } } },
  },
} as const;
const ENTITLEMENT = {
  type: 'object', additionalProperties: false, required: ['feature_id'],
  properties: {
    feature_id: { type: 'string', minLength: 1 },
    limit: { anyOf: [{ type: 'number', minimum: 0, maximum: MAX_QUANTITY }, { type: 'null' }], description: 'metered only; 0..10^15, null = unlimited' },
    limit_type: { type: 'string', enum: ['hard', 'soft'] },
    reset_period: { type: 'string', enum: ['billing_period', 'day', 'week', 'month', 'year', 'never'] },
  },
} as const;
const FIELDS = {
  name: { type: 'string', minLength: 1, maxLength: 500 },
  interval: { type: 'string', enum: ['week', 'month', 'quarter', 'year'] },
  currency: { type: 'string', pattern: '^[A-Za-z]{3}$' },
  flat_fee: DECIMAL,
  flat_fee_timing: { type: 'string', enum: ['in_advance', 'in_arrears'] },
  trial_days: { type: 'integer', minimum: 0, maximum: 3650 },
  components: { type: 'array', items: COMPONENT, maxItems: 50 },
  entitlements: { type: 'array', items: ENTITLEMENT, maxItems: 200 },
} as const;
const PLAN = {
  type: 'object',
  properties: {
    plan_id: { type: 'string' }, version: { type: 'integer' }, current_version: { type: 'integer' }, name: { type: 'string' }, interval: { type: 'string' }, currency: { type: 'string' },
    flat_fee: { type: 'string' }, flat_fee_timing: { type: 'string' }, trial_days: { type: 'integer' },
    components: { type: 'array', items: { type: 'object', additionalProperties: true } }, entitlements: { type: 'array', items: { type: 'object', additionalProperties: true } },
    created_at: { type: 'string' }, version_created_at: { type: 'string' }, archived_at: { type: ['string', 'null'] },
    versions: { type: 'array', items: { type: 'object', properties: { version: { type: 'integer' }, created_at: { type: 'string' }, active_subscriptions: { type: 'integer' } } } },
  },
} as const;
const params = { type: 'object', properties: { plan_id: { type: 'string' } } } as const;

export async function planRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.post('/v1/plans', {
    schema: { summary: 'Create a plan (version 1)', tags: ['plans'], body: { type: 'object', additionalProperties: false, required: ['plan_id', 'name', 'interval'], properties: { plan_id: ID, ...FIELDS } }, response: { 201: PLAN, 200: PLAN, 409: ERROR_SCHEMA } },
  }, async (req, reply) => {
    const r = await svc.createPlan(deps, req.orgId, req.body as never);
    return reply.code(r.created ? 201 : 200).send(r.plan);
  });
  app.get('/v1/plans', {
    schema: { summary: 'List plans (current versions)', tags: ['plans'], querystring: { type: 'object', additionalProperties: false, properties: { ...PAGINATION_QUERY, include_archived: { type: 'boolean', default: false } } }, response: { 200: listResponse(PLAN) } },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; include_archived: boolean };
    return pageOf((await store.listPlans(deps.pool, req.orgId, q)).map(store.planJson), q);
  });
  app.get('/v1/plans/:plan_id', { schema: { summary: 'Get a plan (current version, with the list of versions)', tags: ['plans'], params, response: { 200: PLAN, 404: ERROR_SCHEMA } } }, async (req) => {
    const id = (req.params as { plan_id: string }).plan_id;
    const row = await store.getPlan(deps.pool, req.orgId, id);
    if (!row) throw notFound('plan', id);
    return { ...store.planJson(row), versions: await store.listVersions(deps.pool, req.orgId, id) };
  });
  app.get('/v1/plans/:plan_id/versions/:version', {
    schema: { summary: 'Get one version of a plan', tags: ['plans'], params: { type: 'object', properties: { plan_id: { type: 'string' }, version: { type: 'integer', minimum: 1, maximum: 2147483647 } } }, response: { 200: PLAN, 404: ERROR_SCHEMA } },
  }, async (req) => {
    const { plan_id, version } = req.params as { plan_id: string; version: number };
    const row = await store.getPlan(deps.pool, req.orgId, plan_id, version);
    if (!row) throw notFound('plan version', `${plan_id}@${version}`);
    return store.planJson(row);
  });
  app.patch('/v1/plans/:plan_id', {
    schema: { summary: 'Edit a plan: creates a new version (existing subscriptions keep theirs)', tags: ['plans'], params, body: { type: 'object', additionalProperties: false, minProperties: 1, properties: FIELDS }, response: { 200: PLAN, 404: ERROR_SCHEMA } },
  }, async (req) => svc.editPlan(deps, req.orgId, (req.params as { plan_id: string }).plan_id, req.body as never));
  app.delete('/v1/plans/:plan_id', { schema: { summary: 'Archive a plan (no new subscriptions; existing ones continue)', tags: ['plans'], params, response: { 204: { type: 'null' }, 404: ERROR_SCHEMA } } }, async (req, reply) => {
    const id = (req.params as { plan_id: string }).plan_id;
    if (!(await store.archivePlan(deps.pool, req.orgId, id))) throw notFound('plan', id);
    deps.cache.invalidateOrg(orgId(req));
    return reply.code(204).send();
  });
}
const orgId = (req: { orgId: string }) => req.orgId;
