// Parsed property columns of a raw event (events.prop_keys / prop_values / prop_number_values / prop_decimal_values): exact,
// fast metric filters without re-parsing JSON in ClickHouse. Semantics (docs/analytics.md):
//   text value:    strings as-is, numbers as JavaScript prints them, booleans 'true' / 'false'
//   numeric value: numbers; strings that are plain decimal numbers; otherwise none (booleans too):
//                  prop_number_values holds 0 and prop_is_number 0 (ClickHouse 18.16 crashes on empty
//                  Array(Nullable(...)) indexing, so no Nullable arrays)
import { MIN_NORMAL_NUMBER } from '../clients/clickhouse.ts';
import type { Properties, PropertyValue } from '../events/event.ts';

export interface PropertyColumns {
  prop_keys: string[];
  prop_values: string[];
  prop_number_values: number[];
  prop_is_number: number[];
  /** The numeric value as an exact decimal text for ClickHouse Decimal(38, 12) ('0' when not a number). */
  prop_decimal_values: string[];
}

/** Fractional digits of exact quantities (ClickHouse Decimal(38, 12)): sums and maxima keep them all. */
export const QUANTITY_SCALE = 12;
/** Exact quantities are below 10^26 in magnitude (Decimal(38, 12)); a value beyond counts as 0 there. */
export const MAX_EXACT_INTEGER_DIGITS = 26;

const DECIMAL_TEXT = /^([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?\d+))?$/;

/**
 * A decimal number's text (plain or exponent form, e.g. a property sent as "12.50" or a JavaScript
 * number's shortest form such as "1e-7") as fixed-point text with at most QUANTITY_SCALE fractional
 * digits, rounded half-even there, without trailing zeros ("0.3", "-12", "0"). '0' when the text is not
 * a decimal number or its magnitude reaches 10^MAX_EXACT_INTEGER_DIGITS. String arithmetic only: no float.
 */
export function exactDecimalText(text: string): string {
  const m = DECIMAL_TEXT.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return '0';
  const neg = m[1] === '-';
  let digits = `${m[2]}${m[3] ?? ''}`;
  const exp = Number(m[4] ?? 0);
  if (!Number.isSafeInteger(exp)) return '0';
  // value = digits * 10^(pointAt - digits.length)
  let pointAt = m[2]!.length + exp;
  const lead = digits.search(/[^0]/);
  if (lead < 0) return '0';
  digits = digits.slice(lead);
  pointAt -= lead;
  if (pointAt > MAX_EXACT_INTEGER_DIGITS) return '0';
  if (pointAt < -QUANTITY_SCALE - 1) return '0';
  // integer of the value scaled by 10^QUANTITY_SCALE, plus the digits cut off
  const keep = pointAt + QUANTITY_SCALE;
  let scaled: bigint;
  if (keep >= digits.length) scaled = BigInt(digits + '0'.repeat(keep - digits.length));
  else {
    const kept = keep > 0 ? BigInt(digits.slice(0, keep)) : 0n;
    const rest = keep > 0 ? digits.slice(keep) : '0'.repeat(-keep) + digits;
    const first = Number(rest[0]);
    const tail = /[1-9]/.test(rest.slice(1));
    const up = first > 5 || (first === 5 && (tail || kept % 2n === 1n));
    scaled = up ? kept + 1n : kept;
  }
  if (scaled === 0n) return '0';
  if (scaled >= 10n ** BigInt(MAX_EXACT_INTEGER_DIGITS + QUANTITY_SCALE)) return '0';
  const s = scaled.toString().padStart(QUANTITY_SCALE + 1, '0');
  const int = s.slice(0, s.length - QUANTITY_SCALE);
  const frac = s.slice(s.length - QUANTITY_SCALE).replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

const NUMERIC = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

export function propertyText(v: PropertyValue): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : v ? 'true' : 'false';
}

/**
 * The numeric value of a property, or null. Subnormal magnitudes (below 2.2250738585072014e-308) count
 * as 0: no usage quantity is that small, and ClickHouse parses them inconsistently. The stored
 * `properties` JSON keeps the value exactly as sent.
 */
export function propertyNumber(v: PropertyValue): number | null {
  let n: number | null = null;
  if (typeof v === 'number') n = Number.isFinite(v) ? v : null;
  else if (typeof v === 'string' && NUMERIC.test(v.trim())) {
    const parsed = Number(v.trim());
    n = Number.isFinite(parsed) ? parsed : null;
  }
  if (n !== null && n !== 0 && Math.abs(n) < MIN_NORMAL_NUMBER) return 0;
  return n;
}

export function propertyColumns(props: Properties): PropertyColumns {
  const out: PropertyColumns = { prop_keys: [], prop_values: [], prop_number_values: [], prop_is_number: [], prop_decimal_values: [] };
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || typeof v === 'object') continue;
    out.prop_keys.push(k);
    out.prop_values.push(propertyText(v));
    const n = propertyNumber(v);
    out.prop_number_values.push(n ?? 0);
    out.prop_is_number.push(n === null ? 0 : 1);
    // the exact decimal: a string's own text, a number's shortest form (what the sender's JSON said for
    // any number of up to 17 significant digits); subnormal magnitudes count as 0 like prop_number_values
    out.prop_decimal_values.push(n === null || n === 0 ? '0' : exactDecimalText(typeof v === 'string' ? v : String(v)));
  }
  return out;
}
