// entity_id on events: optional, the same rules as customer_id (services/gateway/README.md).
import { describe, expect, it } from 'vitest';
import { LIMITS, validateEvent } from '../src/validation.ts';

const NOW = Date.parse('2025-06-15T12:00:00.000Z');
const RULES = { maxFutureMs: 86_400_000, backfillWindowMs: 35 * 86_400_000 };
const base = { event_name: 'message', customer_id: 'cust_1', idempotency_id: 'id-1' };
const reasons = (raw: object) => {
  const r = validateEvent(raw, NOW, RULES);
  return r.ok ? [] : r.errors.map((e) => `${e.field}:${e.reason}`);
};

describe('entity_id', () => {
  it('is optional and carried when sent', () => {
    const without = validateEvent(base, NOW, RULES);
    expect(without.ok && 'entityId' in without.event).toBe(false);
    const r = validateEvent({ ...base, entity_id: 'seat:42@ws' }, NOW, RULES);
    expect(r.ok && r.event.entityId).toBe('seat:42@ws');
    expect(reasons({ ...base, entity_id: null })).toEqual([]);
  });

  it('follows the customer_id rules', () => {
    expect(reasons({ ...base, entity_id: '' })).toEqual(['entity_id:empty']);
    expect(reasons({ ...base, entity_id: 7 })).toEqual(['entity_id:must_be_string']);
    expect(reasons({ ...base, entity_id: 'x'.repeat(LIMITS.entityIdMaxLength) })).toEqual([]);
    expect(reasons({ ...base, entity_id: 'x'.repeat(LIMITS.entityIdMaxLength + 1) })).toEqual(['entity_id:too_long']);
    expect(reasons({ ...base, entity_id: 'a\nb' })).toEqual(
      reasons({ ...base, customer_id: 'a\nb' }).map((x) => x.replace('customer_id', 'entity_id')),
    );
    expect(reasons({ ...base, entity_id: '\ud800' })).toEqual(['entity_id:invalid_unicode']);
  });
});
