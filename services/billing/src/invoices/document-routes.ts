// GET /v1/invoices/:invoice_id/document: the invoice as an HTML document (document.ts), scoped to the
// API key's organization like every /v1 route (another organization's invoice is a 404).
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { ErrorResponse, InvoiceParams } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import { typed } from '../http/typed.ts';
import { getCustomer } from '../customers/store.ts';
import { getOrganization } from '../orgs/store.ts';
import { renderInvoiceDocument } from './document.ts';
import { getInvoice } from './store.ts';

export async function invoiceDocumentRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/invoices/:invoice_id/document',
    {
      schema: {
        summary: 'The invoice as a self-contained HTML document a customer could receive (inline CSS, no scripts, no external assets)',
        tags: ['invoices'],
        params: InvoiceParams,
        response: {
          200: {
            description: 'text/html; charset=utf-8',
            content: { 'text/html': { schema: Type.String({ description: 'an HTML document' }) } },
          },
          404: ErrorResponse,
        },
      },
    },
    async (req, reply) => {
      const id = req.params.invoice_id;
      const invoice = await getInvoice(deps.pool, req.orgId, id);
      if (!invoice) throw notFound('invoice', id);
      const [customer, org] = await Promise.all([
        getCustomer(deps.pool, req.orgId, invoice.customer_id, true),
        getOrganization(deps.pool, req.orgId),
      ]);
      const html = renderInvoiceDocument({ invoice, customer, organizationName: org?.name ?? req.orgId });
      return reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
        .header('x-content-type-options', 'nosniff')
        .send(html);
    },
  );
}
