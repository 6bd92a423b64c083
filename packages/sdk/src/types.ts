// Wire types. Request and response bodies are snake_case exactly as the services send and expect them;
// only the SDK's own options and method names are camelCase.
//
// Every request/response body type is the Static<> type of the schema the services validate and
// serialize with (@meterline/contracts): `import type` only, so the SDK still has no runtime
// dependency (nothing of @meterline/contracts or TypeBox is loaded at run time). Changing a field in a
// contract breaks the type-check of the service and of this SDK at once.
import type { FieldError, IngestSummary, PageParams, PropertyValue, UsageSeries } from '@meterline/contracts';

export type {
  AccessDeniedReason,
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

/** Query of `usage()`: dates may be Date objects; exactly one of feature_id / metric_id. */
export type UsageQueryParams = {
  customer_id: string;
  from: string | Date;
  to: string | Date;
  window?: 'hour' | 'day';
  group_by?: boolean;
} & PageParams &
  ({ feature_id: string; metric_id?: never } | { metric_id: string; feature_id?: never });

/** GET /v1/usage's answer (contracts' UsageSeries). */
export type UsageQueryResult = UsageSeries;
