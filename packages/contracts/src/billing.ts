// Billing API contracts (services/billing): every request and response body, query string and path
// parameter object, defined once. The services validate and serialize with these JSON schemas
// (Fastify + @fastify/type-provider-typebox), @fastify/swagger publishes them at /docs/json, and the
// SDK re-exports their Static<> types. Wire format: snake_case JSON.
import { Type, type Static } from '@sinclair/typebox';
import { FreeObject, Nullable, StringEnum } from './schema.ts';
import { Page, PaginationQuery } from './common.ts';
import {
  AGGREGATIONS,
  AMOUNT_PATTERN,
  ID_MAX_LENGTH,
  ID_PATTERN,
  MAX_GROUP_BY,
  MAX_PLAN_VERSION,
  MAX_QUANTITY,
  QUANTITY_PATTERN,
  SEGMENT_SECRET_MAX_LENGTH,
  SEGMENT_SECRET_MIN_LENGTH,
} from './limits.ts';

// ---- building blocks -------------------------------------------------------------------------------

/** A client-chosen id on create: 1..200 of A-Z a-z 0-9 _ . : @ -. */
export const Id = Type.String({ minLength: 1, maxLength: ID_MAX_LENGTH, pattern: ID_PATTERN });
/** An exact decimal amount in major units as a string ("49.00", "0.0004"): < 10^12, ≤ 12 decimals. */
export const Amount = Type.String({
  pattern: AMOUNT_PATTERN,
  maxLength: 25,
  description: 'exact decimal in major units, < 10^12, at most 12 decimals',
});
export const Currency = Type.String({ pattern: '^[A-Za-z]{3}$' });
/**
 * An instant: RFC 3339 date-time, or a date `YYYY-MM-DD` read as 00:00:00Z of that day (the billing
 * service normalizes it before validation: services/billing/src/http/friendly.ts).
 */
export const DateTime = Type.String({
  format: 'date-time',
  description: 'RFC 3339 date-time, or a date YYYY-MM-DD (= 00:00:00Z that day)',
});
/** Event property values / check and usage properties: flat string | number | boolean. */
export const PropertyValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);
export type PropertyValue = Static<typeof PropertyValue>;
export const Properties = Type.Unsafe<Record<string, PropertyValue>>({
  type: 'object',
  additionalProperties: { type: ['string', 'number', 'boolean'], maxLength: 1024 },
  propertyNames: { minLength: 1, maxLength: 128 },
  maxProperties: 50,
});

export const RESET_PERIODS = ['billing_period', 'day', 'week', 'month', 'year', 'never'] as const;
export const BILLING_INTERVALS = ['week', 'month', 'quarter', 'year'] as const;
export const ResetPeriod = StringEnum(RESET_PERIODS);
export type ResetPeriod = Static<typeof ResetPeriod>;

// ---- customers -------------------------------------------------------------------------------------

export const Customer = Type.Object({
  customer_id: Type.String(),
  name: Nullable(Type.String()),
  email: Nullable(Type.String()),
  currency: Type.String(),
  balance: Type.String({ description: 'prepaid credit, decimal string in major units' }),
  metadata: FreeObject(),
  created_at: Type.String(),
  updated_at: Type.String(),
  archived_at: Nullable(Type.String()),
});
export type Customer = Static<typeof Customer>;

const CustomerEditable = {
  name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  email: Type.Optional(Nullable(Type.String({ maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$' }))),
  balance: Type.Optional(
    Type.String({ ...Amount, description: "prepaid credit, decimal string in major units (< 10^12, the currency's decimals at most)" }),
  ),
  metadata: Type.Optional(FreeObject()),
};
export const CreateCustomerBody = Type.Object(
  { customer_id: Id, ...CustomerEditable, currency: Type.Optional(Currency) },
  { additionalProperties: false },
);
export type CreateCustomerInput = Static<typeof CreateCustomerBody>;
export const UpdateCustomerBody = Type.Object(CustomerEditable, { additionalProperties: false, minProperties: 1 });
export type UpdateCustomerInput = Static<typeof UpdateCustomerBody>;
export const ListCustomersQuery = Type.Object(
  { ...PaginationQuery, include_archived: Type.Optional(Type.Boolean({ default: false })), email: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
export const CustomerParams = Type.Object({ customer_id: Type.String() });
/** A list's query string with nothing but limit/offset. */
export const PageQuery = Type.Object(PaginationQuery, { additionalProperties: false });

// ---- features --------------------------------------------------------------------------------------

export const FEATURE_TYPES = ['boolean', 'metered'] as const;
export const Feature = Type.Object({
  feature_id: Type.String(),
  name: Nullable(Type.String()),
  type: StringEnum(FEATURE_TYPES),
  metric_id: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
  archived_at: Nullable(Type.String()),
});
export type Feature = Static<typeof Feature>;
export const CreateFeatureBody = Type.Object(
  {
    feature_id: Id,
    name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
    type: StringEnum(FEATURE_TYPES),
    metric_id: Type.Optional(Nullable(Type.String({ minLength: 1 }))),
  },
  { additionalProperties: false },
);
export type CreateFeatureInput = Static<typeof CreateFeatureBody>;
export const RenameFeatureBody = Type.Object({ name: Nullable(Type.String({ maxLength: 500 })) }, { additionalProperties: false });
export const ListArchivableQuery = Type.Object(
  { ...PaginationQuery, include_archived: Type.Optional(Type.Boolean({ default: false })) },
  { additionalProperties: false },
);
export const FeatureParams = Type.Object({ feature_id: Type.String() });

// ---- billable metrics ------------------------------------------------------------------------------

const PropertyName = Type.String({ minLength: 1, maxLength: 200 });
const MetricFilterBranches = [
  Type.Object(
    { property: PropertyName, operator: Type.Literal('equals'), value: Type.String({ maxLength: 1024 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      property: PropertyName,
      operator: StringEnum(['in', 'not_in'] as const),
      values: Type.Array(Type.String({ maxLength: 1024 }), { minItems: 1, maxItems: 1000 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      property: PropertyName,
      operator: StringEnum(['eq', 'neq', 'gt', 'gte', 'lt', 'lte'] as const),
      value: Type.Number({ minimum: -MAX_QUANTITY, maximum: MAX_QUANTITY }),
    },
    { additionalProperties: false },
  ),
] as const;
/** One metric filter; oneOf as before (exactly one operator family matches). */
export const MetricFilter = Type.Unsafe<Static<(typeof MetricFilterBranches)[number]>>({ oneOf: [...MetricFilterBranches] });
export type MetricFilter = Static<typeof MetricFilter>;
const MetricFields = {
  name: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  event_name: Type.String({ minLength: 1, maxLength: 200 }),
  aggregation: StringEnum(AGGREGATIONS),
  property: Type.Optional(Type.Union([PropertyName, Type.Null()])),
  filters: Type.Optional(Type.Array(MetricFilter, { maxItems: 20 })),
  group_by: Type.Optional(Type.Array(PropertyName, { maxItems: MAX_GROUP_BY })),
};
export const CreateMetricBody = Type.Object({ metric_id: Id, ...MetricFields }, { additionalProperties: false });
export type CreateMetricInput = Static<typeof CreateMetricBody>;
export const UpdateMetricBody = Type.Partial(Type.Object(MetricFields), { additionalProperties: false, minProperties: 1 });
export type UpdateMetricInput = Static<typeof UpdateMetricBody>;
/** A metric's definition as answered: shared by the metric and each of its versions. */
const MetricDefinitionAnswer = {
  metric_id: Type.String(),
  version: Type.Integer(),
  name: Nullable(Type.String()),
  event_name: Type.String(),
  aggregation: StringEnum(AGGREGATIONS),
  property: Nullable(Type.String()),
  filters: Type.Array(FreeObject<MetricFilter>()),
  group_by: Type.Array(Type.String()),
};
export const Metric = Type.Object({
  ...MetricDefinitionAnswer,
  created_at: Type.String(),
  updated_at: Type.String(),
  archived_at: Nullable(Type.String()),
});
export type Metric = Static<typeof Metric>;
export const MetricParams = Type.Object({ metric_id: Type.String() });
/** One version of a metric's definition (GET /v1/metrics/:id/versions; invoice lines name theirs in metric_version). */
export const MetricVersion = Type.Object({
  ...MetricDefinitionAnswer,
  valid_from: Type.String({ description: 'when this version became the current definition' }),
  superseded_at: Nullable(Type.String({ description: 'when the next version replaced it; null for the current version' })),
  created_at: Type.String(),
});
export type MetricVersion = Static<typeof MetricVersion>;
/** GET /v1/metrics/:id: the metric and its version history (oldest first, at most 100; the versions list pages further). */
export const MetricWithVersions = Type.Object({ ...Metric.properties, versions: Type.Array(MetricVersion) });

// ---- plans and pricing -----------------------------------------------------------------------------

/** Free units / quantities: a number 0..10^15 or an exact decimal string. */
const Units = Type.Union([Type.Number({ minimum: 0, maximum: MAX_QUANTITY }), Type.String({ pattern: QUANTITY_PATTERN, maxLength: 28 })]);
export const Tier = Type.Object(
  {
    up_to: Nullable(Type.Integer({ minimum: 1, maximum: MAX_QUANTITY }), {
      description: 'a whole number of units 1..10^15; null = unbounded (last tier)',
    }),
    unit_price: Amount,
    flat_fee: Type.Optional(Amount),
  },
  { additionalProperties: false },
);
export type Tier = Static<typeof Tier>;
export const PRICING_MODELS = ['per_unit', 'graduated', 'volume', 'package'] as const;
export type Pricing =
  | { model: 'per_unit'; unit_price: string }
  | { model: 'graduated' | 'volume'; tiers: Tier[] }
  | { model: 'package'; package_size: number; package_price: string };
/**
 * A pricing model. if/then on `model` instead of oneOf, so a bad tier is reported at its own path
 * (oneOf reports the first branch's complaint); this is why /docs/json is OpenAPI 3.1.
 */
export const Pricing = Type.Unsafe<Pricing>({
  type: 'object',
  required: ['model'],
  properties: { model: StringEnum(PRICING_MODELS) },
  allOf: [
    {
      if: { properties: { model: { const: 'per_unit' } } },
      then: {
        additionalProperties: false,
        required: ['model', 'unit_price'],
        properties: { model: { const: 'per_unit' }, unit_price: Amount },
      },
    },
    {
      if: { properties: { model: { enum: ['graduated', 'volume'] } } },
      then: {
        additionalProperties: false,
        required: ['model', 'tiers'],
        properties: { model: { enum: ['graduated', 'volume'] }, tiers: Type.Array(Tier, { minItems: 1, maxItems: 50 }) },
      },
    },
    {
      if: { properties: { model: { const: 'package' } } },
      then: {
        additionalProperties: false,
        required: ['model', 'package_size', 'package_price'],
        properties: {
          model: { const: 'package' },
          package_size: Type.Integer({ minimum: 1, maximum: MAX_QUANTITY }),
          package_price: Amount,
        },
      },
    },
  ],
});
export const GroupPrice = Type.Object(
  {
    group: Type.Unsafe<Record<string, string>>({
      type: 'object',
      additionalProperties: { type: 'string', maxLength: 1024 },
      propertyNames: { minLength: 1, maxLength: 200 },
      minProperties: 1,
      maxProperties: 2,
    }),
    pricing: Pricing,
  },
  { additionalProperties: false },
);
export const PlanComponent = Type.Object(
  {
    metric_id: Type.String({ minLength: 1 }),
    free_units: Type.Optional(Units),
    pricing: Pricing,
    group_prices: Type.Optional(Type.Array(GroupPrice, { maxItems: 100 })),
  },
  { additionalProperties: false },
);
export type PlanComponent = Static<typeof PlanComponent>;
/** A tier as a plan holds it: plans created before `up_to` had to be an integer may hold a decimal string. */
export type StoredTier = Omit<Tier, 'up_to'> & { up_to: number | string | null };
export type StoredPricing = Exclude<Pricing, { tiers: Tier[] }> | { model: 'graduated' | 'volume'; tiers: StoredTier[] };
/** A plan component in responses (what was validated as PlanComponent when the version was created). */
export type StoredPlanComponent = Omit<PlanComponent, 'pricing' | 'group_prices'> & {
  pricing: StoredPricing;
  group_prices?: { group: Record<string, string>; pricing: StoredPricing }[];
};
export const PlanEntitlement = Type.Object(
  {
    feature_id: Type.String({ minLength: 1 }),
    limit: Type.Optional(
      Type.Union([Type.Number({ minimum: 0, maximum: MAX_QUANTITY }), Type.Null()], {
        description: 'metered only; 0..10^15, null = unlimited',
      }),
    ),
    limit_type: Type.Optional(StringEnum(['hard', 'soft'] as const)),
    reset_period: Type.Optional(ResetPeriod),
    per_entity: Type.Optional(
      Type.Boolean({ description: 'the limit applies to each entity of the customer separately (e.g. 1000 messages per seat)' }),
    ),
  },
  { additionalProperties: false },
);
export type PlanEntitlement = Static<typeof PlanEntitlement>;
const PlanFields = {
  name: Type.String({ minLength: 1, maxLength: 500 }),
  interval: StringEnum(BILLING_INTERVALS),
  currency: Type.Optional(Currency),
  flat_fee: Type.Optional(Amount),
  flat_fee_timing: Type.Optional(StringEnum(['in_advance', 'in_arrears'] as const)),
  trial_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 3650 })),
  components: Type.Optional(Type.Array(PlanComponent, { maxItems: 50 })),
  entitlements: Type.Optional(Type.Array(PlanEntitlement, { maxItems: 200 })),
};
/** base: a plan a customer subscribes to; add_on: attached to a base subscription with a quantity (POST /v1/subscriptions/{id}/add_ons). */
export const PLAN_TYPES = ['base', 'add_on'] as const;
export const CreatePlanBody = Type.Object(
  { plan_id: Id, ...PlanFields, plan_type: Type.Optional(StringEnum(PLAN_TYPES, { default: 'base' })) },
  { additionalProperties: false },
);
export type CreatePlanInput = Static<typeof CreatePlanBody>;
export const EditPlanBody = Type.Partial(Type.Object(PlanFields), { additionalProperties: false, minProperties: 1 });
export type EditPlanInput = Static<typeof EditPlanBody>;
export const PlanVersionSummary = Type.Object({ version: Type.Integer(), created_at: Type.String(), active_subscriptions: Type.Integer() });
export const Plan = Type.Object({
  plan_id: Type.String(),
  version: Type.Integer(),
  current_version: Type.Integer(),
  name: Type.String(),
  interval: Type.String(),
  currency: Type.String(),
  flat_fee: Type.String(),
  flat_fee_timing: Type.String(),
  trial_days: Type.Integer(),
  components: Type.Array(FreeObject<StoredPlanComponent>()),
  entitlements: Type.Array(FreeObject<PlanEntitlement>()),
  created_at: Type.String(),
  version_created_at: Type.String(),
  archived_at: Nullable(Type.String()),
  plan_type: Type.Optional(StringEnum(PLAN_TYPES)),
  versions: Type.Optional(Type.Array(PlanVersionSummary, { description: 'GET /v1/plans/{plan_id} only' })),
});
export type Plan = Static<typeof Plan>;
export const PlanParams = Type.Object({ plan_id: Type.String() });
export const PlanVersionParams = Type.Object({ plan_id: Type.String(), version: Type.Integer({ minimum: 1, maximum: MAX_PLAN_VERSION }) });

// ---- subscriptions ---------------------------------------------------------------------------------

export const SUBSCRIPTION_STATUSES = ['not_started', 'active', 'ended'] as const;
export const Subscription = Type.Object(
  {
    subscription_id: Type.String(),
    customer_id: Type.String(),
    plan_id: Type.String(),
    plan_version: Type.Integer(),
    status: StringEnum(SUBSCRIPTION_STATUSES),
    start_date: Type.String(),
    end_date: Nullable(Type.String()),
    auto_renew: Type.Boolean(),
    current_period_start: Type.String(),
    current_period_end: Type.String(),
    plan_started_at: Type.String(),
    trial_end: Nullable(Type.String()),
    ended_at: Nullable(Type.String()),
    end_reason: Nullable(Type.String()),
    replaced_by: Nullable(Type.String()),
    created_at: Type.String(),
  },
  { additionalProperties: true },
);
export type Subscription = Static<typeof Subscription>;
export const SubscriptionDetail = Type.Object(
  {
    ...Subscription.properties,
    plan: FreeObject(),
    current_period: FreeObject(),
    usage: Type.Array(FreeObject()),
    usage_amount_so_far: Type.String(),
  },
  { additionalProperties: true },
);
export type SubscriptionDetail = Static<typeof SubscriptionDetail>;
export const CreateSubscriptionBody = Type.Object(
  {
    customer_id: Type.String(),
    plan_id: Type.String(),
    start_date: Type.Optional(DateTime),
    end_date: Type.Optional(Nullable(DateTime)),
    subscription_id: Type.Optional(Id),
    auto_renew: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);
export type CreateSubscriptionInput = Static<typeof CreateSubscriptionBody>;
export const CANCEL_TYPES = ['turn_off_auto_renew', 'end_current_subscription_and_bill', 'end_current_subscription_and_dont_bill'] as const;
export type CancelType = (typeof CANCEL_TYPES)[number];
/**
 * The cancel options, the same on POST /v1/subscriptions/{id}/cancel and PATCH /v1/subscriptions/{id}
 * (Lotus Python's turn_off_auto_renew / replace_immediately_type, Lotus Node's bill_now / revoke_access,
 * or `type`); at most one way per request. On …/cancel an empty body is turn_off_auto_renew.
 */
const CancelFields = {
  type: Type.Optional(StringEnum(CANCEL_TYPES, { description: 'how to cancel (…/cancel default: turn_off_auto_renew)' })),
  turn_off_auto_renew: Type.Optional(Type.Boolean({ description: 'true: ends at period end, no renewal' })),
  revoke_access: Type.Optional(
    Type.Boolean({
      description: 'Lotus: true = end now (access ends now; bill_now picks how); false = run out at period end (turn_off_auto_renew)',
    }),
  ),
  bill_now: Type.Optional(
    Type.Boolean({
      description:
        'Lotus: ending now, bill the usage so far (true, the default with revoke_access: true = end_current_subscription_and_bill) or not (false = end_current_subscription_and_dont_bill); true needs revoke_access true or absent',
    }),
  ),
  prorate: Type.Optional(
    Type.Boolean({
      description: 'ending now: credit the unused part of an in-advance flat fee already billed (default true; false: no credit)',
    }),
  ),
};
export const REPLACE_TYPES = [
  'end_current_subscription_and_bill',
  'end_current_subscription_and_dont_bill',
  'change_subscription_plan',
] as const;
export const UpdateSubscriptionBody = Type.Object(
  {
    ...CancelFields,
    auto_renew: Type.Optional(Type.Boolean()),
    end_date: Type.Optional(Nullable(DateTime)),
    replace_immediately_type: Type.Optional(StringEnum(REPLACE_TYPES)),
    plan_id: Type.Optional(Type.String()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateSubscriptionInput = Static<typeof UpdateSubscriptionBody>;
/** POST /v1/subscriptions/{id}/cancel: the cancel options of PATCH (CancelFields); `{}` or no body = turn_off_auto_renew. */
export const CancelSubscriptionBody = Type.Object(
  {
    ...CancelFields,
    replace_immediately_type: Type.Optional(
      StringEnum(['end_current_subscription_and_bill', 'end_current_subscription_and_dont_bill'] as const),
    ),
  },
  { additionalProperties: false },
);
export type CancelSubscriptionInput = Static<typeof CancelSubscriptionBody>;
export const ListSubscriptionsQuery = Type.Object(
  {
    ...PaginationQuery,
    customer_id: Type.Optional(Type.String()),
    status: Type.Optional(StringEnum(SUBSCRIPTION_STATUSES)),
    plan_id: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export const SubscriptionParams = Type.Object({ subscription_id: Type.String() });

// ---- invoices --------------------------------------------------------------------------------------

/** `csv`: the answer as an RFC 4180 CSV file (also Accept: text/csv); `json` (default) forces JSON. */
export const ExportFormat = StringEnum(['json', 'csv'] as const, {
  description: 'csv: an RFC 4180 CSV download of the whole answer (also chosen by Accept: text/csv); json (default)',
});
export const InvoiceStatus = Type.Union(
  [Type.Literal('draft'), Type.Literal('finalized'), Type.Literal('paid'), Type.Literal('void'), Type.Literal('uncollectible')],
  {
    description: 'draft (usage still counted during the grace period) -> finalized (numbered, owed, frozen) -> paid | void | uncollectible',
  },
);
/**
 * One invoice line (free-form: kind, description, quantity, amount, amount_minor, amount_due, period_start/end, ...).
 * Usage and usage_adjustment lines carry metric_id and metric_version: the metric version whose rollups priced
 * the line (null on lines written before migration 0011); GET /v1/metrics/:id/versions has its definition.
 */
export const InvoiceLine = Type.Unsafe<Record<string, unknown> & { metric_id?: string; metric_version?: number | null }>({
  type: 'object',
  additionalProperties: true,
  properties: {
    metric_version: {
      type: ['integer', 'null'],
      description: 'usage lines: the metric version whose rollups priced this line (null: written before metric versions were recorded)',
    },
  },
});
export const Invoice = Type.Object({
  invoice_id: Type.String(),
  /** per organization, gapless, assigned at finalization (INV-000001, ...) */
  number: Nullable(Type.String()),
  customer_id: Type.String(),
  subscription_id: Nullable(Type.String()),
  status: InvoiceStatus,
  currency: Type.String(),
  period_start: Type.String(),
  period_end: Type.String(),
  reason: Type.String(),
  total: Type.String(),
  line_items: Type.Array(InvoiceLine),
  grace_until: Nullable(Type.String({ description: 'drafts: when the grace period for late usage ends' })),
  finalized_at: Nullable(Type.String()),
  paid_at: Nullable(Type.String()),
  voided_at: Nullable(Type.String()),
  created_at: Type.String(),
});
export type Invoice = Static<typeof Invoice>;
/** An estimate: the lines an invoice would have, computed now, stored nowhere. */
export const InvoicePreview = Type.Object(
  {
    subscription_id: Nullable(Type.String()),
    customer_id: Type.String(),
    reason: Type.String(),
    currency: Type.String(),
    period_start: Type.String(),
    period_end: Type.String(),
    line_items: Type.Array(FreeObject()),
    total: Type.String(),
  },
  { additionalProperties: true },
);
export type InvoicePreview = Static<typeof InvoicePreview>;
export const PreviewSubscriptionBody = Type.Object(
  { customer_id: Type.String(), plan_id: Type.String(), start_date: Type.Optional(DateTime) },
  { additionalProperties: false },
);
export const PreviewPlanChangeBody = Type.Object({ plan_id: Type.String() }, { additionalProperties: false });
export const InvoicingSettings = Type.Object(
  {
    grace_period_seconds: Type.Integer({
      minimum: 0,
      maximum: 2_592_000,
      description: 'how long after a period ends its draft invoice still takes late usage before it is finalized (default 3600)',
    }),
  },
  { additionalProperties: false },
);
export const BillingRunBody = Type.Object(
  { as_of: Type.Optional(Type.String({ format: 'date-time', description: 'the instant to close periods at (default now)' })) },
  { additionalProperties: false },
);
export const ListInvoicesQuery = Type.Object(
  {
    ...PaginationQuery,
    customer_id: Type.Optional(Type.String()),
    subscription_id: Type.Optional(Type.String()),
    status: Type.Optional(InvoiceStatus),
    created_from: Type.Optional(Type.String({ format: 'date-time', description: 'created_at >= this' })),
    created_to: Type.Optional(Type.String({ format: 'date-time', description: 'created_at < this' })),
    period_from: Type.Optional(Type.String({ format: 'date-time', description: 'period_start >= this' })),
    period_to: Type.Optional(Type.String({ format: 'date-time', description: 'period_start < this' })),
    format: Type.Optional(ExportFormat),
  },
  { additionalProperties: false },
);
export const InvoiceParams = Type.Object({ invoice_id: Type.String() });

export const CustomerDetail = Type.Object({
  ...Customer.properties,
  subscriptions: Type.Array(FreeObject<Subscription>()),
  invoices: Type.Array(FreeObject<Invoice>()),
  total_amount_due: Type.String(),
  net_amount_due: Type.String(),
  amount_due_by_currency: Type.Record(Type.String(), Type.String()),
});
export type CustomerDetail = Static<typeof CustomerDetail>;

// ---- entitlements, access checks, usage ------------------------------------------------------------

export const ACCESS_DENIED_REASONS = [
  'no_active_subscription',
  'feature_not_in_plan',
  'usage_limit_exceeded',
  'requested_usage_exceeds_limit',
] as const;
export type AccessDeniedReason = (typeof ACCESS_DENIED_REASONS)[number];
/** Where an entitlement's grant comes from (services/billing/README.md, "Promotional entitlements", "Add-ons"). */
export const GRANT_SOURCES = ['plan', 'add_on', 'promotional'] as const;
/** One contribution to an entitlement: a plan, an add-on (limit x quantity) or a promotional grant. */
export const EntitlementGrant = Type.Object({
  source: StringEnum(GRANT_SOURCES),
  plan_id: Nullable(Type.String()),
  subscription_id: Nullable(Type.String()),
  quantity: Nullable(Type.Integer()),
  usage_limit: Nullable(Type.Number({ description: 'this contribution (an add-on: its limit x quantity); null = unlimited or boolean' })),
  expires_at: Nullable(Type.String()),
});
export type EntitlementGrant = Static<typeof EntitlementGrant>;
export const Entitlement = Type.Object({
  customer_id: Type.String(),
  feature_id: Type.String(),
  feature_type: StringEnum(FEATURE_TYPES),
  is_granted: Type.Boolean(),
  access_denied_reason: Nullable(StringEnum(ACCESS_DENIED_REASONS)),
  usage_limit: Nullable(Type.Number()),
  limit_type: Nullable(StringEnum(['hard', 'soft'] as const)),
  has_unlimited_usage: Type.Boolean(),
  current_usage: Nullable(Type.Number()),
  requested_usage: Type.Number(),
  remaining: Nullable(Type.Number()),
  included_usage: Nullable(
    Type.Number({ description: "the free units of the plan's priced component for the feature's metric (not the limit: usage_limit)" }),
  ),
  reset_period: Nullable(ResetPeriod),
  usage_period_start: Nullable(Type.String()),
  usage_period_end: Nullable(Type.String()),
  subscription_id: Nullable(Type.String()),
  source: Type.Optional(
    Nullable(StringEnum(GRANT_SOURCES, { description: 'the grant in force: plan (with its add-ons), add_on, promotional' })),
  ),
  expires_at: Type.Optional(Nullable(Type.String({ description: 'a promotional grant in force: when it expires (null = lifetime)' }))),
  grants: Type.Optional(Type.Array(EntitlementGrant, { description: 'every grant of the feature in force now' })),
});
export type Entitlement = Static<typeof Entitlement>;
export const EntitlementParams = Type.Object({ customer_id: Type.String(), feature_id: Type.String() });
export const EntitlementQuery = Type.Object(
  { requested_usage: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_QUANTITY, default: 1 })) },
  { additionalProperties: false },
);

/** Longest `idempotency_key` (Stigg/Autumn-style; the same characters as other ids). */
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;
/**
 * A caller-chosen key that makes a consuming check or a usage report safe to retry: a retry with the same
 * key (same organization, same body) returns the first answer and consumes nothing more.
 */
export const IdempotencyKey = Type.String({
  minLength: 1,
  maxLength: IDEMPOTENCY_KEY_MAX_LENGTH,
  pattern: ID_PATTERN,
  description:
    'retry-safety key (1..255 of A-Z a-z 0-9 _ . : @ -), per organization, kept 24 h: the same key with the same body returns the first answer (header Idempotent-Replayed: true) and consumes nothing more; with a different body: 409 idempotency_key_reused. Also accepted as the Idempotency-Key header (both given must be equal).',
});

export const CheckBody = Type.Object(
  {
    customer_id: Type.String(),
    feature_id: Type.String({ description: "the feature's id, or its name when exactly one feature has that name (an id wins)" }),
    entity_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: ID_MAX_LENGTH,
        pattern: ID_PATTERN,
        description:
          "the customer's entity (seat, workspace; POST /v1/customers/:id/entities): usage recorded with it, per_entity limits are its own",
      }),
    ),
    required_balance: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_QUANTITY, default: 1 })),
    send_event: Type.Optional(Type.Boolean({ default: false })),
    properties: Type.Optional(Properties),
    /** Only consuming checks (`send_event: true`) use it; a non-consuming check ignores it. */
    idempotency_key: Type.Optional(IdempotencyKey),
  },
  { additionalProperties: false },
);
export type CheckInput = Static<typeof CheckBody>;
export const CheckResult = Type.Object({
  allowed: Type.Boolean(),
  customer_id: Type.String(),
  entity_id: Type.Optional(Type.String()),
  feature_id: Type.String(),
  required_balance: Type.Number(),
  balance: Nullable(Type.Number()),
  usage: Nullable(Type.Number()),
  usage_limit: Nullable(
    Type.Number({
      description:
        'the limit of the entitlement (null = unlimited); was `included_usage` before 2026-12 (entitlement.included_usage is the free units)',
    }),
  ),
  unlimited: Type.Boolean(),
  event_recorded: Type.Boolean(),
  events_recorded: Type.Integer(),
  entitlement: Entitlement,
});
export type CheckResult = Static<typeof CheckResult>;

export const CustomerAccessQuery = Type.Object(
  {
    customer_id: Type.String(),
    feature_name: Type.Optional(
      Type.String({ description: "the feature's name or its id (an id wins; a name shared by several features: 400 naming them)" }),
    ),
    event_name: Type.Optional(Type.String()),
    event_limit_type: Type.Optional(StringEnum(['free', 'total'] as const, { default: 'total' })),
  },
  { additionalProperties: false },
);
export type CustomerAccessParams =
  | { customer_id: string; feature_name: string; event_name?: never; event_limit_type?: never }
  | { customer_id: string; event_name: string; event_limit_type?: 'free' | 'total'; feature_name?: never };
export const ComponentAccess = Type.Object({
  metric_id: Type.String(),
  plan_id: Type.String(),
  usage: Type.Number(),
  free_units: Nullable(Type.Number()),
  total_limit: Nullable(Type.Number()),
  access: Type.Boolean(),
});
export const CustomerAccessResult = Type.Object(
  {
    customer_id: Type.String(),
    access: Type.Boolean(),
    access_denied_reason: Nullable(Type.String()),
    feature_name: Type.Optional(Type.String()),
    entitlement: Type.Optional(Entitlement),
    event_name: Type.Optional(Type.String()),
    event_limit_type: Type.Optional(StringEnum(['free', 'total'] as const)),
    usage_per_component: Type.Optional(Type.Array(ComponentAccess)),
  },
  { additionalProperties: true },
);
export type CustomerAccessResult = Static<typeof CustomerAccessResult>;

export const ReportUsageBody = Type.Object(
  {
    customer_id: Type.String(),
    feature_id: Type.String(),
    entity_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: ID_MAX_LENGTH,
        pattern: ID_PATTERN,
        description:
          "the customer's entity (seat, workspace; POST /v1/customers/:id/entities): usage recorded with it, per_entity limits are its own",
      }),
    ),
    value: Type.Number({ minimum: -MAX_QUANTITY, maximum: MAX_QUANTITY }),
    update_behavior: Type.Optional(StringEnum(['delta', 'set'] as const, { default: 'delta' })),
    properties: Type.Optional(Properties),
    idempotency_key: Type.Optional(IdempotencyKey),
  },
  { additionalProperties: false },
);
export type ReportUsageInput = Static<typeof ReportUsageBody>;
export const ReportUsageResult = Type.Object(
  {
    customer_id: Type.String(),
    feature_id: Type.String(),
    update_behavior: StringEnum(['delta', 'set'] as const),
    previous_usage: Type.Number(),
    current_usage: Type.Number(),
    events_recorded: Type.Integer(),
    usage_limit: Nullable(Type.Number()),
    over_limit: Type.Boolean(),
  },
  { additionalProperties: true },
);
export type ReportUsageResult = Static<typeof ReportUsageResult>;

export const UsageQuery = Type.Object(
  {
    customer_id: Type.String(),
    entity_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: ID_MAX_LENGTH,
        pattern: ID_PATTERN,
        description:
          "the customer's entity (seat, workspace; POST /v1/customers/:id/entities): usage recorded with it, per_entity limits are its own",
      }),
    ),
    feature_id: Type.Optional(Type.String()),
    metric_id: Type.Optional(Type.String()),
    from: DateTime,
    to: DateTime,
    window: Type.Optional(StringEnum(['hour', 'day', 'month'] as const)),
    time_zone: Type.Optional(
      Type.String({ maxLength: 64, description: 'IANA zone the hour/day/month windows align to (default UTC), e.g. America/New_York' }),
    ),
    group_by: Type.Optional(Type.Boolean({ default: false })),
    ...PaginationQuery,
    format: Type.Optional(ExportFormat),
  },
  { additionalProperties: false },
);
export const UsagePoint = Type.Object({
  window_start: Nullable(Type.String()),
  groups: Type.Record(Type.String(), Type.String()),
  value: Type.Number(),
});
export type UsagePoint = Static<typeof UsagePoint>;
export const UsageSeries = Type.Object(
  {
    ...Page(UsagePoint).properties,
    customer_id: Type.String(),
    metric_id: Type.String(),
    feature_id: Nullable(Type.String()),
    aggregation: Type.String(),
    window: Nullable(StringEnum(['hour', 'day', 'month'] as const)),
    time_zone: Type.String(),
    from: Type.String(),
    to: Type.String(),
    total: Type.Number(),
  },
  { additionalProperties: true },
);
export type UsageSeries = Static<typeof UsageSeries>;

// ---- organizations, API keys, settings -------------------------------------------------------------

export const Organization = Type.Object({ organization_id: Type.String(), name: Type.String(), created_at: Type.String() });
export type Organization = Static<typeof Organization>;
export const ApiKey = Type.Object({
  key_id: Type.String(),
  name: Type.String(),
  prefix: Type.String(),
  created_at: Type.String(),
  revoked_at: Nullable(Type.String()),
});
export type ApiKey = Static<typeof ApiKey>;
export const NewApiKey = Type.Object({
  key_id: Type.String(),
  name: Type.String(),
  prefix: Type.String(),
  created_at: Type.String(),
  api_key: Type.String({ description: 'shown once' }),
});
export type NewApiKey = Static<typeof NewApiKey>;
export const CreateApiKeyBody = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: false },
);
export const CreateOrganizationBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
export const CreatedOrganization = Type.Object({
  organization_id: Type.String(),
  name: Type.String(),
  api_key: Type.String({ description: 'shown once' }),
  key_id: Type.String(),
  prefix: Type.String(),
});
export type CreatedOrganization = Static<typeof CreatedOrganization>;
export const ArchivedOrganization = Type.Object({ organization_id: Type.String(), archived_at: Type.String() });
export const OrganizationParams = Type.Object({ organization_id: Type.String() });
export const ApiKeyParams = Type.Object({ key_id: Type.String() });

/** PUT /v1/settings/segment: the secret the gateway verifies Segment webhooks' X-Signature with; null turns verification off. */
export const SegmentSettingsBody = Type.Object(
  {
    shared_secret: Nullable(Type.String({ minLength: SEGMENT_SECRET_MIN_LENGTH, maxLength: SEGMENT_SECRET_MAX_LENGTH }), {
      description: 'Segment Webhooks destination shared secret (X-Signature = hex HMAC-SHA1 of the body); null = no signature required',
    }),
  },
  { additionalProperties: false },
);
export type SegmentSettingsInput = Static<typeof SegmentSettingsBody>;
export const SegmentSettings = Type.Object({
  organization_id: Type.String(),
  shared_secret_set: Type.Boolean({ description: 'whether webhooks must carry a valid X-Signature (the secret itself is never returned)' }),
});
export type SegmentSettings = Static<typeof SegmentSettings>;

// ---- prepaid credits and coupons (#17: applied when an invoice is finalized) ------------------------

export const CreateCreditGrantBody = Type.Object(
  {
    amount: Amount,
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: "default: the customer's currency" })),
    effective_at: Type.Optional(DateTime),
    expires_at: Type.Optional(Nullable(DateTime)),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 0, description: 'lower is used first' })),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export const CreditGrant = Type.Object({
  grant_id: Type.String(),
  customer_id: Type.String(),
  currency: Type.String(),
  amount: Type.String(),
  remaining: Type.String(),
  priority: Type.Integer(),
  effective_at: Type.String(),
  expires_at: Nullable(Type.String()),
  description: Nullable(Type.String()),
  status: StringEnum(['active', 'pending', 'expired', 'depleted', 'void'] as const),
  created_at: Type.String(),
});
export type CreditGrant = Static<typeof CreditGrant>;
export const CreditBalance = Type.Object({
  customer_id: Type.String(),
  /** per currency: what active, effective, unexpired grants still hold */
  balance: Type.Record(Type.String(), Type.String()),
  grants: Type.Array(CreditGrant),
});
export const CreditTransaction = Type.Object({
  transaction_id: Type.String(),
  grant_id: Type.String(),
  kind: StringEnum(['grant', 'top_up', 'applied', 'void'] as const),
  amount: Type.String(),
  currency: Type.String(),
  invoice_id: Nullable(Type.String()),
  created_at: Type.String(),
});
export const TopUpBody = Type.Object({ amount: Amount }, { additionalProperties: false });
export const GrantParams = Type.Object({ grant_id: Type.String() });

export const CreateCouponBody = Type.Object(
  {
    coupon_id: Id,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    percent_off: Type.Optional(
      Type.String({ pattern: '^(100(\\.0{1,4})?|[0-9]{1,2}(\\.[0-9]{1,4})?)$', description: 'e.g. "20" or "12.5"' }),
    ),
    amount_off: Type.Optional(Amount),
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'required with amount_off' })),
    duration: StringEnum(['once', 'repeating', 'forever'] as const),
    duration_periods: Type.Optional(Type.Integer({ minimum: 1, maximum: 1200, description: 'with repeating: how many invoices' })),
    max_redemptions: Type.Optional(Type.Integer({ minimum: 1 })),
    redeem_by: Type.Optional(DateTime),
  },
  { additionalProperties: false },
);
export const Coupon = Type.Object({
  coupon_id: Type.String(),
  name: Type.String(),
  percent_off: Nullable(Type.String()),
  amount_off: Nullable(Type.String()),
  currency: Nullable(Type.String()),
  duration: Type.String(),
  duration_periods: Nullable(Type.Integer()),
  max_redemptions: Nullable(Type.Integer()),
  times_redeemed: Type.Integer(),
  redeem_by: Nullable(Type.String()),
  archived_at: Nullable(Type.String()),
  created_at: Type.String(),
});
export type Coupon = Static<typeof Coupon>;
export const CouponParams = Type.Object({ coupon_id: Type.String() });
export const RedeemCouponBody = Type.Object(
  {
    coupon_id: Type.String(),
    subscription_id: Type.Optional(
      Type.String({ description: 'only this subscription’s invoices (default: every invoice of the customer)' }),
    ),
  },
  { additionalProperties: false },
);
export const CouponRedemption = Type.Object({
  redemption_id: Type.String(),
  coupon_id: Type.String(),
  customer_id: Type.String(),
  subscription_id: Nullable(Type.String()),
  invoices_applied: Type.Integer(),
  created_at: Type.String(),
});

// --- Webhooks (services/billing/src/webhooks, Standard Webhooks) -------------------------------------

/** Every event type an endpoint can subscribe to (services/billing/README.md, "Webhooks"). */
export const WEBHOOK_EVENT_TYPES = [
  'customer.created',
  'customer.updated',
  'subscription.created',
  'subscription.renewed',
  'subscription.plan_changed',
  'subscription.cancelled',
  'subscription.ended',
  'invoice.created',
  'invoice.finalized',
  'invoice.paid',
  'invoice.voided',
  'credits.low',
  'usage.threshold_reached',
  'entitlement.exhausted',
  'entitlement.granted',
  'entitlement.revoked',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
/** The payload envelope's version (api_version); a breaking change of any `data` shape gets a new one. */
export const WEBHOOK_API_VERSION = '2026-12-01';

/** The body of every delivery; `id` is the webhook-id header (stable across retries: dedupe on it). */
export const WebhookPayload = Type.Object({
  id: Type.String({ description: 'msg_…, the webhook-id header' }),
  type: StringEnum(WEBHOOK_EVENT_TYPES),
  api_version: Type.String(),
  created_at: Type.String({ description: 'when the change was committed (ISO 8601)' }),
  organization_id: Type.String(),
  data: FreeObject({ description: 'the public JSON of the object (customer, subscription, invoice, …)' }),
});
export type WebhookPayload = Static<typeof WebhookPayload>;

const WebhookEventTypes = Type.Array(StringEnum(WEBHOOK_EVENT_TYPES), {
  uniqueItems: true,
  maxItems: WEBHOOK_EVENT_TYPES.length,
  description: 'event types to receive; empty = all',
});
const WebhookUrl = Type.String({ minLength: 8, maxLength: 2048, pattern: '^[hH][tT][tT][pP][sS]?://', description: 'http(s) URL' });

export const CreateWebhookEndpointBody = Type.Object(
  {
    endpoint_id: Type.Optional(Type.String({ pattern: ID_PATTERN, maxLength: ID_MAX_LENGTH })),
    url: WebhookUrl,
    event_types: Type.Optional(WebhookEventTypes),
    description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export const UpdateWebhookEndpointBody = Type.Object(
  {
    url: Type.Optional(WebhookUrl),
    event_types: Type.Optional(WebhookEventTypes),
    description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
    enabled: Type.Optional(Type.Boolean({ description: 're-enabling clears disabled_reason' })),
  },
  { additionalProperties: false },
);
export const WebhookEndpoint = Type.Object({
  endpoint_id: Type.String(),
  url: Type.String(),
  description: Nullable(Type.String()),
  event_types: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  disabled_reason: Nullable(Type.String()),
  previous_secret_expires_at: Nullable(Type.String({ description: 'during a rotation overlap: until when the old secret also signs' })),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type WebhookEndpoint = Static<typeof WebhookEndpoint>;
/** Creation and rotation answers: the signing secret (whsec_<base64>), shown only then. */
export const WebhookEndpointWithSecret = Type.Intersect([WebhookEndpoint, Type.Object({ secret: Type.String() })]);
export type WebhookEndpointWithSecret = Static<typeof WebhookEndpointWithSecret>;
export const WebhookEndpointParams = Type.Object({ endpoint_id: Type.String() });
export const RotateWebhookSecretBody = Type.Object(
  {
    overlap_seconds: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 7 * 86_400, default: 86_400, description: 'how long the old secret also signs' }),
    ),
  },
  { additionalProperties: false },
);
export const WebhookDelivery = Type.Object({
  delivery_id: Type.String(),
  event_id: Type.String(),
  event_type: Type.String(),
  endpoint_id: Type.String(),
  status: StringEnum(['pending', 'succeeded', 'failed', 'abandoned'] as const),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(Type.String()),
  last_attempt_at: Nullable(Type.String()),
  last_status_code: Nullable(Type.Integer()),
  last_response_ms: Nullable(Type.Integer()),
  last_response_body: Nullable(Type.String()),
  last_error: Nullable(Type.String()),
  delivered_at: Nullable(Type.String()),
  created_at: Type.String(),
  attempt_log: Type.Array(
    Type.Object({
      attempt: Type.Integer(),
      attempted_at: Type.String(),
      status_code: Nullable(Type.Integer()),
      response_ms: Type.Integer(),
      response_body: Nullable(Type.String()),
      error: Nullable(Type.String()),
    }),
  ),
});
export type WebhookDelivery = Static<typeof WebhookDelivery>;
export const WebhookDeliveryParams = Type.Object({ delivery_id: Type.String() });
export const ListWebhookDeliveriesQuery = Type.Object({
  ...PaginationQuery,
  status: Type.Optional(StringEnum(['pending', 'succeeded', 'failed', 'abandoned'] as const)),
  event_type: Type.Optional(Type.String()),
});

// ---- usage alerts (#12: usage.threshold_reached / entitlement.exhausted webhooks) -------------------

export const CreateUsageAlertBody = Type.Object(
  {
    alert_id: Type.Optional(Id),
    feature_id: Type.String(),
    customer_id: Type.Optional(Type.String({ description: 'only this customer (default: every customer)' })),
    plan_id: Type.Optional(Type.String({ description: "only customers on this plan's subscriptions" })),
    threshold_percent: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,4}(\\.[0-9]{1,4})?$', description: 'of the entitlement\'s limit, e.g. "80"' }),
    ),
    threshold_quantity: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,26}(\\.[0-9]{1,12})?$', description: 'absolute usage, e.g. "1000"' }),
    ),
  },
  { additionalProperties: false },
);
export const UsageAlert = Type.Object({
  alert_id: Type.String(),
  feature_id: Type.String(),
  customer_id: Nullable(Type.String()),
  plan_id: Nullable(Type.String()),
  threshold_percent: Nullable(Type.String()),
  threshold_quantity: Nullable(Type.String()),
  created_at: Type.String(),
  archived_at: Nullable(Type.String()),
});
export const UsageAlertParams = Type.Object({ alert_id: Type.String() });
export const UsageAlertCrossing = Type.Object({
  customer_id: Type.String(),
  window_start: Type.String(),
  usage: Type.String(),
  usage_limit: Nullable(Type.String()),
  crossed_at: Type.String(),
});

// ---- payments (#12 item 6: a provider interface with the built-in manual provider) ------------------

export const RecordPaymentBody = Type.Object(
  {
    provider: Type.Optional(Type.String({ description: 'default "manual" (recorded as paid elsewhere)' })),
    amount: Type.Optional(Amount),
    reference: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: "the provider's or the caller's id; unique per provider" }),
    ),
    note: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export const RefundBody = Type.Object(
  { amount: Type.Optional(Amount), note: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);
export const Payment = Type.Object({
  payment_id: Type.String(),
  invoice_id: Type.String(),
  provider: Type.String(),
  kind: StringEnum(['charge', 'refund'] as const),
  status: StringEnum(['pending', 'succeeded', 'failed'] as const),
  amount: Type.String(),
  currency: Type.String(),
  reference: Nullable(Type.String()),
  note: Nullable(Type.String()),
  refunds: Nullable(Type.String()),
  created_at: Type.String(),
});
export const InvoicePayments = Type.Object({
  invoice_id: Type.String(),
  status: Type.String(),
  payment_status: StringEnum(['unpaid', 'partially_paid', 'paid', 'refunded'] as const),
  currency: Type.String(),
  total: Type.String(),
  amount_paid: Type.String(),
  amount_refunded: Type.String(),
  amount_outstanding: Type.String(),
  payments: Type.Array(Payment),
});
export const PaymentParams = Type.Object({ payment_id: Type.String() });

// ---- referrals (#15 item 4: Autumn referral codes; rewards are coupons and/or credit grants) ----------

/** What one side of a redemption gets: a coupon (redeemed for the customer), a credit grant, or both. */
export const ReferralRewardInput = Type.Object(
  {
    coupon_id: Type.Optional(Type.String({ description: 'an existing coupon, redeemed for the customer (all its invoices)' })),
    credit_amount: Type.Optional(Amount),
    credit_currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'required with credit_amount' })),
    credit_expires_in_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export const ReferralReward = Type.Object({
  coupon_id: Nullable(Type.String()),
  credit_amount: Nullable(Type.String()),
  credit_currency: Nullable(Type.String()),
  credit_expires_in_days: Nullable(Type.Integer()),
});
export const CreateReferralProgramBody = Type.Object(
  {
    program_id: Id,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    referrer_reward: Type.Optional(ReferralRewardInput),
    redeemer_reward: Type.Optional(ReferralRewardInput),
    max_redemptions: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'per code; default unlimited' })),
    expires_at: Type.Optional(Nullable(DateTime)),
  },
  { additionalProperties: false },
);
export type CreateReferralProgramInput = Static<typeof CreateReferralProgramBody>;
export const ReferralProgram = Type.Object({
  program_id: Type.String(),
  name: Type.String(),
  referrer_reward: Nullable(ReferralReward),
  redeemer_reward: Nullable(ReferralReward),
  max_redemptions: Nullable(Type.Integer()),
  expires_at: Nullable(Type.String()),
  archived_at: Nullable(Type.String()),
  created_at: Type.String(),
});
export const ReferralProgramParams = Type.Object({ program_id: Type.String() });
export const ReferralCodeBody = Type.Object({ customer_id: Type.String(), program_id: Type.String() }, { additionalProperties: false });
export const ReferralCode = Type.Object({
  code: Type.String(),
  program_id: Type.String(),
  customer_id: Type.String(),
  times_redeemed: Type.Integer(),
  max_redemptions: Nullable(Type.Integer()),
  expires_at: Nullable(Type.String()),
  created_at: Type.String(),
});
export const ReferralCodeParams = Type.Object({ code: Type.String() });
export const RedeemReferralBody = Type.Object(
  { code: Type.String({ minLength: 1, maxLength: 64 }), customer_id: Type.String() },
  { additionalProperties: false },
);
export const GrantedReward = Type.Object({
  coupon_redemption_id: Nullable(Type.String()),
  credit_grant_id: Nullable(Type.String()),
});
export const ReferralRedemption = Type.Object({
  redemption_id: Type.String(),
  code: Type.String(),
  program_id: Type.String(),
  referrer_id: Type.String(),
  customer_id: Type.String(),
  referrer_reward: GrantedReward,
  redeemer_reward: GrantedReward,
  created_at: Type.String(),
});
export type ReferralRedemption = Static<typeof ReferralRedemption>;

// ---- checkout and billing portal (#15 item 5: Autumn attach/checkout, hosted payment providers) -------

export const AttachBody = Type.Object(
  {
    ...CreateSubscriptionBody.properties,
    provider: Type.Optional(Type.String({ description: 'payment provider; default "manual" (no checkout: subscribed at once)' })),
    success_url: Type.Optional(Type.String({ format: 'uri', maxLength: 2000 })),
    force_checkout: Type.Optional(
      Type.Boolean({ description: 'open a checkout even when nothing is due now (refused by a provider without checkout)' }),
    ),
  },
  { additionalProperties: false },
);
export type AttachInput = Static<typeof AttachBody>;
export const CHECKOUT_STATUSES = ['open', 'completed', 'expired', 'canceled'] as const;
export const Checkout = Type.Object({
  checkout_id: Type.String(),
  customer_id: Type.String(),
  plan_id: Type.String(),
  subscription_id: Type.String({ description: 'reserved: the subscription that completing creates' }),
  provider: Type.String(),
  status: StringEnum(CHECKOUT_STATUSES),
  payment_url: Nullable(Type.String()),
  success_url: Nullable(Type.String()),
  amount_due: Type.String({ description: 'the first invoice before coupons and credits' }),
  currency: Type.String(),
  provider_reference: Nullable(Type.String()),
  expires_at: Nullable(Type.String()),
  completed_at: Nullable(Type.String()),
  created_at: Type.String(),
});
/** `subscription` when subscribed now; `payment_url` + `checkout_id` when the customer must pay first. */
export const AttachResult = Type.Object({
  status: StringEnum(['subscribed', 'checkout_required'] as const),
  subscription: Nullable(Subscription),
  checkout_id: Nullable(Type.String()),
  payment_url: Nullable(Type.String()),
});
export type AttachResult = Static<typeof AttachResult>;
export const CheckoutParams = Type.Object({ checkout_id: Type.String() });
export const CompleteCheckoutBody = Type.Object(
  {
    provider_reference: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: "the provider's session id; must match when the checkout has one" }),
    ),
    // what the provider collected (default: the checkout's amount_due): a payment of the start invoice
    amount_collected: Type.Optional(Amount),
  },
  { additionalProperties: false },
);
export const CompletedCheckout = Type.Object({ checkout: Checkout, subscription: Subscription });
export const BillingPortalBody = Type.Object(
  {
    provider: Type.Optional(Type.String({ description: 'default "manual" (no portal: 409 not_supported)' })),
    return_url: Type.Optional(Type.String({ format: 'uri', maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export const BillingPortal = Type.Object({ url: Type.String() });

// ---- promotional entitlements and add-ons (services/billing/README.md) ---------------------------------

/** How long a promotional grant lasts (Stigg's periods); custom = until expires_at. */
export const PROMOTION_PERIODS = ['one_week', 'one_month', 'three_months', 'six_months', 'one_year', 'lifetime', 'custom'] as const;
export const PROMOTION_RESET_PERIODS = ['day', 'week', 'month', 'year', 'never'] as const;
export const GrantPromotionalEntitlementBody = Type.Object(
  {
    feature_id: Type.String({ minLength: 1 }),
    usage_limit: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_QUANTITY, description: 'metered features: the limit' })),
    unlimited: Type.Optional(Type.Boolean({ description: 'metered features: no limit (instead of usage_limit)' })),
    period: Type.Optional(StringEnum(PROMOTION_PERIODS, { description: 'from now; custom (or expires_at alone) = until expires_at' })),
    expires_at: Type.Optional(DateTime),
    reset_period: Type.Optional(
      StringEnum(PROMOTION_RESET_PERIODS, {
        description: 'usage windows anchored on the grant instant; never (default) = the whole grant',
      }),
    ),
  },
  { additionalProperties: false },
);
export type GrantPromotionalEntitlementInput = Static<typeof GrantPromotionalEntitlementBody>;
export const PromotionalEntitlement = Type.Object({
  customer_id: Type.String(),
  feature_id: Type.String(),
  usage_limit: Nullable(Type.Number()),
  has_unlimited_usage: Type.Boolean(),
  reset_period: StringEnum(PROMOTION_RESET_PERIODS),
  period: StringEnum(PROMOTION_PERIODS),
  granted_at: Type.String(),
  expires_at: Nullable(Type.String()),
  revoked_at: Nullable(Type.String()),
  status: StringEnum(['active', 'expired', 'revoked'] as const),
});
export type PromotionalEntitlement = Static<typeof PromotionalEntitlement>;
export const ListPromotionalEntitlementsQuery = Type.Object(
  { ...PaginationQuery, include_inactive: Type.Optional(Type.Boolean({ description: 'also expired and revoked grants' })) },
  { additionalProperties: false },
);
export const PromotionalEntitlementParams = Type.Object({ customer_id: Type.String(), feature_id: Type.String() });

export const AttachAddOnBody = Type.Object(
  { plan_id: Type.String({ minLength: 1 }), quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })) },
  { additionalProperties: false },
);
export const UpdateAddOnBody = Type.Object({ quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }) }, { additionalProperties: false });
export const AddOnParams = Type.Object({ subscription_id: Type.String(), plan_id: Type.String() });
export const SubscriptionAddOn = Type.Object({
  subscription_id: Type.String(),
  plan_id: Type.String(),
  plan_version: Type.Integer(),
  name: Type.String(),
  quantity: Type.Integer(),
  started_at: Type.String({ description: 'when the current quantity took effect' }),
  ended_at: Nullable(Type.String()),
  unit_price: Amount,
  flat_fee_timing: Type.String(),
  invoice_id: Type.Optional(Nullable(Type.String({ description: 'an in-advance add-on: the proration invoice of this change' }))),
});
export type SubscriptionAddOn = Static<typeof SubscriptionAddOn>;
