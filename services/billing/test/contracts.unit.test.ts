// The contracts' bounds are billing's (money.ts re-exports them); core's metric definitions are mirrored
// here: if core changes them, this fails until @meterline/contracts follows (and with it the schemas,
// the OpenAPI document and the SDK types).
import { describe, expect, it } from 'vitest';
import * as contracts from '@meterline/contracts';
import { AGGREGATIONS, MAX_GROUP_BY } from '@meterline/core';
import * as money from '../src/money.ts';
import { createValidators } from '../src/http/validation.ts';

describe('contracts', () => {
  it('use the same metric definitions as core, and money.ts the contracts bounds', () => {
    expect(money.AMOUNT_PATTERN).toBe(contracts.Amount.pattern);
    expect([...contracts.AGGREGATIONS]).toEqual([...AGGREGATIONS]);
    expect(contracts.MAX_GROUP_BY).toBe(MAX_GROUP_BY);
  });

  it('body validation does not coerce; query validation does', () => {
    const { body, text } = createValidators();
    const plan = body.compile(contracts.CreatePlanBody);
    const withNull = { plan_id: 'p', name: 'P', interval: 'month', entitlements: [{ feature_id: 'f', limit: null }] };
    expect(plan(withNull)).toBe(true);
    expect(withNull.entitlements[0]!.limit).toBeNull();
    expect(plan({ plan_id: 'p', name: 'P', interval: 'month', trial_days: '3' })).toBe(false);
    const customer = body.compile(contracts.CreateCustomerBody);
    expect(customer({ customer_id: 'c', name: 5 })).toBe(false);
    const check = body.compile(contracts.CheckBody);
    const c: Record<string, unknown> = { customer_id: 'c', feature_id: 'f' };
    expect(check(c)).toBe(true);
    expect(c).toMatchObject({ required_balance: 1, send_event: false });
    const list = text.compile(contracts.ListCustomersQuery);
    const q: Record<string, unknown> = { limit: '5', include_archived: 'true' };
    expect(list(q)).toBe(true);
    expect(q).toEqual({ limit: 5, offset: 0, include_archived: true });
    // the pricing branches: a bad tier is reported at its own path
    expect(
      plan({
        plan_id: 'p',
        name: 'P',
        interval: 'month',
        components: [{ metric_id: 'm', pricing: { model: 'graduated', tiers: [{ up_to: 0, unit_price: '1' }] } }],
      }),
    ).toBe(false);
    expect(plan.errors?.[0]?.instancePath).toBe('/components/0/pricing/tiers/0/up_to');
  });
});
