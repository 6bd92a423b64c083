// Issue #17 item 4: every line is rounded exactly once. Expected amounts are computed here with the
// test's own exact arithmetic (decimal.js at 200 digits for sums/products, BigInt ratios for shares),
// never by calling the code under test.
import { describe, expect, it } from 'vitest';
import { Decimal as D } from 'decimal.js';
import { flatFeeLine, priceComponent, prorationFraction } from '../src/pricing.ts';

const X = D.clone({ precision: 200 });
/** Half-even rounding of an exact decimal to `digits` fractional digits, as minor units. */
const minorOf = (v: D, digits = 2) => BigInt(new X(v).times(new X(10).pow(digits)).toDecimalPlaces(0, D.ROUND_HALF_EVEN).toFixed(0));

/** round_half_even(fee x covered / len) in minor units, from integers only (fee as cents x 10^6). */
function shareMinor(fee: string, covered: bigint, len: bigint): bigint {
  const [i, f = ''] = fee.split('.');
  const scaled = BigInt(i! + f.padEnd(8, '0')); // fee x 10^8
  const num = scaled * covered; // amount x 10^8 x len; minor units x 10^6 x len
  const den = len * 1_000_000n;
  const q = num / den;
  const r = num - q * den;
  if (r * 2n > den || (r * 2n === den && q % 2n === 1n)) return q + 1n;
  return q;
}

describe('usage lines are priced from exact quantities', () => {
  it('0.1 + 0.2 on a per-unit 0.15 component: quantity 0.3, amount 0.045 -> 0.04 (half-even)', () => {
    const [line] = priceComponent(
      { metric_id: 'gb', pricing: { model: 'per_unit', unit_price: '0.15' } },
      [
        { groups: {}, value: '0.1' },
        { groups: {}, value: '0.2' },
      ],
      'USD',
    );
    expect(line!.quantity).toBe('0.3');
    expect(line!.amount_minor).toBe(String(minorOf(new X('0.1').plus('0.2').times('0.15'))));
    expect(line!.amount_minor).toBe('4');
  });

  it('large quantities with 12 fractional digits are summed and priced without intermediate rounding', () => {
    const rows = ['12345678901234.123456789012', '98765432109876.987654321098', '0.000000000001'];
    const price = '0.000123456789';
    const [line] = priceComponent(
      { metric_id: 'x', pricing: { model: 'per_unit', unit_price: price } },
      rows.map((value) => ({ groups: {}, value })),
      'USD',
    );
    const qty = rows.reduce((s, r) => s.plus(r), new X(0));
    expect(line!.quantity).toBe(qty.toFixed()); // 111111111011111.111111110111
    expect(line!.quantity).toBe('111111111011111.111111110111');
    expect(line!.amount).toBe(qty.times(price).toFixed());
    expect(line!.amount_minor).toBe(String(minorOf(qty.times(price))));
  });

  it('graduated tiers with decimal quantities: one rounding at the end of the line', () => {
    const pricing = {
      model: 'graduated' as const,
      tiers: [
        { up_to: 1, unit_price: '0.015' },
        { up_to: null, unit_price: '0.005' },
      ],
    };
    // 1.3: 1 x 0.015 + 0.3 x 0.005 = 0.0165 -> 0.02 (rounding per tier: 0.02 + 0.00);
    // 0.9 + 0.9 = 1.8: 0.015 + 0.8 x 0.005 = 0.019 -> 0.02
    const [a] = priceComponent({ metric_id: 'x', pricing }, [{ groups: {}, value: '1.3' }], 'USD');
    expect(a!.amount_minor).toBe(String(minorOf(new X('0.015').plus(new X('0.3').times('0.005')))));
    const [b] = priceComponent(
      { metric_id: 'x', pricing },
      [
        { groups: {}, value: '0.9' },
        { groups: {}, value: '0.9' },
      ],
      'USD',
    );
    expect(b!.quantity).toBe('1.8');
    expect(b!.amount_minor).toBe(String(minorOf(new X('0.015').plus(new X('0.8').times('0.005')))));
  });
});

describe('prorated flat fees are rounded once, from the exact share', () => {
  const week = 7 * 86_400_000;
  const start = new Date(Date.UTC(2026, 0, 5));
  const end = new Date(start.getTime() + week);

  it('0.03 in arrears over 1/6 of a week: 0.005 -> 0.00 (not 0.0050000000000000000001 -> 0.01)', () => {
    const at = new Date(start.getTime() + week / 6);
    const line = flatFeeLine('flat_fee', 'fee', '0.03', prorationFraction(start, at, start, end), 'USD');
    expect(line.amount_minor).toBe(String(shareMinor('0.03', BigInt(week / 6), BigInt(week))));
    expect(line.amount_minor).toBe('0');
    expect(line.amount).toBe('0.005');
  });

  it('0.045 over 1/3 of a week: 0.015 -> 0.02 (a 20-digit 1/3 gave 0.0149999... -> 0.01)', () => {
    const at = new Date(start.getTime() + week / 3);
    const line = flatFeeLine('proration_charge', 'fee', '0.045', prorationFraction(start, at, start, end), 'USD');
    expect(line.amount_minor).toBe(String(shareMinor('0.045', BigInt(week / 3), BigInt(week))));
    expect(line.amount_minor).toBe('2');
    const credit = flatFeeLine('proration_credit', 'fee', '0.045', prorationFraction(start, at, start, end), 'USD');
    expect(credit.amount_minor).toBe('-2');
  });

  it('random fees and shares: amount_minor is the exact share rounded half-even once', () => {
    let seed = 17;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 2_000; i++) {
      const fee = `${rnd(1000)}.${String(rnd(1_000_000)).padStart(6, '0')}`;
      const len = 86_400_000 * (1 + rnd(31));
      const covered = 1 + rnd(len);
      const line = flatFeeLine(
        'flat_fee',
        'fee',
        fee,
        prorationFraction(start, new Date(start.getTime() + covered), start, new Date(start.getTime() + len)),
        'USD',
      );
      expect(line.amount_minor, `${fee} x ${covered}/${len}`).toBe(String(shareMinor(fee, BigInt(covered), BigInt(len))));
    }
  });

  it('a fraction given as a plain decimal is used exactly', () => {
    const line = flatFeeLine('flat_fee', 'fee', '0.05', new D('0.5'), 'USD');
    expect(line.amount_minor).toBe('2'); // 0.025 -> 0.02
  });
});
