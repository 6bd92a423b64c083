import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  BillingRunBody,
  ErrorResponse,
  Invoice,
  InvoiceParams,
  InvoicingSettings,
  ListInvoicesQuery,
  OrganizationParams,
  Page,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { badRequest, notFound } from '../http/errors.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import { transition } from './lifecycle.ts';
import { runDueSubscriptions } from './scheduler.ts';
import * as store from './store.ts';
import { wantsCsv } from '../exports/csv.ts';
import { exportFilter, invoiceExportRoutes, sendInvoiceCsv } from '../exports/invoices.ts';

const TRANSITIONS = {
  finalize: {
    to: 'finalized',
    summary: 'Finalize a draft now (numbered, owed, frozen); usage counted later is billed as late usage on the next invoice',
  },
  mark_paid: { to: 'paid', summary: 'Mark a finalized (or uncollectible) invoice paid' },
  void: { to: 'void', summary: 'Void a draft or an unpaid invoice (no longer owed; its usage is not billed again)' },
  mark_uncollectible: { to: 'uncollectible', summary: 'Mark a finalized invoice uncollectible (no longer counted as due)' },
} as const;

export async function invoiceRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/invoices',
    {
      schema: {
        summary: 'List invoices (format=csv or Accept: text/csv: the CSV export of every matching invoice, as /v1/invoices/export.csv)',
        tags: ['invoices'],
        querystring: ListInvoicesQuery,
        response: { 200: Page(Invoice), 400: ErrorResponse },
      },
    },
    async (req, reply) => {
      const q = req.query;
      if (wantsCsv(req, q.format)) return sendInvoiceCsv(deps, req.orgId, q, reply);
      const { created_from, created_to, period_from, period_to } = exportFilter(q);
      const filter = { ...q, created_from, created_to, period_from, period_to, ...pageParams(q) };
      return pageOf((await store.listInvoices(deps.pool, req.orgId, filter)).map(store.invoiceJson), q);
    },
  );
  await invoiceExportRoutes(instance, deps);
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
  for (const [action, t] of Object.entries(TRANSITIONS))
    app.post(
      `/v1/invoices/:invoice_id/${action}`,
      {
        schema: {
          summary: t.summary,
          tags: ['invoices'],
          params: InvoiceParams,
          body: Type.Optional(Type.Object({}, { additionalProperties: false })),
          response: { 200: Invoice, 404: ErrorResponse, 409: ErrorResponse },
        },
      },
      async (req) => store.invoiceJson(await transition(deps, req.orgId, req.params.invoice_id, t.to, deps.now())),
    );

  app.get(
    '/v1/settings/invoicing',
    { schema: { summary: 'Invoicing settings (grace period for late usage)', tags: ['invoices'], response: { 200: InvoicingSettings } } },
    async (req) => ({ grace_period_seconds: await store.graceSeconds(deps.pool, req.orgId) }),
  );
  app.put(
    '/v1/settings/invoicing',
    {
      schema: {
        summary: 'Set the grace period: how long a period-close draft takes late usage before it is finalized (0 = at once)',
        tags: ['invoices'],
        body: InvoicingSettings,
        response: { 200: InvoicingSettings },
      },
    },
    async (req) => {
      await store.setGraceSeconds(deps.pool, req.orgId, req.body.grace_period_seconds);
      return { grace_period_seconds: req.body.grace_period_seconds };
    },
  );
}

/** Admin: run the billing worker for one organization at a given instant (tests and operators move time). */
export async function invoiceAdminRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/admin/organizations/:organization_id/billing_run',
    {
      schema: {
        summary: 'Close due periods, refresh and finalize drafts of one organization as of an instant (admin)',
        tags: ['admin'],
        security: [{ adminSecret: [] }],
        params: OrganizationParams,
        body: BillingRunBody,
        response: { 200: Type.Record(Type.String(), Type.Integer()), 400: ErrorResponse },
      },
    },
    async (req) => {
      const at = req.body.as_of ? new Date(req.body.as_of) : deps.now();
      if (Number.isNaN(at.getTime())) throw badRequest('as_of must be a date-time');
      return { ...(await runDueSubscriptions(deps, at, { organizationId: req.params.organization_id })) };
    },
  );
}
