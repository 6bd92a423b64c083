// Wire types. Request and response bodies are snake_case exactly as the services send and expect them;
// only the SDK's own options and method names are camelCase.

export type PropertyValue = string | number | boolean;

// ---- Ingest (gateway) ----------------------------------------------------------------------------

/** One usage event (gateway's event contract). */
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

export type EventStatus = 'accepted' | 'duplicate' | 'rejected' | 'retry' | 'ignored';

export interface FieldError { field: string; reason: string; message: string }

/** One event's outcome; `index` is the position in the array passed to `trackBatch`. */
export interface EventResult {
  index: number;
  status: EventStatus;
  idempotency_id?: string;
  /** Duplicate of an earlier event of the same call (index in the caller's array). */
  duplicate_of?: number;
  errors?: FieldError[];
  reason?: string;
  customer_id?: string;
}

export interface IngestResponse {
  accepted: number;
  duplicates: number;
  rejected: number;
  retry: number;
  ignored: number;
  results: EventResult[];
}

export interface EventError { index: number; idempotency_id?: string; errors: FieldError[] }

// ---- Billing ---------------------------------------------------------------------------------------

export interface Page<T> { data: T[]; limit: number; offset: number; has_more: boolean; next_offset: number | null }
export interface PageParams { limit?: number; offset?: number }

export interface Customer {
  customer_id: string;
  name: string | null;
  email: string | null;
  currency: string;
  /** Prepaid credit, decimal string in major units. */
  balance: string;
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  archived_at: string | null;
}

export interface CustomerDetail extends Customer {
  subscriptions: Record<string, unknown>[];
  invoices: Record<string, unknown>[];
  total_amount_due: string;
  net_amount_due: string;
  amount_due_by_currency: Record<string, string>;
}

export interface CreateCustomerInput {
  customer_id: string;
  name?: string | null;
  email?: string | null;
  /** Decimal string, major units. */
  balance?: string;
  metadata?: Record<string, unknown>;
  /** ISO 4217, 3 letters. */
  currency?: string;
}

export interface ListCustomersParams extends PageParams { include_archived?: boolean; email?: string }

export type AccessDeniedReason =
  | 'no_active_subscription' | 'feature_not_in_plan' | 'usage_limit_exceeded' | 'requested_usage_exceeds_limit';

export interface Entitlement {
  customer_id: string;
  feature_id: string;
  feature_type: string;
  is_granted: boolean;
  access_denied_reason: AccessDeniedReason | null;
  usage_limit: number | null;
  limit_type: string | null;
  has_unlimited_usage: boolean;
  current_usage: number | null;
  requested_usage: number;
  remaining: number | null;
  included_usage: number | null;
  reset_period: string | null;
  usage_period_start: string | null;
  usage_period_end: string | null;
  subscription_id: string | null;
}

export interface CheckInput {
  customer_id: string;
  feature_id: string;
  /** > 0, default 1. */
  required_balance?: number;
  /** Atomically consume `required_balance` when allowed (metered features). Default false. */
  send_event?: boolean;
  properties?: Record<string, PropertyValue>;
}

export interface CheckResult {
  allowed: boolean;
  customer_id: string;
  feature_id: string;
  required_balance: number;
  balance: number | null;
  usage: number | null;
  included_usage: number | null;
  unlimited: boolean;
  event_recorded: boolean;
  events_recorded: number;
  entitlement: Entitlement;
}

export type CustomerAccessParams =
  | { customer_id: string; feature_name: string; event_name?: never; event_limit_type?: never }
  | { customer_id: string; event_name: string; event_limit_type?: 'free' | 'total'; feature_name?: never };

export interface CustomerAccessResult {
  customer_id: string;
  access: boolean;
  access_denied_reason: string | null;
  feature_name?: string;
  entitlement?: Entitlement;
  event_name?: string;
  event_limit_type?: 'free' | 'total';
  usage_per_component?: {
    metric_id: string; plan_id: string; usage: number; free_units: number | null; total_limit: number | null; access: boolean;
  }[];
}

export interface ReportUsageInput {
  customer_id: string;
  feature_id: string;
  value: number;
  /** Default `delta`. */
  update_behavior?: 'delta' | 'set';
  properties?: Record<string, PropertyValue>;
}

export interface ReportUsageResult {
  customer_id: string;
  feature_id: string;
  update_behavior: 'delta' | 'set';
  previous_usage: number;
  current_usage: number;
  events_recorded: number;
  usage_limit: number | null;
  over_limit: boolean;
}

export type UsageQueryParams = {
  customer_id: string;
  from: string | Date;
  to: string | Date;
  window?: 'hour' | 'day';
  group_by?: boolean;
} & PageParams & ({ feature_id: string; metric_id?: never } | { metric_id: string; feature_id?: never });

export interface UsageQueryResult extends Page<{ window_start: string | null; groups: Record<string, string>; value: number }> {
  customer_id: string;
  metric_id: string;
  feature_id: string | null;
  aggregation: string;
  window: 'hour' | 'day' | null;
  from: string;
  to: string;
  total: number;
}
