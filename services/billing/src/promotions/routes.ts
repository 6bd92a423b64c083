import type { FastifyInstance } from 'fastify';
import {
  CustomerParams,
  ErrorResponse,
  GrantPromotionalEntitlementBody,
  ListPromotionalEntitlementsQuery,
  Page,
  PromotionalEntitlement,
  PromotionalEntitlementParams,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function promotionRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/customers/:customer_id/promotional_entitlements',
    {
      schema: {
        summary: 'Grant a feature outside the plan until an expiry (Stigg grantPromotionalEntitlements); granting again replaces it',
        tags: ['entitlements'],
        params: CustomerParams,
        body: GrantPromotionalEntitlementBody,
        response: { 201: PromotionalEntitlement, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.grantPromotion(deps, req.orgId, req.params.customer_id, req.body)),
  );
  app.get(
    '/v1/customers/:customer_id/promotional_entitlements',
    {
      schema: {
        summary: "A customer's promotional entitlements in force (include_inactive: also expired and revoked)",
        tags: ['entitlements'],
        params: CustomerParams,
        querystring: ListPromotionalEntitlementsQuery,
        response: { 200: Page(PromotionalEntitlement), 404: ErrorResponse },
      },
    },
    async (req) => {
      const q = pageParams(req.query);
      const all = await svc.listPromotions(deps, req.orgId, req.params.customer_id, req.query.include_inactive ?? false);
      return pageOf(all.slice(q.offset, q.offset + q.limit + 1), q);
    },
  );
  app.delete(
    '/v1/customers/:customer_id/promotional_entitlements/:feature_id',
    {
      schema: {
        summary: 'Revoke a promotional entitlement (Stigg revokePromotionalEntitlement): the next check no longer grants it',
        tags: ['entitlements'],
        params: PromotionalEntitlementParams,
        response: { 200: PromotionalEntitlement, 404: ErrorResponse },
      },
    },
    async (req) => svc.revokePromotion(deps, req.orgId, req.params.customer_id, req.params.feature_id),
  );
}
