import type { FastifyInstance } from 'fastify';
import {
  AttachBody,
  AttachResult,
  BillingPortal,
  BillingPortalBody,
  Checkout,
  CheckoutParams,
  CompleteCheckoutBody,
  CompletedCheckout,
  CustomerParams,
  ErrorResponse,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function checkoutRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/attach',
    {
      schema: {
        summary: 'Subscribe a customer to a plan: at once (manual provider), or through a hosted checkout (payment_url)',
        description:
          'Returns { status: "subscribed", subscription } or { status: "checkout_required", checkout_id, payment_url }; the subscription of a checkout is created when POST /v1/checkouts/{checkout_id}/complete is called.',
        tags: ['checkout'],
        body: AttachBody,
        response: {
          201: AttachResult,
          200: AttachResult,
          400: ErrorResponse,
          404: ErrorResponse,
          409: ErrorResponse,
          502: ErrorResponse,
        },
      },
    },
    async (req, reply) => {
      const r = await svc.attach(deps, req.orgId, req.body);
      return reply.code(r.created ? 201 : 200).send(r.body);
    },
  );
  app.get(
    '/v1/checkouts/:checkout_id',
    {
      schema: { summary: 'A checkout', tags: ['checkout'], params: CheckoutParams, response: { 200: Checkout, 404: ErrorResponse } },
    },
    async (req) => svc.getCheckout(deps, req.orgId, req.params.checkout_id),
  );
  app.post(
    '/v1/checkouts/:checkout_id/complete',
    {
      schema: {
        summary: "The payment provider's side reports a checkout paid: creates its subscription (idempotent)",
        tags: ['checkout'],
        params: CheckoutParams,
        body: CompleteCheckoutBody,
        response: { 200: CompletedCheckout, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => {
      const { checkout, subscription } = await svc.completeCheckout(deps, req.orgId, req.params.checkout_id, req.body ?? {});
      return { checkout, subscription };
    },
  );
  app.post(
    '/v1/checkouts/:checkout_id/cancel',
    {
      schema: {
        summary: 'Abandon an open checkout (completing it is refused afterwards)',
        tags: ['checkout'],
        params: CheckoutParams,
        response: { 200: Checkout, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => svc.cancelCheckout(deps, req.orgId, req.params.checkout_id),
  );
  app.post(
    '/v1/customers/:customer_id/billing_portal',
    {
      schema: {
        summary: "A URL of the customer's billing portal at the payment provider (409 not_supported without one)",
        tags: ['checkout'],
        params: CustomerParams,
        body: BillingPortalBody,
        response: { 200: BillingPortal, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 502: ErrorResponse },
      },
    },
    async (req) => svc.billingPortal(deps, req.orgId, req.params.customer_id, req.body ?? {}),
  );
}
