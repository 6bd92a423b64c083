// Attach, hosted checkouts and the billing portal (checkout/service.ts) against real Postgres, with a
// controlled clock. The hosted provider is a fake defined here (not shipped): it opens "sessions" and
// the test plays its webhook receiver by calling POST /v1/checkouts/:id/complete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres, type PgPool } from '@meterline/core';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle, UsageReader } from '../src/index.ts';
import { PROVIDERS, type CheckoutRequest, type PaymentProvider, type PortalRequest } from '../src/payments/provider.ts';

let billing: BillingHandle;
let pg: PgPool;
let clock = Date.parse('2026-03-01T00:00:00Z');
const usage: UsageReader = { versionStatus: async () => 'ready', query: async () => [] };

/** A hosted provider as an adapter would be: idempotent on idempotency_key, sessions with expiry. */
class FakeHostedProvider implements PaymentProvider {
  readonly name = 'fakepay';
  readonly requests: CheckoutRequest[] = [];
  readonly portals: PortalRequest[] = [];
  private sessions = new Map<string, { url: string; reference: string; expires_at: Date }>();
  async charge() {
    return { status: 'succeeded' as const, reference: null };
  }
  async refund() {
    return { status: 'succeeded' as const, reference: null };
  }
  async createCheckout(req: CheckoutRequest) {
    this.requests.push(req);
    if (req.customer.customer_id === 'boom') throw new Error('fakepay is down');
    let s = this.sessions.get(req.idempotency_key);
    if (!s) {
      const reference = `fp_sess_${this.sessions.size + 1}`;
      s = { url: `https://pay.fake.test/c/${reference}`, reference, expires_at: new Date(clock + 3_600_000) };
      this.sessions.set(req.idempotency_key, s);
    }
    return s;
  }
  async createPortalSession(req: PortalRequest) {
    this.portals.push(req);
    return { url: `https://pay.fake.test/portal/${req.customer.customer_id}?return=${encodeURIComponent(req.return_url ?? '')}` };
  }
}
const fake = new FakeHostedProvider();

beforeAll(async () => {
  const started = await startTestBilling({
    deps: { usage, now: () => new Date(clock), paymentProviders: { ...PROVIDERS, fakepay: fake } },
  });
  billing = started.billing;
  pg = createPostgres(started.config.postgresUrl, { max: 2 });
});
afterAll(async () => {
  await billing?.stop();
  await pg?.end();
});

async function setup() {
  clock = Date.parse('2026-03-01T00:00:00Z');
  const o = await createOrg(billing.url);
  expect((await o.api.put('/v1/settings/invoicing', { grace_period_seconds: 0 })).status).toBe(200);
  expect((await o.api.post('/v1/features', { feature_id: 'sso', type: 'boolean' })).status).toBe(201);
  const pro = { plan_id: 'pro', name: 'Pro', interval: 'month', flat_fee: '49.00', flat_fee_timing: 'in_advance' };
  expect((await o.api.post('/v1/plans', { ...pro, entitlements: [{ feature_id: 'sso' }] })).status).toBe(201);
  expect((await o.api.post('/v1/plans', { plan_id: 'free', name: 'Free', interval: 'month' })).status).toBe(201);
  return o;
}
type Api = Awaited<ReturnType<typeof setup>>['api'];
const subsOf = async (api: Api, c: string) => (await api.get(`/v1/subscriptions?customer_id=${c}`)).body.data as any[];
const invoicesOf = async (api: Api, c: string) =>
  ((await api.get(`/v1/invoices?customer_id=${c}&limit=100`)).body.data as any[]).filter((i) => i.status !== 'draft');
const sso = async (api: Api, c: string) => (await api.post('/v1/check', { customer_id: c, feature_id: 'sso' })).body.allowed;

describe('attach with the manual provider', () => {
  it('subscribes at once; a repeat with the same id and start is the same subscription; portal and force_checkout are not supported', async () => {
    const { api } = await setup();
    await api.post('/v1/customers', { customer_id: 'm' });
    expect(await sso(api, 'm')).toBe(false);
    const body = { customer_id: 'm', plan_id: 'pro', subscription_id: 'sub_m', start_date: '2026-03-01T00:00:00Z' };
    const a = await api.post('/v1/attach', body);
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body).toMatchObject({ status: 'subscribed', checkout_id: null, payment_url: null });
    expect(a.body.subscription).toMatchObject({ subscription_id: 'sub_m', plan_id: 'pro', status: 'active' });
    expect(await sso(api, 'm')).toBe(true);
    const again = await api.post('/v1/attach', body);
    expect([again.status, again.body.subscription.subscription_id]).toEqual([200, 'sub_m']);
    expect((await api.post('/v1/attach', { customer_id: 'm', plan_id: 'pro' })).status).toBe(409);
    expect((await invoicesOf(api, 'm')).map((i) => i.total)).toEqual(['49.00']);

    await api.post('/v1/customers', { customer_id: 'n' });
    const forced = await api.post('/v1/attach', { customer_id: 'n', plan_id: 'pro', force_checkout: true });
    expect([forced.status, forced.body.error.code]).toEqual([409, 'not_supported']);
    expect(await subsOf(api, 'n')).toEqual([]);
    const portal = await api.post('/v1/customers/m/billing_portal', {});
    expect([portal.status, portal.body.error.code]).toEqual([409, 'not_supported']);
    expect((await api.post('/v1/customers/nobody/billing_portal', {})).status).toBe(404);

    const unknown = await api.post('/v1/attach', { customer_id: 'n', plan_id: 'pro', provider: 'paypal' });
    expect([unknown.status, unknown.body.error.code]).toEqual([400, 'unknown_provider']);
    expect((await api.post('/v1/attach', { customer_id: 'nobody', plan_id: 'pro' })).status).toBe(404);
    expect((await api.post('/v1/attach', { customer_id: 'n', plan_id: 'nope' })).status).toBe(404);
    expect((await api.post('/v1/attach', { customer_id: 'n', plan_id: 'pro', success_url: 'not a url' })).status).toBe(400);
    expect((await api.post('/v1/attach', { customer_id: 'n', plan_id: 'pro', surprise: 1 })).status).toBe(400);
  });
});

describe('attach with a hosted provider', () => {
  it('attach → open checkout (no subscription, no entitlement) → complete → active, entitled; completion idempotent under concurrency', async () => {
    const { api, orgId } = await setup();
    await api.post('/v1/customers', { customer_id: 'h', email: 'h@example.com' });
    const a = await api.post('/v1/attach', {
      customer_id: 'h',
      plan_id: 'pro',
      provider: 'fakepay',
      success_url: 'https://app.example.com/welcome',
    });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    expect(a.body.status).toBe('checkout_required');
    expect(a.body.subscription).toBeNull();
    expect(a.body.payment_url).toMatch(/^https:\/\/pay\.fake\.test\/c\/fp_sess_/);
    const id = a.body.checkout_id as string;
    const req = fake.requests.find((r) => r.checkout_id === id)!;
    // what the provider was asked to collect: the first invoice, 49.00 in advance
    expect(req).toMatchObject({
      idempotency_key: id,
      organization_id: orgId,
      amount_due_minor: 4900n,
      currency: 'USD',
      success_url: 'https://app.example.com/welcome',
      complete_path: `/v1/checkouts/${id}/complete`,
    });
    expect(req.customer).toMatchObject({ customer_id: 'h', email: 'h@example.com' });

    // pending: nothing subscribed, nothing invoiced, no entitlement
    const open = await api.get(`/v1/checkouts/${id}`);
    expect(open.body).toMatchObject({ status: 'open', amount_due: '49.00', currency: 'USD', payment_url: a.body.payment_url });
    expect(await subsOf(api, 'h')).toEqual([]);
    expect(await invoicesOf(api, 'h')).toEqual([]);
    expect(await sso(api, 'h')).toBe(false);

    const wrong = await api.post(`/v1/checkouts/${id}/complete`, { provider_reference: 'fp_sess_other' });
    expect([wrong.status, wrong.body.error.code]).toEqual([409, 'reference_mismatch']);
    expect(await subsOf(api, 'h')).toEqual([]);

    // the provider's webhook is delivered at least once: 10 deliveries at the same time
    clock += 60_000;
    const ref = open.body.provider_reference as string;
    const done = await Promise.all(Array.from({ length: 10 }, () => api.post(`/v1/checkouts/${id}/complete`, { provider_reference: ref })));
    expect(done.map((d) => d.status)).toEqual(Array(10).fill(200));
    const subIds = new Set(done.map((d) => d.body.subscription.subscription_id));
    expect(subIds.size).toBe(1);
    expect(done[0]!.body.checkout).toMatchObject({ status: 'completed', completed_at: new Date(clock).toISOString() });
    expect(done[0]!.body.subscription).toMatchObject({ status: 'active', plan_id: 'pro', start_date: new Date(clock).toISOString() });
    expect(done[0]!.body.subscription.subscription_id).toBe(open.body.subscription_id);
    const subs = await subsOf(api, 'h');
    expect(subs.map((s) => [s.subscription_id, s.status])).toEqual([[open.body.subscription_id, 'active']]);
    expect(await sso(api, 'h')).toBe(true);
    expect((await invoicesOf(api, 'h')).map((i) => [i.reason, i.total])).toEqual([['subscription_start', '49.00']]);

    // a late redelivery, hours later: the same subscription, nothing new
    clock += 7_200_000;
    const late = await api.post(`/v1/checkouts/${id}/complete`, {});
    expect([late.status, late.body.subscription.subscription_id]).toEqual([200, open.body.subscription_id]);
    expect((await pg.query('SELECT count(*)::int AS n FROM subscriptions WHERE organization_id = $1', [orgId])).rows[0].n).toBe(1);
    const cancel = await api.post(`/v1/checkouts/${id}/cancel`, {});
    expect([cancel.status, cancel.body.error.code]).toEqual([409, 'checkout_completed']);
    // already subscribed: a new attach is refused before any checkout is opened
    const n = fake.requests.length;
    expect((await api.post('/v1/attach', { customer_id: 'h', plan_id: 'pro', provider: 'fakepay' })).status).toBe(409);
    expect(fake.requests.length).toBe(n);

    // a crash after the subscription was created but before the checkout was marked completed: the
    // provider's retry finishes the job with the same subscription
    await pg.query(`UPDATE checkouts SET status = 'open', completed_at = NULL WHERE organization_id = $1 AND checkout_id = $2`, [
      orgId,
      id,
    ]);
    clock += 60_000;
    const retried = await api.post(`/v1/checkouts/${id}/complete`, { provider_reference: ref });
    expect([retried.status, retried.body.checkout.status, retried.body.subscription.subscription_id]).toEqual([
      200,
      'completed',
      open.body.subscription_id,
    ]);
    expect((await pg.query('SELECT count(*)::int AS n FROM subscriptions WHERE organization_id = $1', [orgId])).rows[0].n).toBe(1);
    expect((await invoicesOf(api, 'h')).length).toBe(1);

    // another organization sees none of it
    const other = await createOrg(billing.url);
    expect((await other.api.get(`/v1/checkouts/${id}`)).status).toBe(404);
    expect((await other.api.post(`/v1/checkouts/${id}/complete`, {})).status).toBe(404);
  });

  it('expired sessions read as expired (a late completion is honoured); canceled and failed checkouts never subscribe; nothing due → subscribed at once; the portal URL comes from the provider', async () => {
    const { api } = await setup();
    for (const c of ['e', 'x', 'boom', 'f']) await api.post('/v1/customers', { customer_id: c });

    const e = await api.post('/v1/attach', { customer_id: 'e', plan_id: 'pro', provider: 'fakepay' });
    expect(e.status).toBe(201);
    clock += 2 * 3_600_000; // the fake's sessions last an hour
    expect((await api.get(`/v1/checkouts/${e.body.checkout_id}`)).body.status).toBe('expired');
    expect(await subsOf(api, 'e')).toEqual([]);
    // a late webhook for a payment made before the session expired is honoured: the money was taken
    const late = await api.post(`/v1/checkouts/${e.body.checkout_id}/complete`, {});
    expect([late.status, late.body.checkout.status, late.body.subscription.status]).toEqual([200, 'completed', 'active']);

    const x = await api.post('/v1/attach', { customer_id: 'x', plan_id: 'pro', provider: 'fakepay' });
    expect((await api.post(`/v1/checkouts/${x.body.checkout_id}/cancel`, {})).body.status).toBe('canceled');
    const canceled = await api.post(`/v1/checkouts/${x.body.checkout_id}/complete`, {});
    expect([canceled.status, canceled.body.error.code]).toEqual([409, 'checkout_canceled']);
    expect(await subsOf(api, 'x')).toEqual([]);

    const boom = await api.post('/v1/attach', { customer_id: 'boom', plan_id: 'pro', provider: 'fakepay' });
    expect([boom.status, boom.body.error.code]).toEqual([502, 'provider_error']);
    expect(await subsOf(api, 'boom')).toEqual([]);

    // the free plan's first invoice is 0.00: nothing to collect, no checkout unless forced
    const free = await api.post('/v1/attach', { customer_id: 'f', plan_id: 'free', provider: 'fakepay' });
    expect([free.status, free.body.status, free.body.subscription.status]).toEqual([201, 'subscribed', 'active']);
    const forced = await api.post('/v1/attach', { customer_id: 'e', plan_id: 'free', provider: 'fakepay', force_checkout: true });
    expect([forced.status, forced.body.status]).toEqual([201, 'checkout_required']);
    expect((await api.get(`/v1/checkouts/${forced.body.checkout_id}`)).body.amount_due).toBe('0.00');

    const portal = await api.post('/v1/customers/f/billing_portal', { provider: 'fakepay', return_url: 'https://app.example.com/account' });
    expect(portal.status).toBe(200);
    expect(portal.body).toEqual({ url: `https://pay.fake.test/portal/f?return=${encodeURIComponent('https://app.example.com/account')}` });
    expect(fake.portals.at(-1)).toMatchObject({ customer: { customer_id: 'f' }, return_url: 'https://app.example.com/account' });
  });
});

describe('completion against cancel and plan edits', () => {
  it('a concurrent complete and cancel end consistently: canceled without a subscription, or completed with one (10 rounds)', async () => {
    const { api, orgId } = await setup();
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const customer = `race${i}`;
      await api.post('/v1/customers', { customer_id: customer });
      const a = await api.post('/v1/attach', { customer_id: customer, plan_id: 'pro', provider: 'fakepay' });
      expect(a.status, JSON.stringify(a.body)).toBe(201);
      const id = a.body.checkout_id as string;
      const [done, cancel] = await Promise.all([api.post(`/v1/checkouts/${id}/complete`, {}), api.post(`/v1/checkouts/${id}/cancel`, {})]);
      const checkout = (await api.get(`/v1/checkouts/${id}`)).body;
      const n = (
        await pg.query('SELECT count(*)::int AS n FROM subscriptions WHERE organization_id = $1 AND subscription_id = $2', [
          orgId,
          checkout.subscription_id,
        ])
      ).rows[0].n;
      const invoices = (await invoicesOf(api, customer)).length;
      if (cancel.status === 200) {
        outcomes.push('canceled');
        expect([cancel.body.status, done.status, done.body.error?.code, checkout.status, n, invoices]).toEqual([
          'canceled',
          409,
          'checkout_canceled',
          'canceled',
          0,
          0,
        ]);
        expect(await sso(api, customer)).toBe(false);
      } else {
        outcomes.push('completed');
        expect([cancel.status, cancel.body.error.code, done.status, checkout.status, n, invoices]).toEqual([
          409,
          'checkout_completed',
          200,
          'completed',
          1,
          1,
        ]);
        // a cancel after the completion is refused the same way
        expect((await api.post(`/v1/checkouts/${id}/cancel`, {})).status).toBe(409);
      }
    }
    expect(outcomes.length).toBe(10);
  });

  it('the subscription and its start invoice use the plan version priced at attach, not one edited before completion', async () => {
    const { api } = await setup();
    await api.post('/v1/customers', { customer_id: 'v' });
    const a = await api.post('/v1/attach', { customer_id: 'v', plan_id: 'pro', provider: 'fakepay' });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
    const id = a.body.checkout_id as string;
    expect(fake.requests.find((r) => r.checkout_id === id)).toMatchObject({
      amount_due_minor: 4900n,
      plan: { plan_id: 'pro', version: 1 },
    });
    // the plan is edited while the customer is at the provider's page
    const edited = await api.patch('/v1/plans/pro', { flat_fee: '99.00' });
    expect([edited.status, edited.body.version, edited.body.flat_fee]).toEqual([200, 2, '99.00']);
    clock += 60_000;
    const done = await api.post(`/v1/checkouts/${id}/complete`, {});
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.subscription).toMatchObject({ plan_id: 'pro', plan_version: 1, status: 'active' });
    expect((await invoicesOf(api, 'v')).map((i) => [i.reason, i.total])).toEqual([['subscription_start', '49.00']]);
    // a redelivery answers the same subscription
    const again = await api.post(`/v1/checkouts/${id}/complete`, {});
    expect([again.status, again.body.subscription.plan_version]).toEqual([200, 1]);
    // a new subscription (no checkout) takes the current version
    await api.post('/v1/customers', { customer_id: 'w' });
    const direct = await api.post('/v1/attach', { customer_id: 'w', plan_id: 'pro' });
    expect([direct.status, direct.body.subscription.plan_version]).toEqual([201, 2]);
  });
});

describe('completion records the collected money', () => {
  it('the start invoice is paid by the provider payment (idempotent on its reference); a smaller amount leaves the rest outstanding', async () => {
    const { api } = await setup();
    await api.post('/v1/customers', { customer_id: 'p' });
    const a = await api.post('/v1/attach', { customer_id: 'p', plan_id: 'pro', provider: 'fakepay' });
    const id = a.body.checkout_id as string;
    const ref = (await api.get(`/v1/checkouts/${id}`)).body.provider_reference as string;
    const done = await Promise.all(Array.from({ length: 5 }, () => api.post(`/v1/checkouts/${id}/complete`, { provider_reference: ref })));
    expect(done.map((d) => d.status)).toEqual(Array(5).fill(200));
    const [inv] = await invoicesOf(api, 'p');
    expect([inv.reason, inv.status]).toEqual(['subscription_start', 'paid']);
    const pay = (await api.get(`/v1/invoices/${inv.invoice_id}/payments`)).body;
    expect(pay).toMatchObject({ payment_status: 'paid', amount_paid: '49.00', amount_outstanding: '0.00' });
    expect(pay.payments.map((x: any) => [x.provider, x.reference, x.status, x.amount])).toEqual([['fakepay', ref, 'succeeded', '49.00']]);
    // a late redelivery records nothing more
    expect((await api.post(`/v1/checkouts/${id}/complete`, {})).status).toBe(200);
    expect((await api.get(`/v1/invoices/${inv.invoice_id}/payments`)).body.payments.length).toBe(1);

    await api.post('/v1/customers', { customer_id: 'q' });
    const b = await api.post('/v1/attach', { customer_id: 'q', plan_id: 'pro', provider: 'fakepay' });
    const bad = await api.post(`/v1/checkouts/${b.body.checkout_id}/complete`, { amount_collected: '20.001' });
    expect(bad.status).toBe(400);
    expect(await subsOf(api, 'q')).toEqual([]);
    expect((await pg.query('SELECT completion_started_at FROM checkouts WHERE checkout_id = $1', [b.body.checkout_id])).rows[0]).toEqual({
      completion_started_at: null,
    });
    const part = await api.post(`/v1/checkouts/${b.body.checkout_id}/complete`, { amount_collected: '20.00' });
    expect(part.status, JSON.stringify(part.body)).toBe(200);
    const [qi] = await invoicesOf(api, 'q');
    expect(qi.status).toBe('finalized');
    expect((await api.get(`/v1/invoices/${qi.invoice_id}/payments`)).body).toMatchObject({
      payment_status: 'partially_paid',
      amount_paid: '20.00',
      amount_outstanding: '29.00',
    });
  });
});
