import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ERROR_SCHEMA, notFound } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import { ID } from '../customers/routes.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

const FEATURE = {
  type: 'object',
  properties: { feature_id: { type: 'string' }, name: { type: ['string', 'null'] }, type: { type: 'string', enum: ['boolean', 'metered'] }, metric_id: { type: ['string', 'null'] }, created_at: { type: 'string' }, updated_at: { type: 'string' }, archived_at: { type: ['string', 'null'] } },
} as const;
const params = { type: 'object', properties: { feature_id: { type: 'string' } } } as const;

export async function featureRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.post('/v1/features', {
    schema: {
      summary: 'Create a feature (boolean, or metered bound to a metric)', tags: ['features'],
      body: { type: 'object', additionalProperties: false, required: ['feature_id', 'type'], properties: { feature_id: ID, name: { type: ['string', 'null'], maxLength: 500 }, type: { type: 'string', enum: ['boolean', 'metered'] }, metric_id: { type: ['string', 'null'], minLength: 1 } } },
      response: { 201: FEATURE, 200: FEATURE, 409: ERROR_SCHEMA },
    },
  }, async (req, reply) => {
    const r = await svc.createFeature(deps, req.orgId, req.body as svc.FeatureInput);
    return reply.code(r.created ? 201 : 200).send(r.feature);
  });
  app.get('/v1/features', {
    schema: { summary: 'List features', tags: ['features'], querystring: { type: 'object', additionalProperties: false, properties: { ...PAGINATION_QUERY, include_archived: { type: 'boolean', default: false } } }, response: { 200: listResponse(FEATURE) } },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; include_archived: boolean };
    return pageOf((await store.listFeatures(deps.pool, req.orgId, q)).map(store.featureJson), q);
  });
  app.get('/v1/features/:feature_id', { schema: { summary: 'Get a feature', tags: ['features'], params, response: { 200: FEATURE, 404: ERROR_SCHEMA } } }, async (req) => {
    const id = (req.params as { feature_id: string }).feature_id;
    const row = await store.getFeature(deps.pool, req.orgId, id);
    if (!row) throw notFound('feature', id);
    return store.featureJson(row);
  });
  app.patch('/v1/features/:feature_id', {
    schema: { summary: 'Rename a feature', tags: ['features'], params, body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: ['string', 'null'], maxLength: 500 } } }, response: { 200: FEATURE, 404: ERROR_SCHEMA } },
  }, async (req) => svc.renameFeature(deps, req.orgId, (req.params as { feature_id: string }).feature_id, (req.body as { name: string | null }).name));
  app.delete('/v1/features/:feature_id', { schema: { summary: 'Archive a feature', tags: ['features'], params, response: { 200: FEATURE, 404: ERROR_SCHEMA } } }, async (req) =>
    svc.archiveFeature(deps, req.orgId, (req.params as { feature_id: string }).feature_id));
}
