// Money rules: exact decimals (decimal.js) for prices, including sub-cent unit prices like 0.0004;
// owed amounts are integer minor units (BIGINT) of the currency, rounded half-even once per line.
// Never a JS float. The API carries amounts as decimal strings in major units ("12.50").
import { Decimal } from 'decimal.js';

export { Decimal };

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
  return BigInt(dec(amount).times(new Decimal(10).pow(minorDigits(currency))).toDecimalPlaces(0, Decimal.ROUND_HALF_EVEN).toFixed(0));
}

export function fromMinor(minor: bigint | string | number, currency: string): string {
  return new Decimal(String(minor)).div(new Decimal(10).pow(minorDigits(currency))).toFixed(minorDigits(currency));
}

/** True when a decimal string has no more fractional digits than the currency's minor unit. */
export function fitsMinor(amount: string, currency: string): boolean {
  return dec(amount).decimalPlaces() <= minorDigits(currency);
}

export const DECIMAL_PATTERN = '^-?[0-9]+(\\.[0-9]+)?$';
export const NONNEG_DECIMAL_PATTERN = '^[0-9]+(\\.[0-9]+)?$';
