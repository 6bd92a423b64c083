import { describe, expect, it } from 'vitest';
import { eventsOfBody, LIMITS, parseRfc3339, validateEvent, type FieldError } from '../src/validation.ts';

const NOW = Date.parse('2025-06-15T12:00:00.000Z');
const DAY = 86_400_000;
const RULES = { maxFutureMs: DAY, backfillWindowMs: 35 * DAY };
const base = { event_name: 'api_call', customer_id: 'cust_1', idempotency_id: 'id-1' };

function errorsOf(raw: unknown): FieldError[] {
  const r = validateEvent(raw, NOW, RULES);
  if (r.ok) throw new Error(`expected rejection, got ${JSON.stringify(r.event)}`);
  return r.errors;
}
function valid(raw: unknown) {
  const r = validateEvent(raw, NOW, RULES);
  if (!r.ok) throw new Error(`expected valid, got ${JSON.stringify(r.errors)}`);
  return r.event;
}
const reasons = (raw: unknown) => errorsOf(raw).map((e) => `${e.field}:${e.reason}`);

describe('validateEvent', () => {
  it('accepts a minimal event and fills defaults', () => {
    const e = valid({ event_name: 'api_call', customer_id: 'c' });
    expect(e.eventName).toBe('api_call');
    expect(e.customerId).toBe('c');
    expect(e.idempotencyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(e.idempotencyIdGenerated).toBe(true);
    expect(e.timeCreatedMs).toBe(NOW);
    expect(Object.keys(e.properties)).toEqual([]);
  });

  it('keeps a given idempotency_id and time_created', () => {
    const e = valid({ ...base, time_created: '2025-06-15T10:00:00Z', properties: { tokens: 12, model: 'x', cached: false } });
    expect(e.idempotencyId).toBe('id-1');
    expect(e.idempotencyIdGenerated).toBe(false);
    expect(e.timeCreatedMs).toBe(Date.parse('2025-06-15T10:00:00Z'));
    expect({ ...e.properties }).toEqual({ tokens: 12, model: 'x', cached: false });
  });

  it('accepts the aliases idempotency_key and timestamp', () => {
    const e = valid({ event_name: 'a', customer_id: 'c', idempotency_key: 'k', timestamp: '2025-06-15T11:00:00.5Z' });
    expect(e.idempotencyId).toBe('k');
    expect(e.timeCreatedMs).toBe(Date.parse('2025-06-15T11:00:00.500Z'));
  });

  it('rejects aliases that conflict, accepts identical ones', () => {
    expect(reasons({ ...base, idempotency_key: 'other' })).toEqual(['idempotency_id:conflicting_alias']);
    expect(valid({ ...base, idempotency_key: 'id-1' }).idempotencyId).toBe('id-1');
    expect(reasons({ ...base, time_created: '2025-06-15T10:00:00Z', timestamp: '2025-06-15T10:00:01Z' })).toEqual([
      'time_created:conflicting_alias',
    ]);
  });

  it('rejects non-objects', () => {
    for (const raw of [null, 'x', 3, [base], true]) expect(reasons(raw)).toEqual([':not_an_object']);
  });

  it('requires event_name and customer_id, reporting both at once', () => {
    expect(reasons({})).toEqual(['event_name:required', 'customer_id:required']);
    expect(reasons({ event_name: null, customer_id: 'c' })).toEqual(['event_name:required']);
  });

  it('checks identifier types, emptiness, length and characters', () => {
    expect(reasons({ ...base, event_name: 5 })).toEqual(['event_name:must_be_string']);
    expect(reasons({ ...base, customer_id: 42 })).toEqual(['customer_id:must_be_string']);
    expect(reasons({ ...base, idempotency_id: 7 })).toEqual(['idempotency_id:must_be_string']);
    expect(reasons({ ...base, customer_id: '  ' })).toEqual(['customer_id:empty']);
    expect(reasons({ ...base, idempotency_id: '' })).toEqual(['idempotency_id:empty']);
    expect(reasons({ ...base, event_name: 'x'.repeat(LIMITS.eventNameMaxLength + 1) })).toEqual(['event_name:too_long']);
    expect(valid({ ...base, event_name: 'x'.repeat(LIMITS.eventNameMaxLength) }).eventName).toHaveLength(255);
    expect(reasons({ ...base, customer_id: 'c'.repeat(LIMITS.customerIdMaxLength + 1) })).toEqual(['customer_id:too_long']);
    expect(reasons({ ...base, idempotency_key: 'k'.repeat(LIMITS.idempotencyIdMaxLength + 1), idempotency_id: undefined })).toEqual([
      'idempotency_key:too_long',
    ]);
    expect(reasons({ ...base, customer_id: 'a\nb' })).toEqual(['customer_id:invalid_characters']);
  });

  it('parses RFC 3339 timestamps strictly', () => {
    expect(parseRfc3339('2025-06-15T10:00:00Z')).toBe(Date.parse('2025-06-15T10:00:00Z'));
    expect(parseRfc3339('2025-06-15T12:00:00+02:00')).toBe(Date.parse('2025-06-15T10:00:00Z'));
    expect(parseRfc3339('2025-06-15T08:30:00-01:30')).toBe(Date.parse('2025-06-15T10:00:00Z'));
    expect(parseRfc3339('2025-06-15t10:00:00.123456789z')).toBe(Date.parse('2025-06-15T10:00:00.123Z'));
    for (const bad of [
      '2025-06-15T10:00:00',
      '2025-06-15',
      '2025-02-30T00:00:00Z',
      '2025-13-01T00:00:00Z',
      '2025-06-15T24:00:00Z',
      'yesterday',
      '1718445600',
    ]) {
      expect(parseRfc3339(bad), bad).toBeNull();
    }
  });

  it('rejects invalid timestamps with the field name the client used', () => {
    expect(reasons({ ...base, time_created: '2025-06-15 10:00' })).toEqual(['time_created:invalid_timestamp']);
    expect(reasons({ ...base, timestamp: 1718445600000 })).toEqual(['timestamp:invalid_timestamp']);
    expect(reasons({ ...base, time_created: '2025-06-15T10:00:00' })).toEqual(['time_created:invalid_timestamp']);
  });

  it('applies the future limit and the backfill window', () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(valid({ ...base, time_created: iso(NOW + DAY) }).timeCreatedMs).toBe(NOW + DAY);
    const future = errorsOf({ ...base, time_created: iso(NOW + DAY + 1000) });
    expect(future).toEqual([
      { field: 'time_created', reason: 'too_far_in_future', message: 'time_created is more than 1 day in the future' },
    ]);
    expect(valid({ ...base, time_created: iso(NOW - 35 * DAY) }).timeCreatedMs).toBe(NOW - 35 * DAY);
    const old = errorsOf({ ...base, timestamp: iso(NOW - 35 * DAY - 1000) });
    expect(old).toEqual([
      { field: 'timestamp', reason: 'outside_backfill_window', message: 'timestamp is older than the backfill window of 35 days' },
    ]);
    // configurable
    const r = validateEvent({ ...base, time_created: iso(NOW + 2 * DAY) }, NOW, { maxFutureMs: 3 * DAY, backfillWindowMs: DAY });
    expect(r.ok).toBe(true);
  });

  it('validates properties: object of scalars within limits', () => {
    expect(reasons({ ...base, properties: [1] })).toEqual(['properties:must_be_object']);
    expect(reasons({ ...base, properties: 'x' })).toEqual(['properties:must_be_object']);
    expect(valid({ ...base, properties: null }).properties).toEqual({});
    expect(reasons({ ...base, properties: { a: { b: 1 }, c: [1], d: null } })).toEqual([
      'properties.a:must_be_scalar',
      'properties.c:must_be_scalar',
      'properties.d:must_be_scalar',
    ]);
    expect(reasons({ ...base, properties: { '': 1 } })).toEqual(['properties.:empty_key']);
    const tooMany = Object.fromEntries(Array.from({ length: LIMITS.maxProperties + 1 }, (_, i) => [`k${i}`, i]));
    expect(reasons({ ...base, properties: tooMany })).toEqual(['properties:too_many_properties']);
    const justEnough = Object.fromEntries(Array.from({ length: LIMITS.maxProperties }, (_, i) => [`k${i}`, i]));
    expect(Object.keys(valid({ ...base, properties: justEnough }).properties)).toHaveLength(100);
    expect(errorsOf({ ...base, properties: { ['k'.repeat(LIMITS.propertyKeyMaxLength + 1)]: 1 } })[0]!.reason).toBe('key_too_long');
    expect(reasons({ ...base, properties: { v: 'x'.repeat(LIMITS.propertyValueMaxLength + 1) } })).toEqual(['properties.v:value_too_long']);
    expect(valid({ ...base, properties: { v: 'x'.repeat(LIMITS.propertyValueMaxLength) } }).properties.v).toHaveLength(1024);
  });

  it('accepts only text every later stage can store: no lone surrogates anywhere, no control characters in ids and keys, no NUL in values', () => {
    expect(reasons({ ...base, customer_id: 'a\ud800b' })).toEqual(['customer_id:invalid_unicode']);
    expect(reasons({ ...base, event_name: 'x\udfff' })).toEqual(['event_name:invalid_unicode']);
    expect(reasons({ ...base, idempotency_id: 'id\u0000' })).toEqual(['idempotency_id:invalid_characters']);
    expect(reasons({ ...base, properties: { note: 'lone \ud800 surrogate' } })).toEqual(['properties.note:invalid_unicode']);
    expect(reasons({ ...base, properties: { note: 'a\u0000b' } })).toEqual(['properties.note:invalid_characters']);
    expect(reasons({ ...base, properties: { ['k\u0001']: 1 } })).toEqual(['properties.k\\u0001:key_invalid_characters']);
    expect(reasons({ ...base, properties: { ['k\ud800']: 1 } })).toEqual(['properties.k\\ud800:key_invalid_unicode']);
    // paired surrogates (astral characters), tabs and newlines in values are fine
    expect(valid({ ...base, customer_id: 'c 😀 𝄞', properties: { note: 'line 1\n\tline 2 😀', tiny: 5e-324 } }).properties).toEqual({
      note: 'line 1\n\tline 2 😀',
      tiny: 5e-324,
    });
  });

  it('refuses an event holding a "__proto__" key anywhere, naming where (prototype-poisoning guard, per event)', () => {
    expect(reasons(JSON.parse('{"event_name":"a","customer_id":"c","properties":{"__proto__":"x","n":1}}'))).toEqual([
      'properties.__proto__:forbidden_key',
    ]);
    expect(reasons(JSON.parse('{"event_name":"a","customer_id":"c","__proto__":{"polluted":true}}'))).toEqual(['__proto__:forbidden_key']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('ignores an organization given in the body (the API key decides)', () => {
    const e = valid({ ...base, organization_id: 'org_other' });
    expect(e).not.toHaveProperty('organizationId');
  });
});

describe('eventsOfBody', () => {
  it('accepts one event, an array, or { batch }', () => {
    expect(eventsOfBody(base)).toEqual({ events: [base] });
    expect(eventsOfBody([base, base])).toEqual({ events: [base, base] });
    expect(eventsOfBody({ batch: [base] })).toEqual({ events: [base] });
    expect(eventsOfBody({ batch: 'x' })).toHaveProperty('error');
    expect(eventsOfBody('x')).toHaveProperty('error');
    expect(eventsOfBody(null)).toHaveProperty('error');
  });
});
