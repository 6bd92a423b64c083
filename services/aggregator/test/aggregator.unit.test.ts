import { describe, expect, it } from 'vitest';
import { encodeEvent, filterSql, metricConditions, propertyColumns, rollupSelect, type UsageEvent } from '@meterline/core';
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
    });
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
