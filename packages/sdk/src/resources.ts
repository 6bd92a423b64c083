// Typed calls for every public billing route, grouped by resource. Bodies and answers are the services'
// snake_case JSON, typed from @meterline/contracts. Every method takes CallOptions (`signal`,
// `timeoutMs`) as its last argument.
import type { CallOptions } from './http.ts';
import { randomId } from './ids.ts';
import type {
  ApiKey,
  AttachAddOnInput,
  AttachInput,
  AttachResult,
  BillingPortal,
  BillingPortalInput,
  Checkout,
  CompleteCheckoutInput,
  CompletedCheckout,
  CreateEntityInput,
  CreateReferralProgramInput,
  Entity,
  GrantPromotionalEntitlementInput,
  ListEntitiesParams,
  ListPromotionalEntitlementsParams,
  MetricVersion,
  MetricWithVersions,
  PromotionalEntitlement,
  ReferralCode,
  ReferralProgram,
  ReferralRedemption,
  SubscriptionAddOn,
  CancelSubscriptionInput,
  CheckInput,
  CheckResult,
  Coupon,
  CouponRedemption,
  CreateApiKeyInput,
  CreateCouponInput,
  CreateCreditGrantInput,
  CreateCustomerInput,
  CreateFeatureInput,
  CreateMetricInput,
  CreatePlanInput,
  CreateSubscriptionInput,
  CreateUsageAlertInput,
  CreateWebhookEndpointInput,
  CreditBalance,
  CreditGrant,
  CreditTransaction,
  Customer,
  CustomerAccessParams,
  CustomerAccessResult,
  CustomerDetail,
  EditPlanInput,
  Entitlement,
  Feature,
  Invoice,
  InvoiceAction,
  InvoicePayments,
  InvoicePreview,
  InvoicingSettings,
  ListArchivableParams,
  ListCustomersParams,
  SearchCustomersParams,
  ListInvoicesParams,
  ListSubscriptionsParams,
  ListWebhookDeliveriesParams,
  Metric,
  NewApiKey,
  Organization,
  Page,
  PageParams,
  Payment,
  Plan,
  PlanChangePreview,
  PreviewSubscriptionInput,
  RecordPaymentInput,
  RefundInput,
  ReportUsageInput,
  ReportUsageResult,
  SegmentSettings,
  SegmentSettingsInput,
  Subscription,
  SubscriptionCloseFailure,
  SubscriptionDetail,
  UpdateCustomerInput,
  UpdateMetricInput,
  UpdateSubscriptionInput,
  UpdateWebhookEndpointInput,
  UsageAlert,
  UsageAlertCrossing,
  UsageQueryParams,
  UsageQueryResult,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointWithSecret,
} from './types.ts';

/**
 * One billing call. `idempotent`: safe to repeat, so network errors and timeouts are retried too (503 and
 * 429 always are: billing answers them only when nothing happened).
 */
export type BillingCall = <T>(
  method: string,
  path: string,
  body: unknown,
  idempotent: boolean,
  opts: CallOptions | undefined,
) => Promise<T>;

/** A query string from the defined values (Dates as ISO 8601). */
export function qs(q: object | undefined): string {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q as Record<string, unknown>)) {
    if (v === undefined || v === null) continue;
    p.set(k, v instanceof Date ? v.toISOString() : String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

const seg = encodeURIComponent;

/** The input with an idempotency_key: the caller's, or a new one (fixed before the first attempt). */
export function withIdempotencyKey<T extends { idempotency_key?: string }>(input: T): T {
  return input.idempotency_key === undefined ? { ...input, idempotency_key: randomId() } : input;
}

// ---- customers ---------------------------------------------------------------------------------------

/** `/v1/customers`. */
export interface CustomersResource {
  /** `POST /v1/customers`. Idempotent on identical data (answers the existing customer); 409 `conflict` on different data. */
  create(input: CreateCustomerInput, opts?: CallOptions): Promise<Customer>;
  /** `GET /v1/customers/:id`: the customer with balance, subscriptions, invoices and total amount due. */
  get(customerId: string, opts?: CallOptions): Promise<CustomerDetail>;
  /** `GET /v1/customers` (paginated; `include_archived`, `email` filter). */
  list(params?: ListCustomersParams, opts?: CallOptions): Promise<Page<Customer>>;
  /** `GET /v1/customer_search?q=` (paginated): case-insensitive text in id, name or email; exact id first, then prefixes. */
  search(params: SearchCustomersParams, opts?: CallOptions): Promise<Page<Customer>>;
  /** `PATCH /v1/customers/:id` (name, email, balance, metadata). */
  update(customerId: string, patch: UpdateCustomerInput, opts?: CallOptions): Promise<Customer>;
  /** `DELETE /v1/customers/:id`: archives the customer (kept for its history). */
  archive(customerId: string, opts?: CallOptions): Promise<Customer>;
}

export function customersResource(call: BillingCall): CustomersResource {
  return {
    create: (input, opts) => call('POST', '/v1/customers', input, true, opts),
    get: (id, opts) => call('GET', `/v1/customers/${seg(id)}`, undefined, true, opts),
    list: (params, opts) => call('GET', `/v1/customers${qs(params)}`, undefined, true, opts),
    search: (params, opts) => call('GET', `/v1/customer_search${qs(params)}`, undefined, true, opts),
    update: (id, patch, opts) => call('PATCH', `/v1/customers/${seg(id)}`, patch, false, opts),
    archive: (id, opts) => call('DELETE', `/v1/customers/${seg(id)}`, undefined, false, opts),
  };
}

// ---- catalog: features, metrics, plans ------------------------------------------------------------------

/** `/v1/features`: boolean features, or metered ones bound to a metric. */
export interface FeaturesResource {
  /** `POST /v1/features`. Idempotent on identical data; 409 on different data. */
  create(input: CreateFeatureInput, opts?: CallOptions): Promise<Feature>;
  /** `GET /v1/features/:id`. */
  get(featureId: string, opts?: CallOptions): Promise<Feature>;
  /** `GET /v1/features` (paginated; `include_archived`). */
  list(params?: ListArchivableParams, opts?: CallOptions): Promise<Page<Feature>>;
  /** `PATCH /v1/features/:id`: renames it (the only editable field). */
  update(featureId: string, patch: { name: string | null }, opts?: CallOptions): Promise<Feature>;
  /** `DELETE /v1/features/:id`: archives it. */
  archive(featureId: string, opts?: CallOptions): Promise<Feature>;
}

export function featuresResource(call: BillingCall): FeaturesResource {
  return {
    create: (input, opts) => call('POST', '/v1/features', input, true, opts),
    get: (id, opts) => call('GET', `/v1/features/${seg(id)}`, undefined, true, opts),
    list: (params, opts) => call('GET', `/v1/features${qs(params)}`, undefined, true, opts),
    update: (id, patch, opts) => call('PATCH', `/v1/features/${seg(id)}`, patch, true, opts),
    archive: (id, opts) => call('DELETE', `/v1/features/${seg(id)}`, undefined, false, opts),
  };
}

/** `/v1/metrics`: billable metrics (what is counted from the events). */
export interface MetricsResource {
  /** `POST /v1/metrics`. Idempotent on identical data; 409 on different data. */
  create(input: CreateMetricInput, opts?: CallOptions): Promise<Metric>;
  /** `GET /v1/metrics/:id`: the metric with its version history (`versions`). */
  get(metricId: string, opts?: CallOptions): Promise<MetricWithVersions>;
  /** `GET /v1/metrics/:id/versions`: every definition it had, with when each applied (paginated). */
  versions(metricId: string, params?: PageParams, opts?: CallOptions): Promise<Page<MetricVersion>>;
  /** `GET /v1/metrics` (paginated; `include_archived`). */
  list(params?: ListArchivableParams, opts?: CallOptions): Promise<Page<Metric>>;
  /** `PATCH /v1/metrics/:id`: a definition change bumps its version (the aggregator recomputes). */
  update(metricId: string, patch: UpdateMetricInput, opts?: CallOptions): Promise<Metric>;
  /** `DELETE /v1/metrics/:id`: archives it. */
  archive(metricId: string, opts?: CallOptions): Promise<Metric>;
}

export function metricsResource(call: BillingCall): MetricsResource {
  return {
    create: (input, opts) => call('POST', '/v1/metrics', input, true, opts),
    get: (id, opts) => call('GET', `/v1/metrics/${seg(id)}`, undefined, true, opts),
    versions: (id, params, opts) => call('GET', `/v1/metrics/${seg(id)}/versions${qs(params)}`, undefined, true, opts),
    list: (params, opts) => call('GET', `/v1/metrics${qs(params)}`, undefined, true, opts),
    update: (id, patch, opts) => call('PATCH', `/v1/metrics/${seg(id)}`, patch, false, opts),
    archive: (id, opts) => call('DELETE', `/v1/metrics/${seg(id)}`, undefined, false, opts),
  };
}

/** `/v1/plans`: versioned price plans (editing creates a version; subscriptions keep theirs). */
export interface PlansResource {
  /** `POST /v1/plans` (version 1). Idempotent on identical data; 409 on different data. */
  create(input: CreatePlanInput, opts?: CallOptions): Promise<Plan>;
  /** `GET /v1/plans/:id`: the current version, with `versions` (each with its active subscriptions). */
  get(planId: string, opts?: CallOptions): Promise<Plan>;
  /** `GET /v1/plans/:id/versions/:version`: one version. */
  getVersion(planId: string, version: number, opts?: CallOptions): Promise<Plan>;
  /** `GET /v1/plans` (current versions, paginated; `include_archived`). */
  list(params?: ListArchivableParams, opts?: CallOptions): Promise<Page<Plan>>;
  /** `PATCH /v1/plans/:id`: creates a new version from the fields given (existing subscriptions keep theirs). */
  update(planId: string, patch: EditPlanInput, opts?: CallOptions): Promise<Plan>;
  /** `DELETE /v1/plans/:id`: archives it (no new subscriptions; existing ones continue). */
  archive(planId: string, opts?: CallOptions): Promise<void>;
}

export function plansResource(call: BillingCall): PlansResource {
  return {
    create: (input, opts) => call('POST', '/v1/plans', input, true, opts),
    get: (id, opts) => call('GET', `/v1/plans/${seg(id)}`, undefined, true, opts),
    getVersion: (id, version, opts) => call('GET', `/v1/plans/${seg(id)}/versions/${seg(String(version))}`, undefined, true, opts),
    list: (params, opts) => call('GET', `/v1/plans${qs(params)}`, undefined, true, opts),
    update: (id, patch, opts) => call('PATCH', `/v1/plans/${seg(id)}`, patch, false, opts),
    archive: async (id, opts) => {
      await call('DELETE', `/v1/plans/${seg(id)}`, undefined, true, opts);
    },
  };
}

// ---- subscriptions ------------------------------------------------------------------------------------

/** `/v1/subscriptions`. */
export interface SubscriptionsResource {
  /**
   * `POST /v1/subscriptions`. With a `subscription_id` the call is idempotent (a retry answers the same
   * subscription) and network errors are retried; without one it is sent once.
   */
  create(input: CreateSubscriptionInput, opts?: CallOptions): Promise<Subscription>;
  /** `GET /v1/subscriptions/:id`: current period and usage so far. */
  get(subscriptionId: string, opts?: CallOptions): Promise<SubscriptionDetail>;
  /** `GET /v1/subscriptions` (by customer, status, plan; paginated). */
  list(params?: ListSubscriptionsParams, opts?: CallOptions): Promise<Page<Subscription>>;
  /** `PATCH /v1/subscriptions/:id`: auto_renew, end_date, cancel fields, or `replace_immediately_type`. */
  update(subscriptionId: string, patch: UpdateSubscriptionInput, opts?: CallOptions): Promise<Subscription>;
  /** `POST /v1/subscriptions/:id/cancel` (default `turn_off_auto_renew`: ends at period end). */
  cancel(subscriptionId: string, input?: CancelSubscriptionInput, opts?: CallOptions): Promise<Subscription>;
  /** Changes the plan now, same period, prorated (`PATCH` with `replace_immediately_type: change_subscription_plan`). */
  changePlan(subscriptionId: string, planId: string, opts?: CallOptions): Promise<Subscription>;
  /** `POST /v1/subscriptions/preview`: the first invoice a new subscription would get (nothing is created). */
  preview(input: PreviewSubscriptionInput, opts?: CallOptions): Promise<InvoicePreview>;
  /** `POST /v1/subscriptions/:id/preview_change`: what changing the plan now would bill (proration credit and charge). */
  previewChange(subscriptionId: string, planId: string, opts?: CallOptions): Promise<PlanChangePreview>;
  /** `GET /v1/subscriptions/:id/upcoming_invoice`: the current period's invoice with the usage so far (nothing is written). */
  upcomingInvoice(subscriptionId: string, opts?: CallOptions): Promise<InvoicePreview>;
  /** `GET /v1/subscriptions/:id/close_failure`: its failed period close, if any (`close_error` null when none). */
  closeFailure(subscriptionId: string, opts?: CallOptions): Promise<SubscriptionCloseFailure>;
  /** `GET /v1/subscription_close_failures`: the organization's subscriptions whose period close failed (retried with backoff). */
  closeFailures(params?: { limit?: number }, opts?: CallOptions): Promise<{ data: SubscriptionCloseFailure[] }>;
  /** `POST /v1/subscriptions/:id/add_ons`: attaches an add-on plan (`plan_type: add_on`) with a quantity (default 1). */
  attachAddOn(subscriptionId: string, input: AttachAddOnInput, opts?: CallOptions): Promise<SubscriptionAddOn>;
  /** `GET /v1/subscriptions/:id/add_ons`. */
  listAddOns(subscriptionId: string, opts?: CallOptions): Promise<{ data: SubscriptionAddOn[] }>;
  /** `PATCH /v1/subscriptions/:id/add_ons/:plan_id`: a new quantity from now (prorated). */
  updateAddOn(subscriptionId: string, planId: string, quantity: number, opts?: CallOptions): Promise<SubscriptionAddOn>;
  /** `DELETE /v1/subscriptions/:id/add_ons/:plan_id`: ends the add-on now. */
  removeAddOn(subscriptionId: string, planId: string, opts?: CallOptions): Promise<SubscriptionAddOn>;
}

export function subscriptionsResource(call: BillingCall): SubscriptionsResource {
  const base = '/v1/subscriptions';
  return {
    create: (input, opts) => call('POST', base, input, input.subscription_id !== undefined, opts),
    get: (id, opts) => call('GET', `${base}/${seg(id)}`, undefined, true, opts),
    list: (params, opts) => call('GET', `${base}${qs(params)}`, undefined, true, opts),
    update: (id, patch, opts) => call('PATCH', `${base}/${seg(id)}`, patch, false, opts),
    cancel: (id, input, opts) => call('POST', `${base}/${seg(id)}/cancel`, input ?? {}, false, opts),
    changePlan: (id, planId, opts) =>
      call('PATCH', `${base}/${seg(id)}`, { replace_immediately_type: 'change_subscription_plan', plan_id: planId }, false, opts),
    preview: (input, opts) => call('POST', `${base}/preview`, input, true, opts),
    previewChange: (id, planId, opts) => call('POST', `${base}/${seg(id)}/preview_change`, { plan_id: planId }, true, opts),
    upcomingInvoice: (id, opts) => call('GET', `${base}/${seg(id)}/upcoming_invoice`, undefined, true, opts),
    closeFailure: (id, opts) => call('GET', `${base}/${seg(id)}/close_failure`, undefined, true, opts),
    closeFailures: (params, opts) => call('GET', `/v1/subscription_close_failures${qs(params)}`, undefined, true, opts),
    attachAddOn: (id, input, opts) => call('POST', `${base}/${seg(id)}/add_ons`, input, false, opts),
    listAddOns: (id, opts) => call('GET', `${base}/${seg(id)}/add_ons`, undefined, true, opts),
    updateAddOn: (id, planId, quantity, opts) => call('PATCH', `${base}/${seg(id)}/add_ons/${seg(planId)}`, { quantity }, true, opts),
    removeAddOn: (id, planId, opts) => call('DELETE', `${base}/${seg(id)}/add_ons/${seg(planId)}`, undefined, false, opts),
  };
}

// ---- invoices and payments -----------------------------------------------------------------------------

/**
 * `/v1/invoices`. Lifecycle: draft (takes late usage during the grace period) → finalized (numbered,
 * owed, frozen) → paid | void | uncollectible. The transitions are safe to retry: repeating one that
 * already happened answers 409 with the invoice's current status.
 */
export interface InvoicesResource {
  /** `GET /v1/invoices` (by customer, subscription, status; paginated). */
  list(params?: ListInvoicesParams, opts?: CallOptions): Promise<Page<Invoice>>;
  /** `GET /v1/invoices/:id`. */
  get(invoiceId: string, opts?: CallOptions): Promise<Invoice>;
  /** `POST /v1/invoices/:id/finalize`: a draft now (later usage is billed as late usage on the next invoice). */
  finalize(invoiceId: string, opts?: CallOptions): Promise<Invoice>;
  /** `POST /v1/invoices/:id/mark_paid` (finalized or uncollectible invoices). */
  markPaid(invoiceId: string, opts?: CallOptions): Promise<Invoice>;
  /** `POST /v1/invoices/:id/void`: a draft or unpaid invoice is no longer owed (its usage is not billed again). */
  void(invoiceId: string, opts?: CallOptions): Promise<Invoice>;
  /** `POST /v1/invoices/:id/mark_uncollectible` (finalized invoices: no longer counted as due). */
  markUncollectible(invoiceId: string, opts?: CallOptions): Promise<Invoice>;
  /** Any of the transitions by name. */
  transition(invoiceId: string, action: InvoiceAction, opts?: CallOptions): Promise<Invoice>;
  /** `GET /v1/invoices/:id/document`: the invoice as a self-contained HTML document (a string). */
  document(invoiceId: string, opts?: CallOptions): Promise<string>;
  /** `GET /v1/invoices/export.csv`: the invoices matching the filters as CSV, one row per line (limit/offset ignored). */
  exportCsv(params?: ListInvoicesParams, opts?: CallOptions): Promise<string>;
}

export function invoicesResource(call: BillingCall): InvoicesResource {
  const transition = (id: string, action: InvoiceAction, opts?: CallOptions): Promise<Invoice> =>
    call('POST', `/v1/invoices/${seg(id)}/${action}`, {}, false, opts);
  return {
    list: (params, opts) => call('GET', `/v1/invoices${qs(params)}`, undefined, true, opts),
    get: (id, opts) => call('GET', `/v1/invoices/${seg(id)}`, undefined, true, opts),
    finalize: (id, opts) => transition(id, 'finalize', opts),
    markPaid: (id, opts) => transition(id, 'mark_paid', opts),
    void: (id, opts) => transition(id, 'void', opts),
    markUncollectible: (id, opts) => transition(id, 'mark_uncollectible', opts),
    transition,
    document: async (id, opts) => String(await call<unknown>('GET', `/v1/invoices/${seg(id)}/document`, undefined, true, opts)),
    exportCsv: async (params, opts) => String(await call<unknown>('GET', `/v1/invoices/export.csv${qs(params)}`, undefined, true, opts)),
  };
}

/** Payments of invoices (built-in `manual` provider: money received elsewhere). */
export interface PaymentsResource {
  /**
   * `POST /v1/invoices/:id/payments` (amount default: what is outstanding; covering it marks the invoice
   * paid). With a `reference` (unique per provider) the call is safe to retry and network errors are retried.
   */
  record(invoiceId: string, input?: RecordPaymentInput, opts?: CallOptions): Promise<Payment>;
  /** `GET /v1/invoices/:id/payments`: payment status, amounts paid/refunded/outstanding and history. */
  list(invoiceId: string, opts?: CallOptions): Promise<InvoicePayments>;
  /** `POST /v1/payments/:id/refund`: refunds (part of) a succeeded payment (amount default: all of it). */
  refund(paymentId: string, input?: RefundInput, opts?: CallOptions): Promise<Payment>;
}

export function paymentsResource(call: BillingCall): PaymentsResource {
  return {
    record: (id, input, opts) => call('POST', `/v1/invoices/${seg(id)}/payments`, input ?? {}, input?.reference !== undefined, opts),
    list: (id, opts) => call('GET', `/v1/invoices/${seg(id)}/payments`, undefined, true, opts),
    refund: (id, input, opts) => call('POST', `/v1/payments/${seg(id)}/refund`, input ?? {}, false, opts),
  };
}

// ---- entitlements and usage ------------------------------------------------------------------------------

/** Access checks and entitlements. */
export interface EntitlementsResource {
  /**
   * `POST /v1/check`: may the customer use the feature? With `send_event: true` the grant and the
   * consumption are atomic, and the call carries an `idempotency_key` (yours, or one generated before the
   * first attempt), so its retries (503, 429, network errors, timeouts) replay the first answer instead
   * of consuming again.
   */
  check(input: CheckInput, opts?: CallOptions): Promise<CheckResult>;
  /** `GET /v1/customers/:id/entitlements`: all entitlements of a customer (paginated). */
  list(customerId: string, params?: PageParams, opts?: CallOptions): Promise<Page<Entitlement>>;
  /** `GET /v1/customers/:id/entitlements/:feature_id` (`requested_usage` default 1). */
  get(customerId: string, featureId: string, params?: { requested_usage?: number }, opts?: CallOptions): Promise<Entitlement>;
  /** `GET /v1/customer_access` (Lotus-style; pass exactly one of feature_name / event_name). */
  access(params: CustomerAccessParams, opts?: CallOptions): Promise<CustomerAccessResult>;
}

export function entitlementsResource(call: BillingCall): EntitlementsResource {
  return {
    check: (input, opts) =>
      input.send_event ? call('POST', '/v1/check', withIdempotencyKey(input), true, opts) : call('POST', '/v1/check', input, true, opts),
    list: (id, params, opts) => call('GET', `/v1/customers/${seg(id)}/entitlements${qs(params)}`, undefined, true, opts),
    get: (id, featureId, params, opts) =>
      call('GET', `/v1/customers/${seg(id)}/entitlements/${seg(featureId)}${qs(params)}`, undefined, true, opts),
    access: (params, opts) => call('GET', `/v1/customer_access${qs(params)}`, undefined, true, opts),
  };
}

/** Usage reported directly to billing (not through the event pipeline), and usage queries. */
export interface UsageResource {
  /**
   * `POST /v1/usage` (report_usage; `update_behavior` default `delta`). Carries an `idempotency_key`
   * (yours, or one generated before the first attempt): retries never count the usage twice.
   */
  report(input: ReportUsageInput, opts?: CallOptions): Promise<ReportUsageResult>;
  /** `POST /v1/usage` with `update_behavior: set` (gauges such as seats); idempotent like report. */
  set(input: Omit<ReportUsageInput, 'update_behavior'>, opts?: CallOptions): Promise<ReportUsageResult>;
  /** `GET /v1/usage`: total and series (window hour/day/month in a time zone) for a feature or metric over [from, to). */
  query(params: UsageQueryParams, opts?: CallOptions): Promise<UsageQueryResult>;
  /** `GET /v1/usage?format=csv`: the same query as CSV (a string). */
  exportCsv(params: UsageQueryParams, opts?: CallOptions): Promise<string>;
}

export function usageResource(call: BillingCall): UsageResource {
  return {
    report: (input, opts) => call('POST', '/v1/usage', withIdempotencyKey(input), true, opts),
    set: (input, opts) => call('POST', '/v1/usage', withIdempotencyKey({ ...input, update_behavior: 'set' as const }), true, opts),
    query: (params, opts) => call('GET', `/v1/usage${qs(params)}`, undefined, true, opts),
    exportCsv: async (params, opts) =>
      String(await call<unknown>('GET', `/v1/usage${qs({ ...params, format: 'csv' })}`, undefined, true, opts)),
  };
}

/** `/v1/usage_alerts`: `usage.threshold_reached` webhooks once per usage window when usage reaches a threshold. */
export interface AlertsResource {
  /** `POST /v1/usage_alerts` (threshold_percent of the limit, or threshold_quantity; per customer, plan or organization). */
  create(input: CreateUsageAlertInput, opts?: CallOptions): Promise<UsageAlert>;
  /** `GET /v1/usage_alerts` (paginated). */
  list(params?: PageParams, opts?: CallOptions): Promise<Page<UsageAlert>>;
  /** `DELETE /v1/usage_alerts/:id`: archives it. */
  archive(alertId: string, opts?: CallOptions): Promise<UsageAlert>;
  /** `GET /v1/usage_alerts/:id/crossings`: when each customer reached the threshold, per window (≤ 1,000, oldest first). */
  crossings(alertId: string, opts?: CallOptions): Promise<{ data: UsageAlertCrossing[] }>;
}

export function alertsResource(call: BillingCall): AlertsResource {
  return {
    create: (input, opts) => call('POST', '/v1/usage_alerts', input, input.alert_id !== undefined, opts),
    list: (params, opts) => call('GET', `/v1/usage_alerts${qs(params)}`, undefined, true, opts),
    archive: (id, opts) => call('DELETE', `/v1/usage_alerts/${seg(id)}`, undefined, false, opts),
    crossings: (id, opts) => call('GET', `/v1/usage_alerts/${seg(id)}/crossings`, undefined, true, opts),
  };
}

// ---- credits and coupons ------------------------------------------------------------------------------------

/** Prepaid credits, applied to invoices when they are finalized (by priority). */
export interface CreditsResource {
  /** `POST /v1/customers/:id/credits`: a grant (currency default: the customer's). */
  grant(customerId: string, input: CreateCreditGrantInput, opts?: CallOptions): Promise<CreditGrant>;
  /** `GET /v1/customers/:id/credits`: balance per currency and the grants. */
  balance(customerId: string, opts?: CallOptions): Promise<CreditBalance>;
  /** `GET /v1/customers/:id/credits/history`: grants, top-ups, applications to invoices, voids (paginated). */
  history(customerId: string, params?: PageParams, opts?: CallOptions): Promise<Page<CreditTransaction>>;
  /** `POST /v1/credits/:grant_id/top_up`. */
  topUp(grantId: string, amount: string, opts?: CallOptions): Promise<CreditGrant>;
  /** `POST /v1/credits/:grant_id/void`: what remains is no longer applied. */
  void(grantId: string, opts?: CallOptions): Promise<CreditGrant>;
}

export function creditsResource(call: BillingCall): CreditsResource {
  return {
    grant: (id, input, opts) => call('POST', `/v1/customers/${seg(id)}/credits`, input, false, opts),
    balance: (id, opts) => call('GET', `/v1/customers/${seg(id)}/credits`, undefined, true, opts),
    history: (id, params, opts) => call('GET', `/v1/customers/${seg(id)}/credits/history${qs(params)}`, undefined, true, opts),
    topUp: (grantId, amount, opts) => call('POST', `/v1/credits/${seg(grantId)}/top_up`, { amount }, false, opts),
    void: (grantId, opts) => call('POST', `/v1/credits/${seg(grantId)}/void`, {}, false, opts),
  };
}

/** `/v1/coupons`: percent or amount off; once, repeating N invoices, or forever. */
export interface CouponsResource {
  /** `POST /v1/coupons` (409 if the coupon_id exists). */
  create(input: CreateCouponInput, opts?: CallOptions): Promise<Coupon>;
  /** `GET /v1/coupons/:id`. */
  get(couponId: string, opts?: CallOptions): Promise<Coupon>;
  /** `GET /v1/coupons` (paginated). */
  list(params?: PageParams, opts?: CallOptions): Promise<Page<Coupon>>;
  /** `DELETE /v1/coupons/:id`: archives it (no new redemptions; running ones continue). */
  archive(couponId: string, opts?: CallOptions): Promise<Coupon>;
  /** `POST /v1/customers/:id/coupons`: redeems a coupon for a customer's invoices (or one subscription's). */
  redeem(customerId: string, couponId: string, subscriptionId?: string, opts?: CallOptions): Promise<CouponRedemption>;
}

export function couponsResource(call: BillingCall): CouponsResource {
  return {
    create: (input, opts) => call('POST', '/v1/coupons', input, false, opts),
    get: (id, opts) => call('GET', `/v1/coupons/${seg(id)}`, undefined, true, opts),
    list: (params, opts) => call('GET', `/v1/coupons${qs(params)}`, undefined, true, opts),
    archive: (id, opts) => call('DELETE', `/v1/coupons/${seg(id)}`, undefined, false, opts),
    redeem: (customerId, couponId, subscriptionId, opts) =>
      call(
        'POST',
        `/v1/customers/${seg(customerId)}/coupons`,
        { coupon_id: couponId, ...(subscriptionId ? { subscription_id: subscriptionId } : {}) },
        false,
        opts,
      ),
  };
}

// ---- webhooks, settings, organization ---------------------------------------------------------------------

/**
 * Webhook endpoints (Standard Webhooks): the signing secret is in the answers of `create` and
 * `rotateSecret` only. Verify deliveries with `verifyWebhook(rawBody, headers, secret)`.
 */
export interface WebhooksResource {
  /** `POST /v1/webhook_endpoints` (event_types empty = all). */
  create(input: CreateWebhookEndpointInput, opts?: CallOptions): Promise<WebhookEndpointWithSecret>;
  /** `GET /v1/webhook_endpoints` (paginated). */
  list(params?: PageParams, opts?: CallOptions): Promise<Page<WebhookEndpoint>>;
  /** `GET /v1/webhook_endpoints/:id`. */
  get(endpointId: string, opts?: CallOptions): Promise<WebhookEndpoint>;
  /** `PATCH /v1/webhook_endpoints/:id` (`enabled: false` abandons its pending deliveries). */
  update(endpointId: string, patch: UpdateWebhookEndpointInput, opts?: CallOptions): Promise<WebhookEndpoint>;
  /** `DELETE /v1/webhook_endpoints/:id` (its pending deliveries are abandoned). */
  delete(endpointId: string, opts?: CallOptions): Promise<WebhookEndpoint>;
  /** `POST …/rotate_secret`: a new secret; the old one keeps signing (both signatures sent) for overlapSeconds (default 86,400). */
  rotateSecret(endpointId: string, overlapSeconds?: number, opts?: CallOptions): Promise<WebhookEndpointWithSecret>;
  /** `GET …/deliveries`: the delivery log, newest first, each with its attempts. */
  deliveries(endpointId: string, params?: ListWebhookDeliveriesParams, opts?: CallOptions): Promise<Page<WebhookDelivery>>;
  /** `POST /v1/webhook_deliveries/:id/resend`: sends a delivery again now (same webhook-id). */
  resend(deliveryId: string, opts?: CallOptions): Promise<WebhookDelivery>;
}

export function webhooksResource(call: BillingCall): WebhooksResource {
  const base = '/v1/webhook_endpoints';
  return {
    create: (input, opts) => call('POST', base, input, false, opts),
    list: (params, opts) => call('GET', `${base}${qs(params)}`, undefined, true, opts),
    get: (id, opts) => call('GET', `${base}/${seg(id)}`, undefined, true, opts),
    update: (id, patch, opts) => call('PATCH', `${base}/${seg(id)}`, patch, false, opts),
    delete: (id, opts) => call('DELETE', `${base}/${seg(id)}`, undefined, false, opts),
    rotateSecret: (id, overlapSeconds, opts) =>
      call(
        'POST',
        `${base}/${seg(id)}/rotate_secret`,
        overlapSeconds === undefined ? {} : { overlap_seconds: overlapSeconds },
        false,
        opts,
      ),
    deliveries: (id, params, opts) => call('GET', `${base}/${seg(id)}/deliveries${qs(params)}`, undefined, true, opts),
    resend: (id, opts) => call('POST', `/v1/webhook_deliveries/${seg(id)}/resend`, {}, false, opts),
  };
}

/** Organization settings. */
export interface SettingsResource {
  /** `GET /v1/settings/invoicing`: the grace period during which a period's draft takes late usage. */
  getInvoicing(opts?: CallOptions): Promise<InvoicingSettings>;
  /** `PUT /v1/settings/invoicing`. */
  setInvoicing(settings: InvoicingSettings, opts?: CallOptions): Promise<InvoicingSettings>;
  /** `GET /v1/settings/segment`: whether Segment webhook signatures are required (the secret is never returned). */
  getSegment(opts?: CallOptions): Promise<SegmentSettings>;
  /** `PUT /v1/settings/segment`: sets (or clears with null) the Segment shared secret. */
  setSegment(settings: SegmentSettingsInput, opts?: CallOptions): Promise<SegmentSettings>;
}

export function settingsResource(call: BillingCall): SettingsResource {
  return {
    getInvoicing: (opts) => call('GET', '/v1/settings/invoicing', undefined, true, opts),
    setInvoicing: (settings, opts) => call('PUT', '/v1/settings/invoicing', settings, true, opts),
    getSegment: (opts) => call('GET', '/v1/settings/segment', undefined, true, opts),
    setSegment: (settings, opts) => call('PUT', '/v1/settings/segment', settings, true, opts),
  };
}

/** The calling key's organization and its API keys. */
export interface OrganizationResource {
  /** `GET /v1/organization`. */
  get(opts?: CallOptions): Promise<Organization>;
  /** `GET /v1/api_keys` (prefixes only; paginated). */
  listApiKeys(params?: PageParams, opts?: CallOptions): Promise<Page<ApiKey>>;
  /** `POST /v1/api_keys`: the key itself is in this answer only. */
  createApiKey(input?: CreateApiKeyInput, opts?: CallOptions): Promise<NewApiKey>;
  /** `DELETE /v1/api_keys/:id`: revokes it. */
  revokeApiKey(keyId: string, opts?: CallOptions): Promise<void>;
}

export function organizationResource(call: BillingCall): OrganizationResource {
  return {
    get: (opts) => call('GET', '/v1/organization', undefined, true, opts),
    listApiKeys: (params, opts) => call('GET', `/v1/api_keys${qs(params)}`, undefined, true, opts),
    createApiKey: (input, opts) => call('POST', '/v1/api_keys', input ?? {}, false, opts),
    revokeApiKey: async (id, opts) => {
      await call('DELETE', `/v1/api_keys/${seg(id)}`, undefined, true, opts);
    },
  };
}

// ---- entities, promotions, checkout, referrals ---------------------------------------------------------------

/** `/v1/customers/:id/entities`: sub-accounts of a customer (seats, workspaces) with their own usage and per_entity balances. */
export interface EntitiesResource {
  /** `POST /v1/customers/:id/entities`. Idempotent on identical data; 409 on different data. */
  create(customerId: string, input: CreateEntityInput, opts?: CallOptions): Promise<Entity>;
  /** `GET /v1/customers/:id/entities` (paginated; `include_deleted`). */
  list(customerId: string, params?: ListEntitiesParams, opts?: CallOptions): Promise<Page<Entity>>;
  /** `GET /v1/customers/:id/entities/:entity_id` (active entities). */
  get(customerId: string, entityId: string, opts?: CallOptions): Promise<Entity>;
  /** `DELETE /v1/customers/:id/entities/:entity_id`. */
  delete(customerId: string, entityId: string, opts?: CallOptions): Promise<Entity>;
}

export function entitiesResource(call: BillingCall): EntitiesResource {
  const base = (id: string) => `/v1/customers/${seg(id)}/entities`;
  return {
    create: (id, input, opts) => call('POST', base(id), input, true, opts),
    list: (id, params, opts) => call('GET', `${base(id)}${qs(params)}`, undefined, true, opts),
    get: (id, entityId, opts) => call('GET', `${base(id)}/${seg(entityId)}`, undefined, true, opts),
    delete: (id, entityId, opts) => call('DELETE', `${base(id)}/${seg(entityId)}`, undefined, false, opts),
  };
}

/** `/v1/customers/:id/promotional_entitlements`: time-limited grants on top of the plan (Stigg-style). */
export interface PromotionsResource {
  /** `POST …/promotional_entitlements`: `usage_limit` | `unlimited` | boolean, for a `period` or until `expires_at`. */
  grant(customerId: string, input: GrantPromotionalEntitlementInput, opts?: CallOptions): Promise<PromotionalEntitlement>;
  /** `GET …/promotional_entitlements` (active ones; `include_inactive` for expired and revoked). */
  list(customerId: string, params?: ListPromotionalEntitlementsParams, opts?: CallOptions): Promise<Page<PromotionalEntitlement>>;
  /** `DELETE …/promotional_entitlements/:feature_id`: revokes it now. */
  revoke(customerId: string, featureId: string, opts?: CallOptions): Promise<PromotionalEntitlement>;
}

export function promotionsResource(call: BillingCall): PromotionsResource {
  const base = (id: string) => `/v1/customers/${seg(id)}/promotional_entitlements`;
  return {
    grant: (id, input, opts) => call('POST', base(id), input, false, opts),
    list: (id, params, opts) => call('GET', `${base(id)}${qs(params)}`, undefined, true, opts),
    revoke: (id, featureId, opts) => call('DELETE', `${base(id)}/${seg(featureId)}`, undefined, false, opts),
  };
}

/** Subscribing through a payment provider: attach, hosted checkouts, the billing portal. */
export interface CheckoutResource {
  /**
   * `POST /v1/attach`: subscribes at once (manual provider: `status: subscribed`) or opens a hosted
   * checkout (`status: checkout_required`, `payment_url`). Idempotent (network errors retried) with a `subscription_id`.
   */
  attach(input: AttachInput, opts?: CallOptions): Promise<AttachResult>;
  /** `GET /v1/checkouts/:id`. */
  get(checkoutId: string, opts?: CallOptions): Promise<Checkout>;
  /** `POST /v1/checkouts/:id/complete`: the provider reports it paid; creates its subscription (idempotent). */
  complete(checkoutId: string, input?: CompleteCheckoutInput, opts?: CallOptions): Promise<CompletedCheckout>;
  /** `POST /v1/checkouts/:id/cancel`. */
  cancel(checkoutId: string, opts?: CallOptions): Promise<Checkout>;
  /** `POST /v1/customers/:id/billing_portal`: a provider's portal URL (409 `not_supported` with the manual provider). */
  billingPortal(customerId: string, input?: BillingPortalInput, opts?: CallOptions): Promise<BillingPortal>;
}

export function checkoutResource(call: BillingCall): CheckoutResource {
  return {
    attach: (input, opts) => call('POST', '/v1/attach', input, input.subscription_id !== undefined, opts),
    get: (id, opts) => call('GET', `/v1/checkouts/${seg(id)}`, undefined, true, opts),
    complete: (id, input, opts) => call('POST', `/v1/checkouts/${seg(id)}/complete`, input ?? {}, true, opts),
    cancel: (id, opts) => call('POST', `/v1/checkouts/${seg(id)}/cancel`, {}, false, opts),
    billingPortal: (id, input, opts) => call('POST', `/v1/customers/${seg(id)}/billing_portal`, input ?? {}, false, opts),
  };
}

/** Referral programs: rewards (coupon and/or credit) for referrer and redeemer, stable codes per customer. */
export interface ReferralsResource {
  /** `POST /v1/referral_programs`. */
  createProgram(input: CreateReferralProgramInput, opts?: CallOptions): Promise<ReferralProgram>;
  /** `GET /v1/referral_programs` (paginated). */
  listPrograms(params?: PageParams, opts?: CallOptions): Promise<Page<ReferralProgram>>;
  /** `GET /v1/referral_programs/:id`. */
  getProgram(programId: string, opts?: CallOptions): Promise<ReferralProgram>;
  /** `DELETE /v1/referral_programs/:id`: archives it. */
  archiveProgram(programId: string, opts?: CallOptions): Promise<ReferralProgram>;
  /** `POST /v1/referrals/code`: the customer's code for a program (the same one on every call). */
  code(customerId: string, programId: string, opts?: CallOptions): Promise<ReferralCode>;
  /** `GET /v1/referrals/codes/:code`. */
  getCode(code: string, opts?: CallOptions): Promise<ReferralCode>;
  /** `GET /v1/referrals/codes/:code/redemptions` (paginated). */
  redemptions(code: string, params?: PageParams, opts?: CallOptions): Promise<Page<ReferralRedemption>>;
  /** `POST /v1/referrals/redeem`: grants every reward at once (a repeat answers the same redemption). */
  redeem(code: string, customerId: string, opts?: CallOptions): Promise<ReferralRedemption>;
}

export function referralsResource(call: BillingCall): ReferralsResource {
  return {
    createProgram: (input, opts) => call('POST', '/v1/referral_programs', input, false, opts),
    listPrograms: (params, opts) => call('GET', `/v1/referral_programs${qs(params)}`, undefined, true, opts),
    getProgram: (id, opts) => call('GET', `/v1/referral_programs/${seg(id)}`, undefined, true, opts),
    archiveProgram: (id, opts) => call('DELETE', `/v1/referral_programs/${seg(id)}`, undefined, false, opts),
    code: (customerId, programId, opts) =>
      call('POST', '/v1/referrals/code', { customer_id: customerId, program_id: programId }, true, opts),
    getCode: (code, opts) => call('GET', `/v1/referrals/codes/${seg(code)}`, undefined, true, opts),
    redemptions: (code, params, opts) => call('GET', `/v1/referrals/codes/${seg(code)}/redemptions${qs(params)}`, undefined, true, opts),
    redeem: (code, customerId, opts) => call('POST', '/v1/referrals/redeem', { code, customer_id: customerId }, true, opts),
  };
}
