import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ERROR_SCHEMA, notFound } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import * as store from './store.ts';

export const INVOICE = {
  type: 'object',
  properties: {
    invoice_id: { type: 'string' }, customer_id: { type: 'string' }, subscription_id: { type: ['string', 'null'] }, status: { type: 'string' }, currency: { type: 'string' },
    period_start: { type: 'string' }, period_end: { type: 'string' }, reason: { type: 'string' }, total: { type: 'string' },
    line_items: { type: 'array', items: { type: 'object', additionalProperties: true } }, created_at: { type: 'string' },
  },
} as const;

export async function invoiceRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.get('/v1/invoices', {
    schema: { summary: 'List invoices', tags: ['invoices'], querystring: { type: 'object', additionalProperties: false, properties: { ...PAGINATION_QUERY, customer_id: { type: 'string' }, subscription_id: { type: 'string' } } }, response: { 200: listResponse(INVOICE) } },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; customer_id?: string; subscription_id?: string };
    return pageOf((await store.listInvoices(deps.pool, req.orgId, q)).map(store.invoiceJson), q);
  });
  app.get('/v1/invoices/:invoice_id', { schema: { summary: 'Get an invoice', tags: ['invoices'], params: { type: 'object', properties: { invoice_id: { type: 'string' } } }, response: { 200: INVOICE, 404: ERROR_SCHEMA } } }, async (req) => {
    const id = (req.params as { invoice_id: string }).invoice_id;
    const row = await store.getInvoice(deps.pool, req.orgId, id);
    if (!row) throw notFound('invoice', id);
    return store.invoiceJson(row);
  });
}
