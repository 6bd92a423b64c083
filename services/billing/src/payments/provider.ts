// The payment-provider contract (issue #12 item 6). A provider collects money for an invoice and refunds
// it; billing records every attempt (invoice_payments) and marks the invoice paid when succeeded
// charges minus refunds cover its total. Built in: `manual` — the payment happened elsewhere (bank
// transfer, a terminal) and is recorded through the API.
//
// What an adapter for a real provider (e.g. Stripe) must meet, beyond these two calls:
//   - charge/refund are idempotent on `idempotency_key` (billing passes the payment id), because billing
//     retries an attempt whose outcome it did not learn;
//   - `reference` is the provider's id of the charge, unique per provider (a database constraint);
//   - asynchronous outcomes (pending → succeeded/failed) arrive through an inbound, signed webhook that
//     the adapter verifies and maps to (reference, status); the route that receives it is to be added
//     with the first such adapter (none can be tested for real on this machine).
export type PaymentStatus = 'pending' | 'succeeded' | 'failed';

export interface ChargeRequest {
  idempotency_key: string;
  invoice_id: string;
  customer_id: string;
  amount_minor: bigint;
  currency: string;
  /** the caller's reference (manual: e.g. the bank transfer's id) */
  reference?: string;
}

/**
 * A hosted checkout for POST /v1/attach (checkout/service.ts). Billing has stored the checkout row
 * (status open, subscription id reserved) before calling; the provider shows the payment page at `url`.
 */
export interface CheckoutRequest {
  /** = checkout_id: a retried call with the same key must return the same session */
  idempotency_key: string;
  checkout_id: string;
  organization_id: string;
  customer: { customer_id: string; name: string | null; email: string | null; currency: string };
  plan: { plan_id: string; version: number; name: string; interval: string };
  /** the first invoice of the subscription (before coupons and credits), minor units of `currency` */
  amount_due_minor: bigint;
  currency: string;
  /** where the payment page sends the customer afterwards (the caller's, passed through) */
  success_url: string | null;
  /** the path the provider (or its webhook receiver) calls, with the organization's API key, once paid */
  complete_path: string;
}

export interface CheckoutSession {
  url: string;
  /** the provider's id of the session (unique per provider); completion may be asked to repeat it */
  reference: string | null;
  expires_at?: Date | null;
}

export interface PortalRequest {
  organization_id: string;
  customer: { customer_id: string; name: string | null; email: string | null; currency: string };
  return_url: string | null;
}

export interface PaymentProvider {
  readonly name: string;
  charge(req: ChargeRequest): Promise<{ status: PaymentStatus; reference: string | null }>;
  refund(req: { idempotency_key: string; payment_reference: string | null; amount_minor: bigint; currency: string }): Promise<{
    status: PaymentStatus;
    reference: string | null;
  }>;
  /**
   * Hosted providers only (absent: attach subscribes at once). Opens a payment page for the first
   * invoice; idempotent on idempotency_key. When the customer has paid, the provider's side (its
   * webhook receiver, verified by the adapter) calls POST {complete_path} with { provider_reference };
   * completion is idempotent (a repeat answers the same subscription), so at-least-once delivery is fine.
   */
  createCheckout?(req: CheckoutRequest): Promise<CheckoutSession>;
  /** Hosted providers only (absent: 409 not_supported). A short-lived URL of the customer's billing portal. */
  createPortalSession?(req: PortalRequest): Promise<{ url: string }>;
}

/** Payments made outside Meterline, recorded through the API: they succeed as recorded. */
export const manualProvider: PaymentProvider = {
  name: 'manual',
  async charge(req) {
    return { status: 'succeeded', reference: req.reference ?? null };
  },
  async refund() {
    return { status: 'succeeded', reference: null };
  },
};

export const PROVIDERS: Record<string, PaymentProvider> = { manual: manualProvider };
