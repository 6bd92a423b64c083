import type { FastifyInstance } from 'fastify';
import { ErrorResponse, InvoiceParams, InvoicePayments, Payment, PaymentParams, RecordPaymentBody, RefundBody } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function paymentRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/invoices/:invoice_id/payments',
    {
      schema: {
        summary: 'Record a payment (default provider manual; amount default: what is outstanding); covers → paid',
        tags: ['payments'],
        params: InvoiceParams,
        body: RecordPaymentBody,
        response: { 201: Payment, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.recordPayment(deps, req.orgId, req.params.invoice_id, req.body)),
  );
  app.get(
    '/v1/invoices/:invoice_id/payments',
    {
      schema: {
        summary: "An invoice's payment status and history",
        tags: ['payments'],
        params: InvoiceParams,
        response: { 200: InvoicePayments, 404: ErrorResponse },
      },
    },
    async (req) => svc.invoicePayments(deps, req.orgId, req.params.invoice_id),
  );
  app.post(
    '/v1/payments/:payment_id/refund',
    {
      schema: {
        summary: 'Refund (part of) a succeeded payment',
        tags: ['payments'],
        params: PaymentParams,
        body: RefundBody,
        response: { 201: Payment, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.refundPayment(deps, req.orgId, req.params.payment_id, req.body ?? {})),
  );
}
