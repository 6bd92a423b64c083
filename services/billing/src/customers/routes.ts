import type { FastifyInstance } from 'fastify';
import {
  CreateCustomerBody,
  Customer,
  CustomerDetail,
  CustomerParams,
  ErrorResponse,
  ListCustomersQuery,
  Page,
  UpdateCustomerBody,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

export async function customerRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/customers',
    {
      schema: {
        summary: 'Create a customer (idempotent on identical data; 409 on conflicting data)',
        tags: ['customers'],
        body: CreateCustomerBody,
        response: { 201: Customer, 200: Customer, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = await svc.createCustomer(deps, req.orgId, req.body);
      return reply.code(r.created ? 201 : 200).send(r.customer);
    },
  );

  app.get(
    '/v1/customers',
    {
      schema: { summary: 'List customers', tags: ['customers'], querystring: ListCustomersQuery, response: { 200: Page(Customer) } },
    },
    async (req) => {
      const q = req.query;
      return pageOf((await store.listCustomers(deps.pool, req.orgId, { ...q, ...pageParams(q) })).map(store.customerJson), q);
    },
  );

  app.get(
    '/v1/customers/:customer_id',
    {
      schema: {
        summary: 'Customer detail: balance, subscriptions, invoices, total amount due',
        tags: ['customers'],
        params: CustomerParams,
        response: { 200: CustomerDetail, 404: ErrorResponse },
      },
    },
    async (req) => svc.customerDetail(deps, req.orgId, req.params.customer_id),
  );

  app.patch(
    '/v1/customers/:customer_id',
    {
      schema: {
        summary: 'Update a customer',
        tags: ['customers'],
        params: CustomerParams,
        body: UpdateCustomerBody,
        response: { 200: Customer, 404: ErrorResponse },
      },
    },
    async (req) => svc.updateCustomer(deps, req.orgId, req.params.customer_id, req.body),
  );

  app.delete(
    '/v1/customers/:customer_id',
    {
      schema: {
        summary: 'Archive a customer',
        tags: ['customers'],
        params: CustomerParams,
        response: { 200: Customer, 404: ErrorResponse },
      },
    },
    async (req) => svc.archiveCustomer(deps, req.orgId, req.params.customer_id),
  );
}
