// Why an invoice exists (invoices.reason), and which reasons carry usage: those stay drafts through the
// grace period and are finalized only once the aggregator has caught up (lifecycle.ts). Its own module
// so that issue.ts and lifecycle.ts (which import each other) can both use it at load time.
export type InvoiceReason =
  | 'subscription_start'
  | 'period_close'
  | 'plan_change'
  | 'plan_change_usage'
  | 'cancel'
  | 'cancel_credit'
  | 'usage_adjustment'
  | 'add_on_change';

/** Invoices whose lines include usage of their own period. */
export const USAGE_REASONS: readonly string[] = ['period_close', 'plan_change_usage', 'cancel'];

/** Invoices that carry late usage of earlier periods: the usage ones, and an ended subscription's adjustment invoice. */
export const ADJUSTING_REASONS: readonly string[] = [...USAGE_REASONS, 'usage_adjustment'];
