import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ERROR_SCHEMA } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import { ID } from '../customers/routes.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

const SUB = {
  type: 'object',
  additionalProperties: true,
  properties: {
    subscription_id: { type: 'string' }, customer_id: { type: 'string' }, plan_id: { type: 'string' }, plan_version: { type: 'integer' },
    status: { type: 'string', enum: ['not_started', 'active', 'ended'] }, start_date: { type: 'string' }, end_date: { type: ['string', 'null'] }, auto_renew: { type: 'boolean' },
    current_period_start: { type: 'string' }, current_period_end: { type: 'string' }, plan_started_at: { type: 'string' }, trial_end: { type: ['string', 'null'] },
    ended_at: { type: ['string', 'null'] }, end_reason: { type: ['string', 'null'] }, replaced_by: { type: ['string', 'null'] }, created_at: { type: 'string' },
  },
} as const;
const params = { type: 'object', properties: { subscription_id: { type: 'string' } } } as const;

export async function subscriptionRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.post('/v1/subscriptions', {
    schema: {
      summary: 'Create a subscription', tags: ['subscriptions'],
      body: {
        type: 'object', additionalProperties: false, required: ['customer_id', 'plan_id'],
        properties: { customer_id: { type: 'string' }, plan_id: { type: 'string' }, start_date: { type: 'string', format: 'date-time' }, end_date: { type: ['string', 'null'], format: 'date-time' }, subscription_id: ID, auto_renew: { type: 'boolean', default: true } },
      },
      response: { 201: SUB, 200: SUB, 400: ERROR_SCHEMA, 404: ERROR_SCHEMA, 409: ERROR_SCHEMA },
    },
  }, async (req, reply) => {
    const r = await svc.createSubscription(deps, req.orgId, req.body as svc.CreateInput);
    return reply.code(r.created ? 201 : 200).send(r.subscription);
  });

  app.get('/v1/subscriptions', {
    schema: {
      summary: 'List subscriptions (by customer, status, plan)', tags: ['subscriptions'],
      querystring: { type: 'object', additionalProperties: false, properties: { ...PAGINATION_QUERY, customer_id: { type: 'string' }, status: { type: 'string', enum: ['not_started', 'active', 'ended'] }, plan_id: { type: 'string' } } },
      response: { 200: listResponse(SUB) },
    },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; customer_id?: string; status?: string; plan_id?: string };
    return pageOf(await svc.listSubscriptions(deps, req.orgId, q), q);
  });

  app.get('/v1/subscriptions/:subscription_id', {
    schema: { summary: 'Subscription detail: current period, usage so far', tags: ['subscriptions'], params, response: { 200: { ...SUB, properties: { ...SUB.properties, plan: { type: 'object', additionalProperties: true }, current_period: { type: 'object', additionalProperties: true }, usage: { type: 'array', items: { type: 'object', additionalProperties: true } }, usage_amount_so_far: { type: 'string' } } }, 404: ERROR_SCHEMA } },
  }, async (req) => svc.subscriptionDetail(deps, req.orgId, (req.params as { subscription_id: string }).subscription_id));

  app.patch('/v1/subscriptions/:subscription_id', {
    schema: {
      summary: 'Cancel or change a subscription',
      description: 'turn_off_auto_renew: ends at period end. replace_immediately_type: end_current_subscription_and_bill | end_current_subscription_and_dont_bill (optional plan_id starts that plan now) | change_subscription_plan (plan_id required; same period, prorated).',
      tags: ['subscriptions'], params,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: {
          turn_off_auto_renew: { type: 'boolean' }, auto_renew: { type: 'boolean' }, end_date: { type: ['string', 'null'], format: 'date-time' },
          replace_immediately_type: { type: 'string', enum: ['end_current_subscription_and_bill', 'end_current_subscription_and_dont_bill', 'change_subscription_plan'] },
          plan_id: { type: 'string' },
        },
      },
      response: { 200: SUB, 400: ERROR_SCHEMA, 404: ERROR_SCHEMA, 409: ERROR_SCHEMA },
    },
  }, async (req) => svc.updateSubscription(deps, req.orgId, (req.params as { subscription_id: string }).subscription_id, req.body as svc.UpdateInput));

  app.post('/v1/subscriptions/:subscription_id/cancel', {
    schema: {
      summary: 'Cancel a subscription (Lotus-style shortcut of PATCH)', tags: ['subscriptions'], params,
      body: { type: 'object', additionalProperties: false, properties: { type: { type: 'string', enum: ['turn_off_auto_renew', 'end_current_subscription_and_bill', 'end_current_subscription_and_dont_bill'], default: 'turn_off_auto_renew' } } },
      response: { 200: SUB, 404: ERROR_SCHEMA, 409: ERROR_SCHEMA },
    },
  }, async (req) => {
    const t = (req.body as { type?: string } | undefined)?.type ?? 'turn_off_auto_renew';
    return svc.updateSubscription(deps, req.orgId, (req.params as { subscription_id: string }).subscription_id,
      t === 'turn_off_auto_renew' ? { turn_off_auto_renew: true } : { replace_immediately_type: t as svc.UpdateInput['replace_immediately_type'] });
  });
}
