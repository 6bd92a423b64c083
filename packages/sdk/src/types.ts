// Wire types. Request and response bodies are snake_case exactly as the services send and expect them;
// only the SDK's own options and method names are camelCase.
//
// Every request/response body type is the Static<> type of the schema the services validate and
// serialize with (@meterline/contracts): `import type` only, so the SDK still has no runtime
// dependency (nothing of @meterline/contracts or TypeBox is loaded at run time). Changing a field in a
// contract breaks the type-check of the service and of this SDK at once.
import type {
  AttachAddOnBody,
  BillingPortal as BillingPortalSchema,
  BillingPortalBody,
  CancelSubscriptionBody,
  Checkout as CheckoutSchema,
  CompleteCheckoutBody,
  CompletedCheckout as CompletedCheckoutSchema,
  ListEntitiesQuery,
  ListInvoicesQuery,
  ListPromotionalEntitlementsQuery,
  MetricWithVersions as MetricWithVersionsSchema,
  RedeemReferralBody,
  ReferralCode as ReferralCodeSchema,
  ReferralProgram as ReferralProgramSchema,
  CouponRedemption as CouponRedemptionSchema,
  CreateApiKeyBody,
  CreateCouponBody,
  CreateCreditGrantBody,
  CreateUsageAlertBody,
  CreateWebhookEndpointBody,
  CreditBalance as CreditBalanceSchema,
  CreditTransaction as CreditTransactionSchema,
  FieldError,
  IngestSummary,
  InvoicePayments as InvoicePaymentsSchema,
  InvoicePreview,
  InvoiceStatus as InvoiceStatusSchema,
  ListArchivableQuery,
  ListSubscriptionsQuery,
  ListWebhookDeliveriesQuery,
  PageParams,
  Payment as PaymentSchema,
  PlanVersionSummary as PlanVersionSummarySchema,
  PropertyValue,
  RecordPaymentBody,
  RefundBody,
  UpdateWebhookEndpointBody,
  UsageAlert as UsageAlertSchema,
  UsageAlertCrossing as UsageAlertCrossingSchema,
  UsageSeries,
} from '@meterline/contracts';

/** The static type of a contract schema that has no exported type (TypeBox's `Static<T>` is `T['static']`). */
type Static<T extends { static: unknown }> = T['static'];

export type {
  AccessDeniedReason,
  AttachInput,
  AttachResult,
  CreateEntityInput,
  CreateReferralProgramInput,
  Entity,
  EntitlementGrant,
  GrantPromotionalEntitlementInput,
  MetricVersion,
  PromotionalEntitlement,
  ReferralRedemption,
  SubscriptionAddOn,
  ApiKey,
  CheckInput,
  CheckResult,
  Coupon,
  CreditGrant,
  CreateCustomerInput,
  CreateFeatureInput,
  CreateMetricInput,
  CreatePlanInput,
  CreateSubscriptionInput,
  Customer,
  CustomerAccessParams,
  CustomerAccessResult,
  CustomerDetail,
  EditPlanInput,
  Entitlement,
  ErrorResponse,
  EventResult,
  EventStatus,
  Feature,
  FieldError,
  IngestSummary,
  Invoice,
  InvoicePreview,
  Metric,
  MetricFilter,
  NewApiKey,
  Organization,
  Page,
  PageParams,
  Plan,
  PlanComponent,
  PlanEntitlement,
  Pricing,
  PropertyValue,
  ReportUsageInput,
  ReportUsageResult,
  SegmentSettings,
  SegmentSettingsInput,
  Subscription,
  SubscriptionDetail,
  Tier,
  UpdateCustomerInput,
  UpdateMetricInput,
  UpdateSubscriptionInput,
  UsagePoint,
  UsageSeries,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointWithSecret,
  WebhookEventType,
  WebhookPayload,
} from '@meterline/contracts';

// ---- Ingest (gateway) ----------------------------------------------------------------------------

/**
 * One usage event (gateway's event contract). A request type of the SDK's own: it also takes Dates
 * and the `idempotency_key` / `timestamp` aliases, which the SDK turns into the wire event.
 */
export interface UsageEventInput {
  event_name: string;
  customer_id: string;
  /**
   * The customer's entity (seat, workspace) the usage belongs to: counted for the entity and for the
   * customer. Same rules as customer_id. Omitted = customer-level usage.
   */
  entity_id?: string;
  /** Set by the SDK (crypto.randomUUID) when missing, before the first attempt, so retries are safe. */
  idempotency_id?: string;
  /** Alias of `idempotency_id`; when only this is given, the SDK uses it as the id. */
  idempotency_key?: string;
  /** RFC 3339 with offset, or a Date (sent as ISO 8601 UTC). Default: the gateway's receive time. */
  time_created?: string | Date;
  /** Alias of `time_created`. */
  timestamp?: string | Date;
  /** Flat: string (≤ 1024 chars), finite number or boolean values; ≤ 100 keys. */
  properties?: Record<string, PropertyValue>;
}

/** The gateway's answer to an ingest request (contracts' IngestSummary). */
export type IngestResponse = IngestSummary;

export interface EventError {
  index: number;
  idempotency_id?: string;
  errors: FieldError[];
}

// ---- Billing ---------------------------------------------------------------------------------------

export interface ListCustomersParams extends PageParams {
  include_archived?: boolean;
  email?: string;
}

/** Query of `customers.search()`: `q` matched case-insensitively in id, name or email. */
export interface SearchCustomersParams extends PageParams {
  q: string;
  include_archived?: boolean;
}

/** Query of `usage.query()`: dates may be Date objects; exactly one of feature_id / metric_id. */
export type UsageQueryParams = {
  customer_id: string;
  /** One entity (seat, workspace) of the customer: its own usage. */
  entity_id?: string;
  from: string | Date;
  to: string | Date;
  /** Series windows (default: none, total only). */
  window?: 'hour' | 'day' | 'month';
  /** IANA zone the windows align to (default UTC), e.g. `America/New_York`. */
  time_zone?: string;
  group_by?: boolean;
} & PageParams &
  ({ feature_id: string; metric_id?: never } | { metric_id: string; feature_id?: never });

/** GET /v1/usage's answer (contracts' UsageSeries). */
export type UsageQueryResult = UsageSeries;

/** `GET /v1/plans|features|metrics` query: paging and whether archived ones are listed. */
export type ListArchivableParams = Partial<Static<typeof ListArchivableQuery>>;
/** One version of a plan as listed in `plans.get()`'s `versions`. */
export type PlanVersionSummary = Static<typeof PlanVersionSummarySchema>;
/** `subscriptions.list()` filters. */
export type ListSubscriptionsParams = Partial<Static<typeof ListSubscriptionsQuery>>;
/** `subscriptions.cancel()` body: `turn_off_auto_renew` (default: ends at period end) or end now (billed or not). */
export type CancelSubscriptionInput = Static<typeof CancelSubscriptionBody>;
/** An invoice's lifecycle state. */
export type InvoiceStatus = Static<typeof InvoiceStatusSchema>;
/** `invoices.list()` / `invoices.exportCsv()` filters (`created_*` on created_at, `period_*` on period_start; RFC 3339). */
export type ListInvoicesParams = Omit<Partial<Static<typeof ListInvoicesQuery>>, 'format'>;
/** `subscriptions.preview()` body. */
export interface PreviewSubscriptionInput {
  customer_id: string;
  plan_id: string;
  /** RFC 3339 (default now). */
  start_date?: string;
}
/** What `subscriptions.previewChange()` answers: the estimate with the proration lines. */
export type PlanChangePreview = InvoicePreview & { proration_credit?: string; proration_charge?: string };
export interface InvoicingSettings {
  /** How long after a period ends its draft still takes late usage before it is finalized (0..2,592,000; default 3,600). */
  grace_period_seconds: number;
}
/** The lifecycle transitions of `invoices.*` (and the deprecated `invoiceAction`). */
export type InvoiceAction = 'finalize' | 'mark_paid' | 'void' | 'mark_uncollectible';
export type CreateApiKeyInput = Static<typeof CreateApiKeyBody>;
export type CreateCreditGrantInput = Static<typeof CreateCreditGrantBody>;
export type CreditBalance = Static<typeof CreditBalanceSchema>;
export type CreditTransaction = Static<typeof CreditTransactionSchema>;
export type CreateCouponInput = Static<typeof CreateCouponBody>;
export type CouponRedemption = Static<typeof CouponRedemptionSchema>;
export type CreateWebhookEndpointInput = Static<typeof CreateWebhookEndpointBody>;
export type UpdateWebhookEndpointInput = Static<typeof UpdateWebhookEndpointBody>;
export type ListWebhookDeliveriesParams = Partial<Static<typeof ListWebhookDeliveriesQuery>>;
export type CreateUsageAlertInput = Static<typeof CreateUsageAlertBody>;
export type UsageAlert = Static<typeof UsageAlertSchema>;
export type UsageAlertCrossing = Static<typeof UsageAlertCrossingSchema>;
export type RecordPaymentInput = Static<typeof RecordPaymentBody>;
export type RefundInput = Static<typeof RefundBody>;
export type Payment = Static<typeof PaymentSchema>;
export type InvoicePayments = Static<typeof InvoicePaymentsSchema>;
/** A subscription whose period close failed and is retried with backoff. */
export interface SubscriptionCloseFailure {
  subscription_id: string;
  customer_id: string;
  close_error: string | null;
  close_failed_at: string | null;
  close_attempts: number;
  next_retry_at: string | null;
}
/** `metrics.get()`'s answer: the metric with its version history. */
export type MetricWithVersions = Static<typeof MetricWithVersionsSchema>;
/** `entities.list()` query. */
export type ListEntitiesParams = Partial<Static<typeof ListEntitiesQuery>>;
/** `promotions.list()` query. */
export type ListPromotionalEntitlementsParams = Partial<Static<typeof ListPromotionalEntitlementsQuery>>;
/** `subscriptions.attachAddOn()` body (quantity default 1). */
export type AttachAddOnInput = Static<typeof AttachAddOnBody>;
export type Checkout = Static<typeof CheckoutSchema>;
export type CompleteCheckoutInput = Static<typeof CompleteCheckoutBody>;
export type CompletedCheckout = Static<typeof CompletedCheckoutSchema>;
export type BillingPortalInput = Static<typeof BillingPortalBody>;
export type BillingPortal = Static<typeof BillingPortalSchema>;
export type ReferralProgram = Static<typeof ReferralProgramSchema>;
export type ReferralCode = Static<typeof ReferralCodeSchema>;
export type RedeemReferralInput = Static<typeof RedeemReferralBody>;
