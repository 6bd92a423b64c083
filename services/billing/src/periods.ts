// Billing periods, anchored on the subscription's start: period k is [anchor + k*interval,
// anchor + (k+1)*interval). Months clamp to the month's last day but keep the anchor day
// (Jan 31 -> Feb 28 -> Mar 31), because each boundary is computed from the anchor, not the last one.
export type BillingInterval = 'week' | 'month' | 'quarter' | 'year';
export type ResetPeriod = 'billing_period' | 'day' | 'week' | 'month' | 'year' | 'never';

export function addInterval(anchor: Date, interval: BillingInterval | 'day', n: number): Date {
  if (interval === 'day') return new Date(anchor.getTime() + n * 86_400_000);
  if (interval === 'week') return new Date(anchor.getTime() + n * 7 * 86_400_000);
  const months = interval === 'month' ? n : interval === 'quarter' ? 3 * n : 12 * n;
  const y = anchor.getUTCFullYear();
  const m = anchor.getUTCMonth() + months;
  const targetY = y + Math.floor(m / 12);
  const targetM = ((m % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(targetY, targetM + 1, 0)).getUTCDate();
  const day = Math.min(anchor.getUTCDate(), lastDay);
  return new Date(
    Date.UTC(targetY, targetM, day, anchor.getUTCHours(), anchor.getUTCMinutes(), anchor.getUTCSeconds(), anchor.getUTCMilliseconds()),
  );
}

/** The period containing `at` (at >= anchor), and its index. */
export function periodAt(anchor: Date, interval: BillingInterval | 'day', at: Date): { index: number; start: Date; end: Date } {
  if (at.getTime() < anchor.getTime()) return { index: 0, start: anchor, end: addInterval(anchor, interval, 1) };
  // estimate, then correct (month lengths vary)
  const approx: Record<string, number> = {
    day: 86_400_000,
    week: 7 * 86_400_000,
    month: 28 * 86_400_000,
    quarter: 89 * 86_400_000,
    year: 365 * 86_400_000,
  };
  let k = Math.max(0, Math.floor((at.getTime() - anchor.getTime()) / approx[interval]!) - 1);
  while (addInterval(anchor, interval, k + 1).getTime() <= at.getTime()) k++;
  while (k > 0 && addInterval(anchor, interval, k).getTime() > at.getTime()) k--;
  return { index: k, start: addInterval(anchor, interval, k), end: addInterval(anchor, interval, k + 1) };
}

/**
 * The usage window an entitlement counts in: the billing period by default, a calendar-free
 * window of its own anchored on the subscription start (day/week/month/year), or the whole
 * subscription ('never' resets).
 */
export interface UsageWindow {
  start: Date;
  /** null: open-ended (a 'never' reset) */
  end: Date | null;
}

export function usageWindow(reset: ResetPeriod, sub: { startDate: Date; periodStart: Date; periodEnd: Date }, now: Date): UsageWindow {
  if (reset === 'billing_period') return { start: sub.periodStart, end: sub.periodEnd };
  if (reset === 'never') return { start: sub.startDate, end: null };
  const p = periodAt(sub.startDate, reset === 'year' ? 'year' : reset, now);
  return { start: p.start, end: p.end };
}
