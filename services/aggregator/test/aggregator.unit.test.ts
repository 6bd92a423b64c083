import { describe, expect, it } from 'vitest';
import {
  encodeEvent,
  filterSql,
  metricConditions,
  normalizeDecimalText,
  propertyColumns,
  rollupSelect,
  type UsageEvent,
} from '@meterline/core';
import { decodeRecord } from '../src/decoder.ts';
import { claimKey } from '../src/claims.ts';

const event: UsageEvent = {
  organizationId: 'org_1',
  customerId: 'c',
  eventName: 'e',
  idempotencyId: 'i',
  timeCreatedMs: 1_700_000_000_000,
  receivedAtMs: 1_700_000_000_100,
  properties: { a: 'x' },
  source: 'api',
};

describe('property columns', () => {
  it('parses text and numeric values with a number mask (no Nullable arrays)', () => {
    expect(propertyColumns({ s: 'hi', n: 2.5, ns: '10', b: true, z: '1e3x' })).toEqual({
      prop_keys: ['s', 'n', 'ns', 'b', 'z'],
      prop_values: ['hi', '2.5', '10', 'true', '1e3x'],
      prop_number_values: [0, 2.5, 10, 0, 0],
      prop_is_number: [0, 1, 1, 0, 0],
      prop_decimal_values: ['0', '2.5', '10', '0', '0'],
    });
  });

  it('keeps numeric values as exact decimal text (Decimal(38, 12)), rounded half-even at 12 digits', () => {
    const dec = (v: number | string) => propertyColumns({ v }).prop_decimal_values[0];
    expect(dec(0.1)).toBe('0.1');
    expect(dec(0.30000000000000004)).toBe('0.3'); // 17 significant digits: beyond 12 fractional digits
    expect(dec(' 12.50 ')).toBe('12.5'); // a numeric string's own text
    expect(dec('-0.0000000000005')).toBe('0'); // half-even: 0.5e-12 -> 0
    expect(dec('0.0000000000015')).toBe('0.000000000002'); // 1.5e-12 -> 2e-12
    expect(dec('0.0000000000025')).toBe('0.000000000002'); // 2.5e-12 -> 2e-12
    expect(dec('0.00000000000250001')).toBe('0.000000000003');
    expect(dec(1e-7)).toBe('0.0000001'); // JS prints it as 1e-7
    expect(dec(1.5e21)).toBe('1500000000000000000000');
    expect(dec('12345678901234567890123456.5')).toBe('12345678901234567890123456.5'); // 26 integer digits fit
    expect(dec('123456789012345678901234567')).toBe('0'); // >= 10^26: not representable
    expect(dec('99999999999999999999999999.9999999999994')).toBe('99999999999999999999999999.999999999999');
    expect(dec('99999999999999999999999999.9999999999995')).toBe('0'); // rounds up to 10^26
    expect(dec('-3.25e2')).toBe('-325');
    expect(dec('.5')).toBe('0.5');
    expect(dec(5e-324)).toBe('0'); // subnormal counts as 0, like prop_number_values
  });

  it("reads ClickHouse's Decimal text back without trailing zeros", () => {
    expect(normalizeDecimalText('0.300000000000')).toBe('0.3');
    expect(normalizeDecimalText('22.720000000000')).toBe('22.72');
    expect(normalizeDecimalText('-12.000000000000')).toBe('-12');
    expect(normalizeDecimalText('0.000000000000')).toBe('0');
    expect(normalizeDecimalText('-0.000000000000')).toBe('0');
    expect(normalizeDecimalText('1500')).toBe('1500');
    expect(normalizeDecimalText('1e-7')).toBe('1e-7'); // a latest Float64 as ClickHouse prints it
  });
});

describe('metric SQL', () => {
  it('escapes property names and values (user input)', () => {
    const sql = filterSql({ property: "x') OR 1=1 --", operator: 'in', values: ["a'b", 'c\\'] });
    expect(sql).toContain("'x\\') OR 1=1 --'");
    expect(sql).toContain("'a\\'b'");
    expect(sql).toContain("'c\\\\'");
    expect(() => filterSql({ property: 'n', operator: 'gt', value: Number.NaN })).toThrow();
  });
  it('requires the aggregated property to be numeric (sum) or present (unique_count)', () => {
    const base = { organizationId: 'o', metricId: 'm', version: 1, eventName: 'e', filters: [], groupBy: [] };
    expect(metricConditions({ ...base, aggregation: 'sum', property: 'p' }).join(' ')).toContain(
      "prop_is_number[indexOf(prop_keys, 'p')] = 1",
    );
    expect(metricConditions({ ...base, aggregation: 'unique_count', property: 'p' }).join(' ')).toContain("has(prop_keys, 'p')");
    expect(rollupSelect({ ...base, aggregation: 'count', property: null, groupBy: ['g'] }, 'src', 100)).toContain(
      'intDiv(kafka_offset, 100) AS window_id',
    );
  });
});

describe('decoder', () => {
  it('accepts a valid record and dead-letters undecodable or invalid ones with a reason', () => {
    expect(decodeRecord(encodeEvent(event))).toMatchObject({ ok: true, event: { idempotencyId: 'i' } });
    expect(decodeRecord(Buffer.from('junk'))).toMatchObject({ ok: false, reason: 'bad_magic' });
    expect(decodeRecord(null)).toMatchObject({ ok: false, reason: 'empty_record' });
    expect(decodeRecord(encodeEvent({ ...event, customerId: '' }))).toMatchObject({
      ok: false,
      reason: 'invalid_event',
      event: { organizationId: 'org_1' },
    });
    const corrupt = encodeEvent(event).subarray(0, 14);
    expect(decodeRecord(corrupt)).toMatchObject({ ok: false, reason: 'bad_body' });
  });
  it('claims per organization and hashed idempotency id', () => {
    expect(claimKey('org_1', 'a')).not.toBe(claimKey('org_2', 'a'));
    expect(claimKey('org_1', 'a')).toMatch(/^ml:agg:claim:org_1:[0-9a-f]{64}$/);
  });
});
