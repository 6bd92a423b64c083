import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ERROR_SCHEMA } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import { AMOUNT_SCHEMA } from '../money.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

export const ID = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.:@\\-]+$' } as const;
export const CUSTOMER = {
  type: 'object',
  properties: {
    customer_id: { type: 'string' }, name: { type: ['string', 'null'] }, email: { type: ['string', 'null'] }, currency: { type: 'string' },
    balance: { type: 'string', description: 'prepaid credit, decimal string in major units' }, metadata: { type: 'object', additionalProperties: true },
    created_at: { type: 'string' }, updated_at: { type: 'string' }, archived_at: { type: ['string', 'null'] },
  },
} as const;
const params = { type: 'object', properties: { customer_id: { type: 'string' } } } as const;
const editable = {
  name: { type: ['string', 'null'], maxLength: 500 },
  email: { type: ['string', 'null'], maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' },
  balance: { ...AMOUNT_SCHEMA, description: 'prepaid credit, decimal string in major units (< 10^12, the currency\'s decimals at most)' },
  metadata: { type: 'object', additionalProperties: true },
} as const;

export async function customerRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.post('/v1/customers', {
    schema: {
      summary: 'Create a customer (idempotent on identical data; 409 on conflicting data)', tags: ['customers'],
      body: { type: 'object', required: ['customer_id'], additionalProperties: false, properties: { customer_id: ID, ...editable, currency: { type: 'string', pattern: '^[A-Za-z]{3}$' } } },
      response: { 201: CUSTOMER, 200: CUSTOMER, 409: ERROR_SCHEMA },
    },
  }, async (req, reply) => {
    const r = await svc.createCustomer(deps, req.orgId, req.body as svc.CustomerInput);
    return reply.code(r.created ? 201 : 200).send(r.customer);
  });

  app.get('/v1/customers', {
    schema: {
      summary: 'List customers', tags: ['customers'],
      querystring: { type: 'object', additionalProperties: false, properties: { ...PAGINATION_QUERY, include_archived: { type: 'boolean', default: false }, email: { type: 'string' } } },
      response: { 200: listResponse(CUSTOMER) },
    },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; include_archived: boolean; email?: string };
    return pageOf((await store.listCustomers(deps.pool, req.orgId, q)).map(store.customerJson), q);
  });

  app.get('/v1/customers/:customer_id', {
    schema: {
      summary: 'Customer detail: balance, subscriptions, invoices, total amount due', tags: ['customers'], params,
      response: {
        200: {
          type: 'object',
          properties: {
            ...CUSTOMER.properties,
            subscriptions: { type: 'array', items: { type: 'object', additionalProperties: true } },
            invoices: { type: 'array', items: { type: 'object', additionalProperties: true } },
            total_amount_due: { type: 'string' }, net_amount_due: { type: 'string' },
            amount_due_by_currency: { type: 'object', additionalProperties: { type: 'string' } },
          },
        },
        404: ERROR_SCHEMA,
      },
    },
  }, async (req) => svc.customerDetail(deps, req.orgId, (req.params as { customer_id: string }).customer_id));

  app.patch('/v1/customers/:customer_id', {
    schema: { summary: 'Update a customer', tags: ['customers'], params, body: { type: 'object', additionalProperties: false, minProperties: 1, properties: editable }, response: { 200: CUSTOMER, 404: ERROR_SCHEMA } },
  }, async (req) => svc.updateCustomer(deps, req.orgId, (req.params as { customer_id: string }).customer_id, req.body as never));

  app.delete('/v1/customers/:customer_id', {
    schema: { summary: 'Archive a customer', tags: ['customers'], params, response: { 200: CUSTOMER, 404: ERROR_SCHEMA } },
  }, async (req) => svc.archiveCustomer(deps, req.orgId, (req.params as { customer_id: string }).customer_id));
}
