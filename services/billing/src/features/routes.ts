import type { FastifyInstance } from 'fastify';
import {
  CreateFeatureBody,
  ErrorResponse,
  Feature,
  FeatureParams,
  ListArchivableQuery,
  Page,
  RenameFeatureBody,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

export async function featureRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/features',
    {
      schema: {
        summary: 'Create a feature (boolean, or metered bound to a metric)',
        tags: ['features'],
        body: CreateFeatureBody,
        response: { 201: Feature, 200: Feature, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = await svc.createFeature(deps, req.orgId, req.body);
      return reply.code(r.created ? 201 : 200).send(r.feature);
    },
  );
  app.get(
    '/v1/features',
    {
      schema: { summary: 'List features', tags: ['features'], querystring: ListArchivableQuery, response: { 200: Page(Feature) } },
    },
    async (req) => {
      const q = req.query;
      return pageOf(
        (await store.listFeatures(deps.pool, req.orgId, { ...pageParams(q), include_archived: q.include_archived ?? false })).map(
          store.featureJson,
        ),
        q,
      );
    },
  );
  app.get(
    '/v1/features/:feature_id',
    { schema: { summary: 'Get a feature', tags: ['features'], params: FeatureParams, response: { 200: Feature, 404: ErrorResponse } } },
    async (req) => {
      const id = req.params.feature_id;
      const row = await store.getFeature(deps.pool, req.orgId, id);
      if (!row) throw notFound('feature', id);
      return store.featureJson(row);
    },
  );
  app.patch(
    '/v1/features/:feature_id',
    {
      schema: {
        summary: 'Rename a feature',
        tags: ['features'],
        params: FeatureParams,
        body: RenameFeatureBody,
        response: { 200: Feature, 404: ErrorResponse },
      },
    },
    async (req) => svc.renameFeature(deps, req.orgId, req.params.feature_id, req.body.name),
  );
  app.delete(
    '/v1/features/:feature_id',
    { schema: { summary: 'Archive a feature', tags: ['features'], params: FeatureParams, response: { 200: Feature, 404: ErrorResponse } } },
    async (req) => svc.archiveFeature(deps, req.orgId, req.params.feature_id),
  );
}
