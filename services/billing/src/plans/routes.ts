import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  CreatePlanBody,
  EditPlanBody,
  ErrorResponse,
  ListArchivableQuery,
  Page,
  Plan,
  PlanParams,
  PlanVersionParams,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

export async function planRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/plans',
    {
      schema: {
        summary: 'Create a plan (version 1)',
        tags: ['plans'],
        body: CreatePlanBody,
        response: { 201: Plan, 200: Plan, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = await svc.createPlan(deps, req.orgId, req.body);
      return reply.code(r.created ? 201 : 200).send(r.plan);
    },
  );
  app.get(
    '/v1/plans',
    {
      schema: {
        summary: 'List plans (current versions)',
        tags: ['plans'],
        querystring: ListArchivableQuery,
        response: { 200: Page(Plan) },
      },
    },
    async (req) => {
      const q = req.query;
      return pageOf(
        (await store.listPlans(deps.pool, req.orgId, { ...pageParams(q), include_archived: q.include_archived ?? false })).map(
          store.planJson,
        ),
        q,
      );
    },
  );
  app.get(
    '/v1/plans/:plan_id',
    {
      schema: {
        summary: 'Get a plan (current version, with the list of versions)',
        tags: ['plans'],
        params: PlanParams,
        response: { 200: Plan, 404: ErrorResponse },
      },
    },
    async (req) => {
      const id = req.params.plan_id;
      const row = await store.getPlan(deps.pool, req.orgId, id);
      if (!row) throw notFound('plan', id);
      return { ...store.planJson(row), versions: await store.listVersions(deps.pool, req.orgId, id) };
    },
  );
  app.get(
    '/v1/plans/:plan_id/versions/:version',
    {
      schema: {
        summary: 'Get one version of a plan',
        tags: ['plans'],
        params: PlanVersionParams,
        response: { 200: Plan, 404: ErrorResponse },
      },
    },
    async (req) => {
      const { plan_id, version } = req.params;
      const row = await store.getPlan(deps.pool, req.orgId, plan_id, version);
      if (!row) throw notFound('plan version', `${plan_id}@${version}`);
      return store.planJson(row);
    },
  );
  app.patch(
    '/v1/plans/:plan_id',
    {
      schema: {
        summary: 'Edit a plan: creates a new version (existing subscriptions keep theirs)',
        tags: ['plans'],
        params: PlanParams,
        body: EditPlanBody,
        response: { 200: Plan, 404: ErrorResponse },
      },
    },
    async (req) => svc.editPlan(deps, req.orgId, req.params.plan_id, req.body),
  );
  app.delete(
    '/v1/plans/:plan_id',
    {
      schema: {
        summary: 'Archive a plan (no new subscriptions; existing ones continue)',
        tags: ['plans'],
        params: PlanParams,
        response: { 204: Type.Null(), 404: ErrorResponse },
      },
    },
    async (req, reply) => {
      const id = req.params.plan_id;
      if (!(await store.archivePlan(deps.pool, req.orgId, id))) throw notFound('plan', id);
      deps.cache.invalidateOrg(req.orgId);
      return reply.code(204).send(null);
    },
  );
}
