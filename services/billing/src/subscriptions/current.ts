// The state of a subscription at an instant, computed from the stored row alone: no I/O, no clock, no
// writes. Reads (subscription detail and lists, customer detail, entitlements, checks) answer with
// currentPeriod(row, now); the scheduler (invoices/scheduler.ts) persists the same transitions, invoicing
// each closed period (invoices/close.ts lists them with elapsedPeriods). Because both come from this one
// function, what a read shows before the scheduler ran is exactly what the row holds after it ran.
//
// Transitions (unchanged from when reads advanced subscriptions):
//   not_started -> active   at start_date;
//   a period closes at min(end_date, current_period_end) once that instant is <= now;
//   it renews when auto_renew and the close is the period end and end_date (if any) lies beyond it;
//   the next period is anchored on start_date (periods.ts); otherwise the subscription ends at the close
//   (end_reason end_date_reached, or auto_renew_off).
import { periodAt } from '../periods.ts';
import type { SubscriptionRow } from './store.ts';

export interface PeriodClose {
  /** The subscription as it was before this close (its plan, trial, plan_started_at price the close). */
  before: SubscriptionRow;
  periodStart: Date;
  periodEnd: Date;
  /** When the period closes: periodEnd, or the end_date inside it. */
  closeAt: Date;
  renews: boolean;
  /** The period that follows when it renews. */
  nextStart: Date;
  nextEnd: Date;
}

export interface Elapsed {
  /** The row at `now` once every elapsed transition is applied. */
  row: SubscriptionRow;
  /** Whether anything changed (status or period). */
  changed: boolean;
  closes: PeriodClose[];
}

/** Every transition between the stored row and `now`, oldest first (at most `max` closes). */
export function elapsedPeriods(stored: SubscriptionRow, now: Date, max = Number.MAX_SAFE_INTEGER): Elapsed {
  const t = now.getTime();
  let s: SubscriptionRow = { ...stored };
  let changed = false;
  const closes: PeriodClose[] = [];
  if (s.status === 'not_started' && s.start_date.getTime() <= t) {
    s = { ...s, status: 'active' };
    changed = true;
  }
  while (s.status === 'active' && closes.length < max) {
    const periodEnd = s.current_period_end;
    const closeAt = s.end_date && s.end_date.getTime() < periodEnd.getTime() ? s.end_date : periodEnd;
    if (closeAt.getTime() > t) break;
    const renews = s.auto_renew && closeAt.getTime() === periodEnd.getTime() && (!s.end_date || s.end_date.getTime() > periodEnd.getTime());
    const nextStart = periodEnd;
    // periods are anchored on start_date: the next one ends at the first anchored boundary after nextStart
    const nextEnd = periodAt(s.start_date, s.interval, nextStart).end;
    closes.push({ before: s, periodStart: s.current_period_start, periodEnd, closeAt, renews, nextStart, nextEnd });
    s = renews
      ? { ...s, current_period_start: nextStart, current_period_end: nextEnd, plan_started_at: nextStart }
      : { ...s, status: 'ended', ended_at: closeAt, end_reason: s.auto_renew ? 'end_date_reached' : 'auto_renew_off' };
    changed = true;
  }
  return { row: s, changed, closes };
}

/** The subscription as of `now` (status, current period, plan_started_at, ended_at), without writing. */
export function currentPeriod(stored: SubscriptionRow, now: Date): SubscriptionRow {
  if (stored.status === 'ended') return stored;
  const t = now.getTime();
  // the common case, no transition due: the stored row is current
  const closeAt =
    stored.end_date && stored.end_date.getTime() < stored.current_period_end.getTime() ? stored.end_date : stored.current_period_end;
  if (closeAt.getTime() > t && !(stored.status === 'not_started' && stored.start_date.getTime() <= t)) return stored;
  return elapsedPeriods(stored, now).row;
}
