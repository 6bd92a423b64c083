// http/friendly.ts + http/validation.ts without services: dates, camelCase keys, enum case, unknown
// fields named with a suggestion, an absent body as {} (integration: friendly-inputs.int.test.ts).
import { describe, expect, it } from 'vitest';
import { MAX_UNKNOWN_FIELDS, normalizeInput, snakeCase, suggestField } from '../src/http/friendly.ts';
import { createValidators, friendlyValidator } from '../src/http/validation.ts';

const Body = {
  type: 'object',
  additionalProperties: false,
  required: ['customer_id', 'plan_id'],
  properties: {
    customer_id: { type: 'string' },
    plan_id: { type: 'string' },
    start_date: { type: 'string', format: 'date-time' },
    end_date: { type: ['string', 'null'], format: 'date-time' },
    update_behavior: { type: 'string', enum: ['delta', 'set'] },
    status: { anyOf: [{ const: 'draft' }, { const: 'paid' }] },
    metadata: { type: 'object', additionalProperties: true },
    items: { type: 'array', items: { type: 'object', additionalProperties: false, properties: { unit_price: { type: 'string' } } } },
  },
};

describe('normalizeInput', () => {
  it('dates, camelCase keys and enum case; free-form objects untouched', () => {
    const d: Record<string, unknown> = {
      customerId: 'c',
      plan_id: 'p',
      startDate: '2020-01-01',
      end_date: null,
      updateBehavior: 'SET',
      status: 'Paid',
      metadata: { someKey: 'SET', at: '2020-01-01' },
      items: [{ unitPrice: '1' }],
    };
    expect(normalizeInput(Body, d).errors).toEqual([]);
    expect(d).toEqual({
      customer_id: 'c',
      plan_id: 'p',
      start_date: '2020-01-01T00:00:00Z',
      end_date: null,
      update_behavior: 'set',
      status: 'paid',
      metadata: { someKey: 'SET', at: '2020-01-01' },
      items: [{ unit_price: '1' }],
    });
  });

  it('unknown fields: every one named, Lotus aliases, near spellings, camel + snake both given', () => {
    const { errors } = normalizeInput(Body, {
      customer_id: 'c',
      billing_plan_id: 'p',
      custmer_id: 'x',
      startDate: 'a',
      start_date: 'b',
      zzz: 1,
    });
    expect(errors.map((e) => e.message)).toEqual([
      'unknown field "billing_plan_id"; did you mean "plan_id"?',
      'unknown field "custmer_id"; did you mean "customer_id"?',
      'unknown field "startDate": "start_date" is also given (send one of them)',
      'unknown field "zzz" (allowed: customer_id, plan_id, start_date, end_date, update_behavior, status, metadata, items)',
    ]);
  });

  it('helpers', () => {
    expect(snakeCase('updateBehavior')).toBe('update_behavior');
    expect(snakeCase('customerID')).toBe('customer_id');
    expect(suggestField('customer_name', ['name', 'email'])).toBe('name');
    expect(suggestField('customer_name', ['email'])).toBeNull();
  });
});

describe('friendlyValidator', () => {
  const { body } = createValidators();
  it('an absent body is {} when the schema accepts it; otherwise the usual error', () => {
    const open = friendlyValidator(body, { type: 'object', additionalProperties: false, properties: { type: { type: 'string' } } }, 'body');
    expect(open(null)).toEqual({ value: {} });
    const v = friendlyValidator(body, Body, 'body');
    expect(v(null)).toBe(false);
  });
  it("ajv's errors get friendly messages (enum values, date forms)", () => {
    const v = friendlyValidator(body, Body, 'body');
    expect(v({ customer_id: 'c', plan_id: 'p', update_behavior: 'replace' })).toBe(false);
    expect(v.errors?.[0]?.message).toBe('must be one of: "delta", "set"');
    expect(v({ customer_id: 'c', plan_id: 'p', start_date: '2026-02-30' })).toBe(false);
    expect(v.errors?.[0]?.message).toContain('or a date ("2026-01-01"');
    const d = { customer_id: 'c', plan_id: 'p', start_date: '2026-02-28' };
    expect(v(d)).toBe(true); // normalized in place
    expect(d.start_date).toBe('2026-02-28T00:00:00Z');
  });
});

describe('hostile bodies', () => {
  it('thousands of long unknown keys: at most MAX_UNKNOWN_FIELDS + 1 errors, in bounded time', () => {
    const d: Record<string, unknown> = { customer_id: 'c', plan_id: 'p' };
    for (let i = 0; i < 5_000; i++) d[`${'x'.repeat(200)}${i}`] = 1;
    const started = performance.now();
    const { errors } = normalizeInput(Body, d);
    const ms = performance.now() - started;
    expect(errors).toHaveLength(MAX_UNKNOWN_FIELDS + 1);
    expect(errors.at(-1)!.message).toBe(`more than ${MAX_UNKNOWN_FIELDS} unknown fields; the rest are not listed`);
    // without the bound: 5,000 x 8 edit distances of 200 x ~12 chars, and a 5,000-error answer
    expect(ms).toBeLessThan(1_000);
    // short unknown keys still get their suggestion
    expect(normalizeInput(Body, { customer_id: 'c', plan_id: 'p', plan_idd: 'x' }).errors[0]!.message).toContain('did you mean "plan_id"');
  });
});
