import type { FastifyInstance } from 'fastify';
import { CreateEntityBody, CustomerParams, Entity, EntityParams, ErrorResponse, ListEntitiesQuery, Page } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function entityRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/customers/:customer_id/entities',
    {
      schema: {
        summary: 'Create an entity (seat, workspace) of a customer; restores a deleted one (Autumn entities, Stigg resources)',
        tags: ['entities'],
        params: CustomerParams,
        body: CreateEntityBody,
        response: { 201: Entity, 200: Entity, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = await svc.createEntity(deps, req.orgId, req.params.customer_id, req.body);
      return reply.code(r.created ? 201 : 200).send(r.entity);
    },
  );

  app.get(
    '/v1/customers/:customer_id/entities',
    {
      schema: {
        summary: "A customer's entities (active ones unless include_deleted)",
        tags: ['entities'],
        params: CustomerParams,
        querystring: ListEntitiesQuery,
        response: { 200: Page(Entity), 404: ErrorResponse },
      },
    },
    async (req) => {
      const q = req.query;
      return pageOf(await svc.listEntities(deps, req.orgId, req.params.customer_id, { ...q, ...pageParams(q) }), q);
    },
  );

  app.get(
    '/v1/customers/:customer_id/entities/:entity_id',
    {
      schema: { summary: 'One active entity', tags: ['entities'], params: EntityParams, response: { 200: Entity, 404: ErrorResponse } },
    },
    async (req) => svc.getEntity(deps, req.orgId, req.params.customer_id, req.params.entity_id),
  );

  app.delete(
    '/v1/customers/:customer_id/entities/:entity_id',
    {
      schema: {
        summary: 'Soft-delete an entity: no more checks with it; its usage is kept and still counts toward the customer',
        tags: ['entities'],
        params: EntityParams,
        response: { 200: Entity, 404: ErrorResponse },
      },
    },
    async (req) => svc.deleteEntity(deps, req.orgId, req.params.customer_id, req.params.entity_id),
  );
}
