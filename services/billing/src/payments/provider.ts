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

export interface PaymentProvider {
  readonly name: string;
  charge(req: ChargeRequest): Promise<{ status: PaymentStatus; reference: string | null }>;
  refund(req: { idempotency_key: string; payment_reference: string | null; amount_minor: bigint; currency: string }): Promise<{
    status: PaymentStatus;
    reference: string | null;
  }>;
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
