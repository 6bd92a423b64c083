// The pricing engine: pure functions from (plan component, usage) to exact amounts. No I/O, no
// clock, no floats: decimal.js throughout, rounding to minor units only when a line is emitted.
//
//   free_units: subtracted from the period's total usage first ("included").
//   per_unit:   billable * unit_price.
//   graduated:  each tier prices the units that fall inside it (0..up_to], plus its flat_fee once reached.
//   volume:     the tier the whole billable quantity falls into prices every unit, plus its flat_fee.
//   package:    ceil(billable / package_size) * package_price.
//   group_prices: usage rows whose group values match a group price use that pricing; the rest use
//                 the default. Free units are consumed from rows in a deterministic order (default first).
import { Decimal, dec, minorDigits, toMinor } from './money.ts';

export interface Tier {
  up_to: number | string | null;
  unit_price: string;
  flat_fee?: string;
}
export type Pricing =
  | { model: 'per_unit'; unit_price: string }
  | { model: 'graduated'; tiers: Tier[] }
  | { model: 'volume'; tiers: Tier[] }
  | { model: 'package'; package_size: number; package_price: string };
export interface GroupPrice {
  group: Record<string, string>;
  pricing: Pricing;
}
export interface PlanComponent {
  metric_id: string;
  free_units?: number | string;
  pricing: Pricing;
  group_prices?: GroupPrice[];
}
export interface UsageAmount {
  groups: Record<string, string>;
  value: number | string;
}

export interface LineItem {
  kind: 'flat_fee' | 'usage' | 'proration_credit' | 'proration_charge' | 'add_on';
  description: string;
  metric_id?: string;
  /** usage lines: the metric version whose rollups priced the line (absent on lines written before migration 0011) */
  metric_version?: number;
  group?: Record<string, string>;
  quantity: string;
  amount: string; // exact decimal, major units
  amount_minor: string; // rounded minor units (bigint as string)
}

export function priceQuantity(pricing: Pricing, quantity: Decimal): Decimal {
  if (quantity.lte(0)) return new Decimal(0);
  switch (pricing.model) {
    case 'per_unit':
      return quantity.times(dec(pricing.unit_price));
    case 'package': {
      const size = dec(pricing.package_size);
      if (size.lte(0)) throw new RangeError('package_size must be > 0');
      return quantity.div(size).ceil().times(dec(pricing.package_price));
    }
    case 'graduated': {
      let total = new Decimal(0);
      let lower = new Decimal(0);
      for (const t of pricing.tiers) {
        if (quantity.lte(lower)) break;
        const upper = t.up_to === null ? null : dec(t.up_to);
        const inTier = upper === null ? quantity.minus(lower) : Decimal.min(quantity, upper).minus(lower);
        if (inTier.gt(0)) total = total.plus(inTier.times(dec(t.unit_price))).plus(dec(t.flat_fee ?? '0'));
        if (upper === null) break;
        lower = upper;
      }
      return total;
    }
    case 'volume': {
      for (const t of pricing.tiers) {
        if (t.up_to === null || quantity.lte(dec(t.up_to))) return quantity.times(dec(t.unit_price)).plus(dec(t.flat_fee ?? '0'));
      }
      const last = pricing.tiers[pricing.tiers.length - 1];
      return last ? quantity.times(dec(last.unit_price)).plus(dec(last.flat_fee ?? '0')) : new Decimal(0);
    }
  }
}

/** Validation for plan definitions (tiers ascending, last tier open, positive package size). */
export function validatePricing(p: Pricing): string | null {
  if (p.model === 'graduated' || p.model === 'volume') {
    if (p.tiers.length === 0) return 'tiers must not be empty';
    let prev = new Decimal(0);
    for (let i = 0; i < p.tiers.length; i++) {
      const t = p.tiers[i]!;
      if (t.up_to === null) {
        if (i !== p.tiers.length - 1) return 'only the last tier may have up_to null';
        continue;
      }
      const u = dec(t.up_to);
      if (u.lte(prev)) return 'tier up_to values must be strictly ascending and > 0';
      prev = u;
    }
    if (p.tiers[p.tiers.length - 1]!.up_to !== null) return 'the last tier must have up_to null';
  }
  if (p.model === 'package' && !(p.package_size > 0)) return 'package_size must be > 0';
  return null;
}

function matches(group: Record<string, string>, row: Record<string, string>): boolean {
  return Object.entries(group).every(([k, v]) => row[k] === v);
}

/** Prices one component's usage for a period: returns one line per price group (default first). */
export function priceComponent(c: PlanComponent, rows: UsageAmount[], currency: string): LineItem[] {
  const buckets: { group: Record<string, string> | null; pricing: Pricing; qty: Decimal }[] = [
    { group: null, pricing: c.pricing, qty: new Decimal(0) },
  ];
  for (const gp of c.group_prices ?? []) buckets.push({ group: gp.group, pricing: gp.pricing, qty: new Decimal(0) });
  for (const r of rows) {
    const b = buckets.find((x, i) => i > 0 && matches(x.group!, r.groups)) ?? buckets[0]!;
    b.qty = b.qty.plus(dec(r.value));
  }
  let free = dec(c.free_units ?? 0);
  const lines: LineItem[] = [];
  for (const b of buckets) {
    const used = Decimal.min(free, b.qty);
    free = free.minus(used);
    const billable = b.qty.minus(used);
    if (b.group && b.qty.isZero()) continue;
    const amount = priceQuantity(b.pricing, billable);
    lines.push({
      kind: 'usage',
      description: `${c.metric_id}${b.group ? ` ${JSON.stringify(b.group)}` : ''}: ${b.qty.toString()} units${used.gt(0) ? ` (${used.toString()} included)` : ''}`,
      metric_id: c.metric_id,
      ...(b.group ? { group: b.group } : {}),
      quantity: b.qty.toString(),
      amount: amount.toString(),
      amount_minor: toMinor(amount, currency).toString(),
    });
  }
  return lines;
}

/**
 * The exact ratio behind each fraction prorationFraction returned (milliseconds covered / period length):
 * the Decimal itself is rounded (100 digits) when the ratio does not terminate (1/6), and a share must not
 * be rounded before its line is (issue #17: 0.03 x 1/6 rounded twice gave 0.01 instead of 0.00).
 */
const exactRatios = new WeakMap<Decimal, { num: bigint; den: bigint }>();

/** Fraction of [periodStart, periodEnd) covered by [from, to), clamped to [0, 1]. */
export function prorationFraction(from: Date, to: Date, periodStart: Date, periodEnd: Date): Decimal {
  const len = periodEnd.getTime() - periodStart.getTime();
  if (len <= 0) return new Decimal(0);
  const a = Math.max(from.getTime(), periodStart.getTime());
  const b = Math.min(to.getTime(), periodEnd.getTime());
  if (b <= a) return new Decimal(0);
  const f = new Decimal(b - a).div(len);
  exactRatios.set(f, { num: BigInt(b - a), den: BigInt(len) });
  return f;
}

/** round_half_even(num / den) for integers, den > 0: exact (no intermediate rounding). */
export function divRoundHalfEven(num: bigint, den: bigint): bigint {
  if (den <= 0n) throw new RangeError('den must be > 0');
  const neg = num < 0n;
  const n = neg ? -num : num;
  let q = n / den;
  const r2 = (n % den) * 2n;
  if (r2 > den || (r2 === den && q % 2n === 1n)) q += 1n;
  return neg ? -q : q;
}

/** A decimal as an exact integer ratio (value = num / den, den a power of 10). */
function decimalRatio(d: Decimal): { num: bigint; den: bigint } {
  const places = d.decimalPlaces();
  return { num: BigInt(d.times(new Decimal(10).pow(places)).toFixed(0)), den: 10n ** BigInt(places) };
}

/**
 * A flat fee (or its prorated share) as a line: amount_minor = fee x fraction rounded half-even to
 * minor units exactly once, from the exact ratio when the fraction came from prorationFraction.
 */
export function flatFeeLine(kind: LineItem['kind'], description: string, fee: string, fraction: Decimal, currency: string): LineItem {
  const sign = kind === 'proration_credit' ? -1n : 1n;
  const amount = dec(fee)
    .times(fraction)
    .times(kind === 'proration_credit' ? -1 : 1);
  const ratio = exactRatios.get(fraction) ?? decimalRatio(dec(fraction));
  const feeRatio = decimalRatio(dec(fee));
  const minor = divRoundHalfEven(sign * feeRatio.num * ratio.num * 10n ** BigInt(minorDigits(currency)), feeRatio.den * ratio.den);
  return {
    kind,
    description,
    quantity: fraction.toSignificantDigits(10).toString(),
    amount: exactRatios.has(fraction) ? amount.toSignificantDigits(30).toString() : amount.toString(),
    amount_minor: minor.toString(),
  };
}

export function invoiceTotalMinor(lines: readonly { amount_minor: string }[]): bigint {
  return lines.reduce((s, l) => s + BigInt(l.amount_minor), 0n);
}
