import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { AddOnParams, AttachAddOnBody, ErrorResponse, SubscriptionAddOn, SubscriptionParams, UpdateAddOnBody } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function addOnRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  const errors = { 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };
  app.post(
    '/v1/subscriptions/:subscription_id/add_ons',
    {
      schema: {
        summary: 'Attach an add-on plan with a quantity (priced and entitled per unit, prorated from now)',
        tags: ['subscriptions'],
        params: SubscriptionParams,
        body: AttachAddOnBody,
        response: { 201: SubscriptionAddOn, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.attachAddOn(deps, req.orgId, req.params.subscription_id, req.body)),
  );
  app.get(
    '/v1/subscriptions/:subscription_id/add_ons',
    {
      schema: {
        summary: "A subscription's add-ons and their current quantities",
        tags: ['subscriptions'],
        params: SubscriptionParams,
        response: { 200: Type.Object({ data: Type.Array(SubscriptionAddOn) }), 404: ErrorResponse },
      },
    },
    async (req) => ({ data: await svc.listAddOns(deps, req.orgId, req.params.subscription_id) }),
  );
  app.patch(
    '/v1/subscriptions/:subscription_id/add_ons/:plan_id',
    {
      schema: {
        summary: "Change an add-on's quantity from now",
        tags: ['subscriptions'],
        params: AddOnParams,
        body: UpdateAddOnBody,
        response: { 200: SubscriptionAddOn, ...errors },
      },
    },
    async (req) => svc.updateAddOn(deps, req.orgId, req.params.subscription_id, req.params.plan_id, req.body),
  );
  app.delete(
    '/v1/subscriptions/:subscription_id/add_ons/:plan_id',
    {
      schema: {
        summary: 'Remove an add-on from now',
        tags: ['subscriptions'],
        params: AddOnParams,
        response: { 200: SubscriptionAddOn, ...errors },
      },
    },
    async (req) => svc.removeAddOn(deps, req.orgId, req.params.subscription_id, req.params.plan_id),
  );
}
