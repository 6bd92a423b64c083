// Payments through the manual provider (payments/), against real Postgres: partial payments, the
// invoice marked paid once covered (with its invoice.paid webhook event in the outbox), refunds, and the
// refusals (draft, overpayment, duplicate reference, unknown provider).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres, type PgPool } from '@meterline/core';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let pg: PgPool;

beforeAll(async () => {
  const started = await startTestBilling({ webhooks: { intervalMs: 0 } });
  billing = started.billing;
  pg = createPostgres(started.config.postgresUrl, { max: 2 });
});
afterAll(async () => {
  await billing?.stop();
  await pg?.end();
});

describe('payments', () => {
  it('partial, then covering: paid with an invoice.paid event; refunds; refusals', async () => {
    const { api, orgId } = await createOrg(billing.url);
    // an endpoint, so that events are kept in the outbox (the worker is off in this test)
    expect((await api.post('/v1/webhook_endpoints', { url: 'http://127.0.0.1:9/hooks', event_types: ['invoice.paid'] })).status).toBe(201);
    await api.post('/v1/plans', { plan_id: 'p', name: 'P', interval: 'month', flat_fee: '49.00', flat_fee_timing: 'in_advance' });
    await api.post('/v1/customers', { customer_id: 'c' });
    await api.post('/v1/subscriptions', { customer_id: 'c', plan_id: 'p' });
    const [inv] = (await api.get('/v1/invoices?customer_id=c')).body.data;
    expect(inv).toMatchObject({ status: 'finalized', total: '49.00' });
    const id = inv.invoice_id;

    const first = await api.post(`/v1/invoices/${id}/payments`, { amount: '20.00', reference: 'wire-1', note: 'bank transfer' });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ provider: 'manual', kind: 'charge', status: 'succeeded', amount: '20.00', reference: 'wire-1' });
    expect((await api.get(`/v1/invoices/${id}/payments`)).body).toMatchObject({
      status: 'finalized',
      payment_status: 'partially_paid',
      amount_paid: '20.00',
      amount_outstanding: '29.00',
    });
    expect((await api.post(`/v1/invoices/${id}/payments`, { amount: '30.00' })).status).toBe(400); // more than outstanding
    expect((await api.post(`/v1/invoices/${id}/payments`, { amount: '1.00', reference: 'wire-1' })).status).toBe(409); // same reference
    expect((await api.post(`/v1/invoices/${id}/payments`, { provider: 'stripe' })).status).toBe(400);
    // the rest (amount defaults to what is outstanding): paid
    expect((await api.post(`/v1/invoices/${id}/payments`, {})).body.amount).toBe('29.00');
    expect((await api.get(`/v1/invoices/${id}`)).body.status).toBe('paid');
    expect((await api.get('/v1/customers/c')).body.total_amount_due).toBe('0.00');
    const events = await pg.query(`SELECT payload FROM webhook_events WHERE organization_id = $1 AND type = 'invoice.paid'`, [orgId]);
    expect(events.rows.map((r) => r.payload.data.invoice_id)).toEqual([id]);
    expect((await api.post(`/v1/invoices/${id}/payments`, { amount: '1.00' })).status).toBe(409); // paid: nothing more

    const refund = await api.post(`/v1/payments/${first.body.payment_id}/refund`, { amount: '5.00' });
    expect(refund.status, JSON.stringify(refund.body)).toBe(201);
    expect(refund.body).toMatchObject({ kind: 'refund', amount: '5.00', refunds: first.body.payment_id });
    expect((await api.post(`/v1/payments/${first.body.payment_id}/refund`, { amount: '15.01' })).status).toBe(400); // 15.00 left
    const after = (await api.get(`/v1/invoices/${id}/payments`)).body;
    expect(after).toMatchObject({ status: 'paid', payment_status: 'partially_paid', amount_paid: '49.00', amount_refunded: '5.00' });
    expect(after.payments.map((p: any) => [p.kind, p.amount])).toEqual([
      ['charge', '20.00'],
      ['charge', '29.00'],
      ['refund', '5.00'],
    ]);

    // a draft takes no payment
    const start = new Date(Date.now() - 60_000);
    start.setUTCMonth(start.getUTCMonth() - 1);
    await api.post('/v1/plans', { plan_id: 'arrears', name: 'A', interval: 'month', flat_fee: '10.00', flat_fee_timing: 'in_arrears' });
    await api.post('/v1/customers', { customer_id: 'd' });
    const s = await api.post('/v1/subscriptions', { customer_id: 'd', plan_id: 'arrears', start_date: start.toISOString() });
    const draft = (await api.get(`/v1/invoices?subscription_id=${s.body.subscription_id}`)).body.data[0];
    expect(draft.status).toBe('draft');
    expect((await api.post(`/v1/invoices/${draft.invoice_id}/payments`, {})).status).toBe(409);
    expect((await api.get('/v1/invoices/inv_nope/payments')).status).toBe(404);
  });
});
