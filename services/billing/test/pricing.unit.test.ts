import { describe, expect, it } from 'vitest';
import { Decimal } from 'decimal.js';
import {
  flatFeeLine,
  invoiceTotalMinor,
  priceComponent,
  priceQuantity,
  prorationFraction,
  validatePricing,
  type Pricing,
} from '../src/pricing.ts';
import { fromMinor, toMinor } from '../src/money.ts';
import { addInterval, periodAt } from '../src/periods.ts';

const q = (n: number | string) => new Decimal(n);

describe('priceQuantity', () => {
  it('per_unit with sub-cent prices is exact', () => {
    expect(priceQuantity({ model: 'per_unit', unit_price: '0.0004' }, q(12_345)).toString()).toBe('4.938');
    expect(toMinor(priceQuantity({ model: 'per_unit', unit_price: '0.0004' }, q(12_345)), 'USD')).toBe(494n);
    // 0.1 + 0.2 style traps do not exist
    expect(priceQuantity({ model: 'per_unit', unit_price: '0.1' }, q(3)).toString()).toBe('0.3');
  });

  const tiers = [
    { up_to: 100, unit_price: '0.10' },
    { up_to: 1000, unit_price: '0.05', flat_fee: '2' },
    { up_to: null, unit_price: '0.01' },
  ];
  it('graduated prices each tier slice', () => {
    const p: Pricing = { model: 'graduated', tiers };
    expect(priceQuantity(p, q(50)).toString()).toBe('5');
    expect(priceQuantity(p, q(100)).toString()).toBe('10');
    expect(priceQuantity(p, q(101)).toString()).toBe('12.05'); // 10 + 0.05 + flat 2
    expect(priceQuantity(p, q(1500)).toString()).toBe('62'); // 10 + 45 + 2 + 5
  });
  it('volume prices all units at the reached tier', () => {
    const p: Pricing = { model: 'volume', tiers };
    expect(priceQuantity(p, q(100)).toString()).toBe('10');
    expect(priceQuantity(p, q(101)).toString()).toBe('7.05'); // 101*0.05 + 2
    expect(priceQuantity(p, q(1500)).toString()).toBe('15');
  });
  it('package rounds up to whole blocks', () => {
    const p: Pricing = { model: 'package', package_size: 1000, package_price: '5' };
    expect(priceQuantity(p, q(0)).toString()).toBe('0');
    expect(priceQuantity(p, q(1)).toString()).toBe('5');
    expect(priceQuantity(p, q(1000)).toString()).toBe('5');
    expect(priceQuantity(p, q(1001)).toString()).toBe('10');
  });
  it('validates tier order and open last tier', () => {
    expect(validatePricing({ model: 'graduated', tiers })).toBeNull();
    expect(validatePricing({ model: 'graduated', tiers: [{ up_to: 10, unit_price: '1' }] })).toMatch(/last tier/);
    expect(
      validatePricing({
        model: 'volume',
        tiers: [
          { up_to: 10, unit_price: '1' },
          { up_to: 5, unit_price: '1' },
          { up_to: null, unit_price: '1' },
        ],
      }),
    ).toMatch(/ascending/);
    expect(validatePricing({ model: 'package', package_size: 0, package_price: '1' })).toMatch(/package_size/);
  });
});

describe('priceComponent', () => {
  it('subtracts included units then prices the rest', () => {
    const lines = priceComponent(
      { metric_id: 'api_calls', free_units: 1000, pricing: { model: 'per_unit', unit_price: '0.002' } },
      [{ groups: {}, value: 3500 }],
      'USD',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]!.amount).toBe('5');
    expect(lines[0]!.amount_minor).toBe('500');
  });
  it('usage inside the free units costs nothing', () => {
    const lines = priceComponent(
      { metric_id: 'm', free_units: 10, pricing: { model: 'per_unit', unit_price: '1' } },
      [{ groups: {}, value: 7 }],
      'USD',
    );
    expect(lines[0]!.amount_minor).toBe('0');
  });
  it('per-group prices apply to matching groups, the default to the rest', () => {
    const lines = priceComponent(
      {
        metric_id: 'compute',
        free_units: 5,
        pricing: { model: 'per_unit', unit_price: '1' },
        group_prices: [{ group: { region: 'eu' }, pricing: { model: 'per_unit', unit_price: '2' } }],
      },
      [
        { groups: { region: 'us' }, value: 10 },
        { groups: { region: 'eu' }, value: 4 },
        { groups: { region: 'ap' }, value: 1 },
      ],
      'USD',
    );
    // default bucket: 11 units, 5 free -> 6 * 1; eu: 4 * 2
    expect(lines.map((l) => l.amount)).toEqual(['6', '8']);
    expect(invoiceTotalMinor(lines)).toBe(1400n);
  });
  it('rounds half-even per line in minor units, zero-decimal currencies too', () => {
    expect(
      priceComponent({ metric_id: 'm', pricing: { model: 'per_unit', unit_price: '0.005' } }, [{ groups: {}, value: 1 }], 'USD')[0]!
        .amount_minor,
    ).toBe('0');
    expect(
      priceComponent({ metric_id: 'm', pricing: { model: 'per_unit', unit_price: '0.005' } }, [{ groups: {}, value: 3 }], 'USD')[0]!
        .amount_minor,
    ).toBe('2');
    expect(
      priceComponent({ metric_id: 'm', pricing: { model: 'per_unit', unit_price: '1.5' } }, [{ groups: {}, value: 3 }], 'JPY')[0]!
        .amount_minor,
    ).toBe('4');
    expect(fromMinor(1234n, 'USD')).toBe('12.34');
    expect(fromMinor(1234n, 'JPY')).toBe('1234');
  });
});

describe('proration and periods', () => {
  it('prorates a flat fee by the covered fraction', () => {
    const start = new Date('2026-04-01T00:00:00Z');
    const end = new Date('2026-05-01T00:00:00Z');
    const f = prorationFraction(new Date('2026-04-16T00:00:00Z'), end, start, end);
    expect(f.toString()).toBe('0.5');
    expect(flatFeeLine('proration_charge', 'x', '30.00', f, 'USD').amount_minor).toBe('1500');
    expect(flatFeeLine('proration_credit', 'x', '30.00', f, 'USD').amount_minor).toBe('-1500');
    expect(prorationFraction(new Date('2026-06-01T00:00:00Z'), end, start, end).toString()).toBe('0');
  });
  it('months keep the anchor day and clamp short months', () => {
    const a = new Date('2026-01-31T10:00:00Z');
    expect(addInterval(a, 'month', 1).toISOString()).toBe('2026-02-28T10:00:00.000Z');
    expect(addInterval(a, 'month', 2).toISOString()).toBe('2026-03-31T10:00:00.000Z');
    expect(addInterval(a, 'quarter', 1).toISOString()).toBe('2026-04-30T10:00:00.000Z');
    expect(addInterval(a, 'year', 1).toISOString()).toBe('2027-01-31T10:00:00.000Z');
    const p = periodAt(a, 'month', new Date('2026-03-15T00:00:00Z'));
    expect(p.index).toBe(1);
    expect(p.start.toISOString()).toBe('2026-02-28T10:00:00.000Z');
    expect(p.end.toISOString()).toBe('2026-03-31T10:00:00.000Z');
    expect(periodAt(a, 'week', new Date('2026-02-14T10:00:00Z')).index).toBe(2);
  });
});
