// The wire-level bounds every request is validated against, defined here once (billing's money.ts
// re-exports them; documented in services/billing/README.md "Limits"). AGGREGATIONS and MAX_GROUP_BY
// mirror core's (contracts carries no runtime dependency): services/billing/test/contracts.unit.test.ts
// fails if they drift apart.

/** Money amounts in major units (flat fees, package and tier prices, balances): < 10^12, ≤ 12 decimals. */
export const MAX_AMOUNT_INTEGER_DIGITS = 12;
export const MAX_AMOUNT_FRACTION_DIGITS = 12;
/** Quantities (tier up_to, free units, limits, usage values, required_balance, package size): |q| ≤ 10^15. */
export const MAX_QUANTITY = 1e15;
/** A non-negative exact decimal amount: at most 12 integer and 12 fraction digits ("49.00", "0.0004"). */
export const AMOUNT_PATTERN = `^[0-9]{1,${MAX_AMOUNT_INTEGER_DIGITS}}(\\.[0-9]{1,${MAX_AMOUNT_FRACTION_DIGITS}})?$`;
/** A non-negative exact decimal quantity as a string: at most 15 integer and 12 fraction digits. */
export const QUANTITY_PATTERN = '^[0-9]{1,15}(\\.[0-9]{1,12})?$';
/** Client-chosen ids (customer_id, plan_id, feature_id, metric_id, subscription_id on create). */
export const ID_PATTERN = '^[A-Za-z0-9_.:@\\-]+$';
export const ID_MAX_LENGTH = 200;
/** Plan versions are Postgres integers. */
export const MAX_PLAN_VERSION = 2147483647;
/** Lists: ?limit=1..200 (default 50) & offset=0..10^9 (default 0). */
export const PAGE_LIMIT_MAX = 200;
export const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_OFFSET_MAX = 1_000_000_000;
/** Billable metric aggregations (same list as @meterline/core's AGGREGATIONS; checked by a unit test). */
export const AGGREGATIONS = ['count', 'sum', 'max', 'unique_count', 'latest'] as const;
/** At most this many group_by properties per metric (core's MAX_GROUP_BY). */
export const MAX_GROUP_BY = 2;
/** Segment shared secrets: what the gateway compares against the webhook's secret. */
export const SEGMENT_SECRET_MIN_LENGTH = 1;
export const SEGMENT_SECRET_MAX_LENGTH = 512;
