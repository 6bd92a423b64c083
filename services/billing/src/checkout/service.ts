// Attach (Autumn attach/checkout): subscribe a customer to a plan, through a hosted checkout when the
// payment provider has one (payments/provider.ts createCheckout), else at once (the built-in manual
// provider). A checkout reserves the subscription id; completing it (POST /v1/checkouts/:id/complete,
// called by the provider's side once paid) creates the subscription — idempotently: the start instant is
// fixed by the first completion attempt and createSubscription answers the existing row for the same
// id and terms, so a repeat or a retry after a crash ends with one subscription. The billing portal is
// the provider's (createPortalSession) or 409 not_supported (a configuration state, not a server fault: 5xx would page the operator's on-call).
import { withTransaction } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ApiError, badRequest, conflict, notFound } from '../http/errors.ts';
import { fitsMinor, fromMinor, toMinor } from '../money.ts';
import { newId } from '../orgs/store.ts';
import * as customers from '../customers/store.ts';
import { PROVIDERS, type PaymentProvider } from '../payments/provider.ts';
import { recordCollectedLocked } from '../payments/service.ts';
import { invoiceTotalMinor } from '../pricing.ts';
import { startLines } from '../invoices/price.ts';
import {
  createSubscription,
  currentPeriod,
  newSubscriptionTerms,
  subscriptionJson,
  type SubscriptionRow,
} from '../subscriptions/service.ts';
import * as subs from '../subscriptions/store.ts';

interface CheckoutRow {
  checkout_id: string;
  customer_id: string;
  plan_id: string;
  subscription_id: string;
  provider: string;
  status: 'open' | 'completed' | 'expired' | 'canceled';
  plan_version: number | null;
  completion_started_at: Date | null;
  options: { start_date?: string; end_date?: string | null; auto_renew?: boolean };
  start_date: Date | null;
  amount_due_minor: string;
  currency: string;
  success_url: string | null;
  payment_url: string | null;
  provider_reference: string | null;
  expires_at: Date | null;
  completed_at: Date | null;
  created_at: Date;
}
const COLS = `checkout_id, customer_id, plan_id, subscription_id, provider, status, plan_version, completion_started_at, options, start_date, amount_due_minor::text AS amount_due_minor,
  currency, success_url, payment_url, provider_reference, expires_at, completed_at, created_at`;

function checkoutJson(c: CheckoutRow) {
  const cur = c.currency.trim();
  return {
    checkout_id: c.checkout_id,
    customer_id: c.customer_id,
    plan_id: c.plan_id,
    subscription_id: c.subscription_id,
    provider: c.provider,
    status: c.status,
    payment_url: c.payment_url,
    success_url: c.success_url,
    amount_due: fromMinor(c.amount_due_minor, cur),
    currency: cur,
    provider_reference: c.provider_reference,
    expires_at: c.expires_at?.toISOString() ?? null,
    completed_at: c.completed_at?.toISOString() ?? null,
    created_at: c.created_at.toISOString(),
  };
}

const notSupported = (provider: string, what: string) =>
  new ApiError(409, 'not_supported', `payment provider "${provider}" has no ${what}`, { provider });

function providerOf(deps: Deps, name: string | undefined): PaymentProvider {
  const all = deps.paymentProviders ?? PROVIDERS;
  const p = all[name ?? 'manual'];
  if (!p)
    throw new ApiError(400, 'unknown_provider', `unknown payment provider "${name}"; available: ${Object.keys(all).join(', ')}`, {
      available: Object.keys(all),
    });
  return p;
}

export interface AttachInput {
  customer_id: string;
  plan_id: string;
  start_date?: string;
  end_date?: string | null;
  subscription_id?: string;
  auto_renew?: boolean;
  provider?: string;
  success_url?: string;
  force_checkout?: boolean;
}

type SubscriptionJson = ReturnType<typeof subscriptionJson>;
export type AttachOutcome = {
  created: boolean;
  body: {
    status: 'subscribed' | 'checkout_required';
    subscription: SubscriptionJson | null;
    checkout_id: string | null;
    payment_url: string | null;
  };
};

export async function attach(deps: Deps, orgId: string, input: AttachInput): Promise<AttachOutcome> {
  const now = deps.now();
  const provider = providerOf(deps, input.provider);
  const subInput = {
    customer_id: input.customer_id,
    plan_id: input.plan_id,
    start_date: input.start_date,
    end_date: input.end_date,
    subscription_id: input.subscription_id,
    auto_renew: input.auto_renew,
  };
  const subscribe = async (): Promise<AttachOutcome> => {
    const r = await createSubscription(deps, orgId, subInput);
    return { created: r.created, body: { status: 'subscribed', subscription: r.subscription, checkout_id: null, payment_url: null } };
  };
  if (!provider.createCheckout) {
    if (input.force_checkout) throw notSupported(provider.name, 'hosted checkout (force_checkout)');
    return subscribe();
  }
  // checks customer, plan, currencies and dates as creation would, before anything is opened
  const { plan, row } = await newSubscriptionTerms(deps, orgId, subInput, now);
  const cur = plan.currency.trim();
  const due = invoiceTotalMinor(startLines(plan, row as unknown as SubscriptionRow));
  if (due === 0n && !input.force_checkout) return subscribe();
  const live = (await subs.liveSubscriptions(deps.pool, orgId, input.customer_id)).map((s) => currentPeriod(s, now));
  if (live.some((s) => s.plan_id === input.plan_id && s.status !== 'ended'))
    throw conflict(`customer "${input.customer_id}" already has a live subscription to plan "${input.plan_id}"`);
  if (input.subscription_id && (await subs.getSubscription(deps.pool, orgId, input.subscription_id)))
    throw conflict(`subscription "${input.subscription_id}" already exists`);
  const customer = (await customers.getCustomer(deps.pool, orgId, input.customer_id))!;
  const checkoutId = newId('co');
  const options = { start_date: input.start_date, end_date: input.end_date ?? null, auto_renew: input.auto_renew ?? true };
  await deps.pool.query(
    `INSERT INTO checkouts (organization_id, checkout_id, customer_id, plan_id, subscription_id, provider, status, options, start_date, amount_due_minor, currency, success_url, plan_version)
     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11, $12)`,
    [
      orgId,
      checkoutId,
      input.customer_id,
      input.plan_id,
      row.subscription_id,
      provider.name,
      JSON.stringify(options),
      input.start_date ? new Date(input.start_date) : null,
      due.toString(),
      cur,
      input.success_url ?? null,
      // the version whose first invoice the provider collects: the subscription is created on it
      plan.version,
    ],
  );
  let session: Awaited<ReturnType<NonNullable<PaymentProvider['createCheckout']>>>;
  try {
    session = await provider.createCheckout({
      idempotency_key: checkoutId,
      checkout_id: checkoutId,
      organization_id: orgId,
      customer: { customer_id: customer.customer_id, name: customer.name, email: customer.email, currency: customer.currency.trim() },
      plan: { plan_id: plan.plan_id, version: plan.version, name: plan.name, interval: plan.interval },
      amount_due_minor: due,
      currency: cur,
      success_url: input.success_url ?? null,
      complete_path: `/v1/checkouts/${encodeURIComponent(checkoutId)}/complete`,
    });
  } catch (err) {
    await deps.pool.query(`UPDATE checkouts SET status = 'canceled' WHERE organization_id = $1 AND checkout_id = $2`, [orgId, checkoutId]);
    deps.logger.warn({ err: (err as Error).message, provider: provider.name }, 'payment provider could not open a checkout');
    throw new ApiError(502, 'provider_error', `payment provider "${provider.name}" could not open a checkout; nothing was created`);
  }
  await deps.pool.query(
    `UPDATE checkouts SET payment_url = $3, provider_reference = $4, expires_at = $5 WHERE organization_id = $1 AND checkout_id = $2`,
    [orgId, checkoutId, session.url, session.reference, session.expires_at ?? null],
  );
  return { created: true, body: { status: 'checkout_required', subscription: null, checkout_id: checkoutId, payment_url: session.url } };
}

async function loadCheckout(deps: Deps, orgId: string, checkoutId: string) {
  const { rows } = await deps.pool.query<CheckoutRow>(`SELECT ${COLS} FROM checkouts WHERE organization_id = $1 AND checkout_id = $2`, [
    orgId,
    checkoutId,
  ]);
  if (!rows[0]) throw notFound('checkout', checkoutId);
  return rows[0];
}

export async function getCheckout(deps: Deps, orgId: string, checkoutId: string) {
  const c = await loadCheckout(deps, orgId, checkoutId);
  // an open checkout past its expiry reads as expired (reads never write)
  if (c.status === 'open' && c.expires_at && c.expires_at.getTime() <= deps.now().getTime()) c.status = 'expired';
  return checkoutJson(c);
}

/**
 * The provider's side reports the checkout paid: creates the reserved subscription (entitlements follow
 * from it) and marks the checkout completed. Idempotent; accepted after expires_at too (a late webhook
 * for a payment made in time); refused once canceled. A refused creation (e.g. the customer was archived
 * meanwhile) answers its error and leaves the checkout open.
 */
export async function completeCheckout(
  deps: Deps,
  orgId: string,
  checkoutId: string,
  input: { provider_reference?: string; amount_collected?: string },
) {
  const now = deps.now();
  const c = await withTransaction(deps.pool, async (db) => {
    const { rows } = await db.query<CheckoutRow>(
      `SELECT ${COLS} FROM checkouts WHERE organization_id = $1 AND checkout_id = $2 FOR UPDATE`,
      [orgId, checkoutId],
    );
    const c = rows[0];
    if (!c) throw notFound('checkout', checkoutId);
    if (input.provider_reference !== undefined && c.provider_reference !== null && input.provider_reference !== c.provider_reference)
      throw new ApiError(409, 'reference_mismatch', `checkout "${checkoutId}" belongs to another provider session`);
    if (c.status === 'canceled') throw new ApiError(409, 'checkout_canceled', `checkout "${checkoutId}" was canceled`);
    // checked before a completion is marked started (a refused request must leave the checkout cancelable)
    const cur = c.currency.trim();
    if (input.amount_collected !== undefined && !fitsMinor(input.amount_collected, cur))
      throw badRequest(`amount_collected has more decimals than ${cur} allows`);
    // past expires_at is no refusal: a provider delivers its webhook late (retries for days) for a payment
    // made before the session expired, and the money is taken — the subscription must follow
    if (c.status !== 'completed' && (!c.start_date || !c.completion_started_at)) {
      // the subscription starts when the first completion attempt came in; retries repeat this instant.
      // completion_started_at: from now on a cancel is refused (cancelCheckout takes this row lock too)
      const { rows: fixed } = await db.query<CheckoutRow>(
        `UPDATE checkouts SET start_date = coalesce(start_date, $3), completion_started_at = coalesce(completion_started_at, $3)
          WHERE organization_id = $1 AND checkout_id = $2 RETURNING ${COLS}`,
        [orgId, checkoutId, now],
      );
      return fixed[0]!;
    }
    return c;
  });
  if (c.status === 'completed') {
    await recordCollected(deps, orgId, c, input, now);
    const sub = (await subs.getSubscription(deps.pool, orgId, c.subscription_id))!;
    return { checkout: checkoutJson(c), subscription: subscriptionJson(sub, now), created: false };
  }
  let r: Awaited<ReturnType<typeof createSubscription>>;
  try {
    r = await createSubscription(deps, orgId, {
      customer_id: c.customer_id,
      plan_id: c.plan_id,
      // the version priced at attach (what the provider collected); NULL for checkouts older than 0015
      plan_version: c.plan_version ?? undefined,
      subscription_id: c.subscription_id,
      start_date: c.start_date!.toISOString(),
      end_date: c.options.end_date ?? null,
      auto_renew: c.options.auto_renew ?? true,
    });
  } catch (err) {
    // a refusal (e.g. the customer was archived) leaves the checkout open and cancelable again — unless
    // the subscription exists after all (a concurrent attempt created it)
    if (err instanceof ApiError)
      await deps.pool.query(
        `UPDATE checkouts SET completion_started_at = NULL
          WHERE organization_id = $1 AND checkout_id = $2 AND status IN ('open', 'expired')
            AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.organization_id = $1 AND s.subscription_id = checkouts.subscription_id)`,
        [orgId, checkoutId],
      );
    throw err;
  }
  // conditional: never turns a canceled checkout into a completed one (cancel refuses once a completion
  // has started, so with the row lock above this matches whenever the subscription was created)
  const { rows } = await deps.pool.query<CheckoutRow>(
    `UPDATE checkouts SET status = 'completed', completed_at = coalesce(completed_at, $3)
      WHERE organization_id = $1 AND checkout_id = $2 AND status IN ('open', 'expired', 'completed') RETURNING ${COLS}`,
    [orgId, checkoutId, now],
  );
  if (!rows[0]) throw new ApiError(409, 'checkout_canceled', `checkout "${checkoutId}" was canceled`);
  await recordCollected(deps, orgId, rows[0], input, now);
  return { checkout: checkoutJson(rows[0]), subscription: r.subscription, created: r.created };
}

/**
 * The money the provider collected, recorded against the subscription's start invoice as a succeeded
 * payment (provider = the checkout's, reference = its session reference; idempotent on it): the amount
 * sent (default: the checkout's amount_due), at most what the invoice still owes — a smaller amount leaves
 * the rest outstanding. Nothing without a reference or when nothing was collected.
 */
async function recordCollected(
  deps: Deps,
  orgId: string,
  c: CheckoutRow,
  input: { provider_reference?: string; amount_collected?: string },
  now: Date,
) {
  const reference = c.provider_reference ?? input.provider_reference;
  if (!reference) return;
  const collected = input.amount_collected !== undefined ? toMinor(input.amount_collected, c.currency.trim()) : BigInt(c.amount_due_minor);
  if (collected <= 0n) return;
  await withTransaction(deps.pool, async (db) => {
    const { rows } = await db.query<{ invoice_id: string }>(
      `SELECT invoice_id FROM invoices WHERE organization_id = $1 AND subscription_id = $2 AND reason = 'subscription_start'
        ORDER BY created_at LIMIT 1`,
      [orgId, c.subscription_id],
    );
    if (!rows[0]) return;
    await recordCollectedLocked(
      db,
      orgId,
      rows[0].invoice_id,
      { provider: c.provider, reference, amount_minor: collected, note: `checkout ${c.checkout_id}` },
      now,
    );
  });
}

/** An open checkout is abandoned (e.g. the provider's session expired): completing it is refused from then on. */
export async function cancelCheckout(deps: Deps, orgId: string, checkoutId: string) {
  return withTransaction(deps.pool, async (db) => {
    // the row lock completeCheckout takes: either the cancel comes first (completion then refuses) or the
    // completion has started (fixed its start) and the cancel is refused — never a canceled checkout
    // with a subscription
    const { rows } = await db.query<CheckoutRow>(
      `SELECT ${COLS} FROM checkouts WHERE organization_id = $1 AND checkout_id = $2 FOR UPDATE`,
      [orgId, checkoutId],
    );
    const c = rows[0];
    if (!c) throw notFound('checkout', checkoutId);
    if (c.status === 'canceled') return checkoutJson(c);
    if (c.status === 'completed' || c.completion_started_at)
      throw new ApiError(
        409,
        'checkout_completed',
        `checkout "${checkoutId}" is ${c.status === 'completed' ? 'completed' : 'being completed'}; cancel the subscription instead`,
      );
    const { rows: done } = await db.query<CheckoutRow>(
      `UPDATE checkouts SET status = 'canceled' WHERE organization_id = $1 AND checkout_id = $2 RETURNING ${COLS}`,
      [orgId, checkoutId],
    );
    return checkoutJson(done[0]!);
  });
}

export async function billingPortal(deps: Deps, orgId: string, customerId: string, input: { provider?: string; return_url?: string }) {
  const provider = providerOf(deps, input.provider);
  const customer = await customers.getCustomer(deps.pool, orgId, customerId);
  if (!customer) throw notFound('customer', customerId);
  if (!provider.createPortalSession) throw notSupported(provider.name, 'billing portal');
  const { url } = await provider.createPortalSession({
    organization_id: orgId,
    customer: { customer_id: customer.customer_id, name: customer.name, email: customer.email, currency: customer.currency.trim() },
    return_url: input.return_url ?? null,
  });
  if (typeof url !== 'string' || !url)
    throw new ApiError(502, 'provider_error', `payment provider "${provider.name}" returned no portal URL`);
  return { url };
}
