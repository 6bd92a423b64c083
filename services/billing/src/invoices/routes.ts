import type { FastifyInstance } from 'fastify';
import { ErrorResponse, Invoice, InvoiceParams, ListInvoicesQuery, Page } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as store from './store.ts';

export async function invoiceRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/invoices',
    {
      schema: { summary: 'List invoices', tags: ['invoices'], querystring: ListInvoicesQuery, response: { 200: Page(Invoice) } },
    },
    async (req) => {
      const q = req.query;
      return pageOf((await store.listInvoices(deps.pool, req.orgId, { ...q, ...pageParams(q) })).map(store.invoiceJson), q);
    },
  );
  app.get(
    '/v1/invoices/:invoice_id',
    { schema: { summary: 'Get an invoice', tags: ['invoices'], params: InvoiceParams, response: { 200: Invoice, 404: ErrorResponse } } },
    async (req) => {
      const id = req.params.invoice_id;
      const row = await store.getInvoice(deps.pool, req.orgId, id);
      if (!row) throw notFound('invoice', id);
      return store.invoiceJson(row);
    },
  );
}
