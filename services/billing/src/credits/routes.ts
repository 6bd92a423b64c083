import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  CreateCreditGrantBody,
  CreditBalance,
  CreditGrant,
  CreditTransaction,
  CustomerParams,
  ErrorResponse,
  GrantParams,
  Page,
  PaginationQuery,
  TopUpBody,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function creditRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/customers/:customer_id/credits',
    {
      schema: {
        summary: 'Grant prepaid credit (applied to invoices when they are finalized, by priority)',
        tags: ['credits'],
        params: CustomerParams,
        body: CreateCreditGrantBody,
        response: { 201: CreditGrant, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.grantCredit(deps, req.orgId, req.params.customer_id, req.body)),
  );
  app.get(
    '/v1/customers/:customer_id/credits',
    {
      schema: {
        summary: "A customer's credit balance per currency and its grants",
        tags: ['credits'],
        params: CustomerParams,
        response: { 200: CreditBalance, 404: ErrorResponse },
      },
    },
    async (req) => svc.creditBalance(deps, req.orgId, req.params.customer_id),
  );
  app.get(
    '/v1/customers/:customer_id/credits/history',
    {
      schema: {
        summary: 'Balance history: grants, top-ups, applications to invoices, voids',
        tags: ['credits'],
        params: CustomerParams,
        querystring: Type.Object(PaginationQuery, { additionalProperties: false }),
        response: { 200: Page(CreditTransaction), 404: ErrorResponse },
      },
    },
    async (req) => pageOf(await svc.creditHistory(deps.pool, req.orgId, req.params.customer_id, pageParams(req.query)), req.query),
  );
  app.post(
    '/v1/credits/:grant_id/top_up',
    {
      schema: {
        summary: 'Add to a credit grant',
        tags: ['credits'],
        params: GrantParams,
        body: TopUpBody,
        response: { 200: CreditGrant, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => svc.topUp(deps, req.orgId, req.params.grant_id, req.body),
  );
  app.post(
    '/v1/credits/:grant_id/void',
    {
      schema: {
        summary: 'Void a credit grant (what remains is no longer applied)',
        tags: ['credits'],
        params: GrantParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: CreditGrant, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => svc.voidGrant(deps, req.orgId, req.params.grant_id),
  );
}
