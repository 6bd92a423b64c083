// The input guards (src/http/input.ts) and the pg-error mapping (src/http/errors.ts), without services.
import { describe, expect, it } from 'vitest';
import { inputProblem } from '../src/http/input.ts';
import { pgErrorResponse } from '../src/http/errors.ts';
import { AMOUNT_PATTERN, MAX_MINOR, minorInRange, toMinor } from '../src/money.ts';

const msg = (v: unknown, where: 'body' | 'params' | 'querystring' = 'body') => {
  const p = inputProblem(v, where);
  return p && `${p.path} ${p.message}`;
};

describe('inputProblem', () => {
  it('names the field of lone surrogates and NULs in values and keys', () => {
    expect(msg({ metadata: { k: '\ud800' } })).toBe('body/metadata/k contains an unpaired UTF-16 surrogate (not valid Unicode text)');
    expect(msg({ name: 'a\u0000b' })).toBe('body/name contains a NUL character');
    expect(msg({ metadata: { '\udfff': 1 } })).toBe(
      'body/metadata/\\udfff (key) contains an unpaired UTF-16 surrogate (not valid Unicode text)',
    );
    expect(msg({ components: [{ pricing: { tiers: [{}, { unit_price: 'x\u0000' }] } }] })).toBe(
      'body/components/0/pricing/tiers/1/unit_price contains a NUL character',
    );
    expect(msg({ customer_id: 'c1\u0000x' }, 'params')).toBe('params/customer_id contains a NUL character');
  });

  it('ids: no control characters, at most 255 characters; free text keeps tabs and newlines', () => {
    expect(msg({ customer_id: 'a\u0007' })).toBe('body/customer_id contains control characters');
    expect(msg({ customer_id: 'x'.repeat(256) })).toMatch(/^body\/customer_id is too long/);
    expect(msg({ feature_id: 'a\u0085b' }, 'params')).toBe('params/feature_id contains control characters');
    expect(msg({ name: 'line 1\nline\t2', metadata: { note_id: 'free\ttext' } })).toBeNull();
    expect(msg({ properties: { 'a\u0001': 'x' } })).toBe('body/properties/a\\u0001 (key) contains control characters');
    expect(msg({ properties: { region: 'multi\nline' } })).toBeNull();
    expect(msg({ group_by: ['ok', 'b\u0002'] })).toBe('body/group_by/1 contains control characters');
    expect(msg({ customer_id: '😀 ünïcode' })).toBeNull();
  });

  it('numbers must be finite; dates parse and stay within 1970..2100; nesting is bounded', () => {
    expect(msg({ value: Infinity })).toBe('body/value must be a finite number');
    expect(msg({ components: [{ pricing: { tiers: [{ up_to: -Infinity }] } }] })).toBe(
      'body/components/0/pricing/tiers/0/up_to must be a finite number',
    );
    expect(msg({ filters: [{ value: 5e-324 }] })).toMatch(/^body\/filters\/0\/value is too close to 0/);
    expect(msg({ value: -0, other: 2.2250738585072014e-308 })).toBeNull();
    expect(msg({ start_date: '2024-01-01T23:59:60Z' })).toBe('body/start_date is not a valid date-time');
    expect(msg({ to: '2200-01-01T00:00:00Z' }, 'querystring')).toMatch(/^querystring\/to is out of range/);
    expect(msg({ end_date: null, start_date: '2026-01-31T00:00:00Z' })).toBeNull();
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(msg({ metadata: deep })).toMatch(/nested too deeply/);
  });
});

describe('amount bounds', () => {
  it('AMOUNT_PATTERN: at most 12 integer and 12 fraction digits; every bounded amount fits MAX_MINOR', () => {
    const re = new RegExp(AMOUNT_PATTERN);
    for (const ok of ['0', '49.00', '0.0004', '999999999999.999999999999']) expect(re.test(ok), ok).toBe(true);
    for (const bad of ['99999999999999999999999', '1e3', 'Infinity', '-1', '1.', '.5', '1.0000000000001', ' 1'])
      expect(re.test(bad), bad).toBe(false);
    expect(minorInRange(toMinor('999999999999.999', 'BHD'))).toBe(true);
    expect(minorInRange(MAX_MINOR)).toBe(false);
  });
});

describe('pgErrorResponse', () => {
  const pg = (code: string) => Object.assign(new Error('x'), { code, severity: 'ERROR', routine: 'r' });
  it('maps data exceptions to 400, unique violations to 409, foreign keys to 400; leaves the rest', () => {
    for (const c of ['22001', '22003', '22P02', '22021', '22P05', '22007']) expect(pgErrorResponse(pg(c))?.status, c).toBe(400);
    expect(pgErrorResponse(pg('23505'))).toMatchObject({ status: 409, code: 'conflict' });
    expect(pgErrorResponse(pg('23503'))?.status).toBe(400);
    expect(pgErrorResponse(pg('23514'))?.status).toBe(400);
    expect(pgErrorResponse(pg('57014'))).toBeNull();
    expect(pgErrorResponse(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeNull();
    expect(pgErrorResponse(new RangeError('x'))).toBeNull();
  });
});
