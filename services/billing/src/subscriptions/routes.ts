import type { FastifyInstance } from 'fastify';
import {
  CancelSubscriptionBody,
  CreateSubscriptionBody,
  ErrorResponse,
  InvoicePreview,
  ListSubscriptionsQuery,
  Page,
  PreviewPlanChangeBody,
  PreviewSubscriptionBody,
  Subscription,
  SubscriptionDetail,
  SubscriptionParams,
  UpdateSubscriptionBody,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';
import * as estimate from '../invoices/estimate.ts';
import { cancelIntent, cancelUpdate, patchUpdate } from './cancel.ts';

export async function subscriptionRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/subscriptions',
    {
      schema: {
        summary: 'Create a subscription',
        tags: ['subscriptions'],
        body: CreateSubscriptionBody,
        response: { 201: Subscription, 200: Subscription, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = await svc.createSubscription(deps, req.orgId, req.body);
      return reply.code(r.created ? 201 : 200).send(r.subscription);
    },
  );

  app.get(
    '/v1/subscriptions',
    {
      schema: {
        summary: 'List subscriptions (by customer, status, plan)',
        tags: ['subscriptions'],
        querystring: ListSubscriptionsQuery,
        response: { 200: Page(Subscription) },
      },
    },
    async (req) => {
      const q = req.query;
      return pageOf(await svc.listSubscriptions(deps, req.orgId, { ...q, ...pageParams(q) }), q);
    },
  );

  app.post(
    '/v1/subscriptions/preview',
    {
      schema: {
        summary: 'Estimate the first invoice of a new subscription (nothing is created)',
        tags: ['subscriptions'],
        body: PreviewSubscriptionBody,
        response: { 200: InvoicePreview, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (req) => estimate.previewSubscription(deps, req.orgId, req.body),
  );

  app.get(
    '/v1/subscriptions/:subscription_id/upcoming_invoice',
    {
      schema: {
        summary: "The current period's invoice if it closed with the usage so far (fees included; nothing is written)",
        tags: ['subscriptions'],
        params: SubscriptionParams,
        response: { 200: InvoicePreview, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => estimate.upcomingInvoice(deps, req.orgId, req.params.subscription_id),
  );

  app.post(
    '/v1/subscriptions/:subscription_id/preview_change',
    {
      schema: {
        summary: 'Estimate change_subscription_plan now: usage so far on the old plan, proration credit and charge',
        tags: ['subscriptions'],
        params: SubscriptionParams,
        body: PreviewPlanChangeBody,
        response: { 200: InvoicePreview, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => estimate.previewPlanChange(deps, req.orgId, req.params.subscription_id, req.body),
  );

  app.get(
    '/v1/subscriptions/:subscription_id',
    {
      schema: {
        summary: 'Subscription detail: current period, usage so far',
        tags: ['subscriptions'],
        params: SubscriptionParams,
        response: { 200: SubscriptionDetail, 404: ErrorResponse },
      },
    },
    async (req) => svc.subscriptionDetail(deps, req.orgId, req.params.subscription_id),
  );

  app.patch(
    '/v1/subscriptions/:subscription_id',
    {
      schema: {
        summary: 'Cancel or change a subscription',
        description:
          'turn_off_auto_renew: ends at period end (the cancel options of POST …/cancel are accepted here too: type, revoke_access, bill_now). replace_immediately_type: end_current_subscription_and_bill | end_current_subscription_and_dont_bill (optional plan_id starts that plan now) | change_subscription_plan (plan_id required; same period, prorated).',
        tags: ['subscriptions'],
        params: SubscriptionParams,
        body: UpdateSubscriptionBody,
        response: { 200: Subscription, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => svc.updateSubscription(deps, req.orgId, req.params.subscription_id, patchUpdate(req.body)),
  );

  app.post(
    '/v1/subscriptions/:subscription_id/cancel',
    {
      schema: {
        summary: 'Cancel a subscription (Lotus-style shortcut of PATCH)',
        description:
          'The cancel options of PATCH: type, turn_off_auto_renew, replace_immediately_type (Lotus Python), revoke_access / bill_now (Lotus Node), prorate. An empty or absent body = turn_off_auto_renew.',
        tags: ['subscriptions'],
        params: SubscriptionParams,
        body: CancelSubscriptionBody,
        response: { 200: Subscription, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => {
      const how = cancelIntent(req.body ?? {}) ?? 'turn_off_auto_renew';
      return svc.updateSubscription(deps, req.orgId, req.params.subscription_id, cancelUpdate(how, req.body?.prorate));
    },
  );
}
