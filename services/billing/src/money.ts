// Money rules: exact decimals (decimal.js) for prices, including sub-cent unit prices like 0.0004;
// owed amounts are integer minor units (BIGINT) of the currency, rounded half-even once per line.
// Never a JS float. The API carries amounts as decimal strings in major units ("12.50").
import { Decimal as DecimalJs } from 'decimal.js';

/**
 * decimal.js configured for billing: 100 significant digits, so that sums and products of quantities
 * (Decimal(38, 12): up to 38 digits) and prices (up to 24 digits) are exact and the only rounding of a
 * line is toMinor's half-even; plain notation in toString (never "1e-7").
 */
export const Decimal = DecimalJs.clone({ precision: 100, rounding: DecimalJs.ROUND_HALF_EVEN, toExpNeg: -100, toExpPos: 100 });
export type Decimal = DecimalJs;

const ZERO_DECIMAL = new Set(['JPY', 'KRW', 'VND', 'CLP', 'ISK', 'UGX', 'XAF', 'XOF', 'PYG', 'RWF']);
const THREE_DECIMAL = new Set(['BHD', 'KWD', 'OMR', 'JOD', 'TND', 'IQD', 'LYD']);

export function minorDigits(currency: string): number {
  const c = currency.toUpperCase();
  return ZERO_DECIMAL.has(c) ? 0 : THREE_DECIMAL.has(c) ? 3 : 2;
}

/** A decimal string as a Decimal; throws on anything that is not a finite decimal. */
export function dec(value: string | number | Decimal): Decimal {
  const d = new Decimal(value);
  if (!d.isFinite()) throw new RangeError(`not a finite decimal: ${value}`);
  return d;
}

export function toMinor(amount: Decimal | string, currency: string): bigint {
  return BigInt(
    dec(amount)
      .times(new Decimal(10).pow(minorDigits(currency)))
      .toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN)
      .toFixed(0),
  );
}

export function fromMinor(minor: bigint | string | number, currency: string): string {
  return new Decimal(String(minor)).div(new Decimal(10).pow(minorDigits(currency))).toFixed(minorDigits(currency));
}

/** True when a decimal string has no more fractional digits than the currency's minor unit. */
export function fitsMinor(amount: string, currency: string): boolean {
  return dec(amount).decimalPlaces() <= minorDigits(currency);
}

// Input bounds (documented in services/billing/README.md "Limits"), defined once in @meterline/contracts
// with the schemas that check every amount and quantity a client sends; re-exported for the pricing code.
export {
  AMOUNT_PATTERN,
  MAX_AMOUNT_FRACTION_DIGITS,
  MAX_AMOUNT_INTEGER_DIGITS,
  MAX_QUANTITY,
  QUANTITY_PATTERN,
} from '@meterline/contracts';
/** |owed amount| < 10^15 minor units: any bounded amount fits (3-decimal currencies: 10^12 · 10^3), BIGINT with margin. */
export const MAX_MINOR = 10n ** 15n;

/** An owed amount in minor units is within ±MAX_MINOR (what invoices and balances may hold). */
export function minorInRange(minor: bigint): boolean {
  return minor < MAX_MINOR && minor > -MAX_MINOR;
}
