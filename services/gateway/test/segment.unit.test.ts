import { describe, expect, it } from 'vitest';
import { flattenProperties, mapSegmentMessage, segmentMessagesOfBody, signSegmentBody, verifySegmentSignature } from '../src/segment.ts';

const NOW = Date.parse('2025-06-15T12:00:00.000Z');
const DAY = 86_400_000;
const RULES = { maxFutureMs: DAY, backfillWindowMs: 35 * DAY };

function event(msg: unknown, implied?: Parameters<typeof mapSegmentMessage>[3]) {
  const m = mapSegmentMessage(msg, NOW, RULES, implied);
  if (m.kind !== 'event' || !m.result.ok) throw new Error(`expected an event, got ${JSON.stringify(m)}`);
  return m.result.event;
}

describe('mapSegmentMessage', () => {
  it('maps a track call', () => {
    const e = event({
      type: 'track',
      event: 'Order Completed',
      userId: 'u1',
      anonymousId: 'anon',
      messageId: 'm-1',
      timestamp: '2025-06-15T11:59:00.000Z',
      properties: { revenue: 12.5, currency: 'EUR', paid: true },
    });
    expect(e).toMatchObject({
      eventName: 'Order Completed',
      customerId: 'u1',
      idempotencyId: 'm-1',
      idempotencyIdGenerated: false,
      timeCreatedMs: Date.parse('2025-06-15T11:59:00Z'),
    });
    expect({ ...e.properties }).toEqual({ revenue: 12.5, currency: 'EUR', paid: true });
  });

  it('falls back to anonymousId, originalTimestamp, and the implied type of the endpoint', () => {
    const e = event({ event: 'x', anonymousId: 'anon-1', messageId: 'm', originalTimestamp: '2025-06-15T11:00:00Z' }, 'track');
    expect(e.customerId).toBe('anon-1');
    expect(e.timeCreatedMs).toBe(Date.parse('2025-06-15T11:00:00Z'));
    expect(event({ event: 'x', userId: '', anonymousId: 'a2' }, 'track').customerId).toBe('a2');
    expect(event({ event: 'x', userId: 12345 }, 'track').customerId).toBe('12345');
  });

  it('flattens nested properties with dot keys, arrays by index, drops nulls', () => {
    const e = event({
      type: 'track',
      event: 'x',
      userId: 'u',
      properties: { plan: { tier: 'pro', seats: 3 }, items: [{ sku: 'a' }, 'b'], gone: null },
    });
    expect({ ...e.properties }).toEqual({ 'plan.tier': 'pro', 'plan.seats': 3, 'items.0.sku': 'a', 'items.1': 'b' });
  });

  it('turns page and screen into events named page / screen', () => {
    const p = event({ type: 'page', userId: 'u', name: 'Pricing', properties: { path: '/pricing' } });
    expect(p.eventName).toBe('page');
    expect({ ...p.properties }).toEqual({ path: '/pricing', name: 'Pricing' });
    expect(event({ userId: 'u', name: 'Home' }, 'screen').eventName).toBe('screen');
  });

  it('maps identify to a customer upsert with name and email from traits', () => {
    expect(
      mapSegmentMessage(
        { type: 'identify', userId: 'u1', traits: { name: 'Ada Lovelace', email: 'ada@example.com', plan: 'x' } },
        NOW,
        RULES,
      ),
    ).toEqual({ kind: 'identify', customer: { customerId: 'u1', name: 'Ada Lovelace', email: 'ada@example.com' } });
    expect(mapSegmentMessage({ userId: 'u2', traits: { firstName: 'Grace', lastName: 'Hopper' } }, NOW, RULES, 'identify')).toEqual({
      kind: 'identify',
      customer: { customerId: 'u2', name: 'Grace Hopper', email: null },
    });
    expect(mapSegmentMessage({ type: 'identify', traits: { name: 'x' } }, NOW, RULES)).toMatchObject({
      kind: 'rejected',
      errors: [{ field: 'userId', reason: 'required' }],
    });
  });

  it('ignores group and alias, rejects unknown types', () => {
    expect(mapSegmentMessage({ type: 'group', userId: 'u', groupId: 'g' }, NOW, RULES)).toEqual({ kind: 'ignored', type: 'group' });
    expect(mapSegmentMessage({ type: 'alias', userId: 'u', previousId: 'p' }, NOW, RULES)).toEqual({ kind: 'ignored', type: 'alias' });
    expect(mapSegmentMessage({ type: 'bogus', userId: 'u' }, NOW, RULES)).toMatchObject({
      kind: 'rejected',
      errors: [{ field: 'type', reason: 'unsupported_type' }],
    });
    expect(mapSegmentMessage({ userId: 'u' }, NOW, RULES)).toMatchObject({ kind: 'rejected', errors: [{ field: 'type' }] });
    expect(mapSegmentMessage('x', NOW, RULES)).toMatchObject({ kind: 'rejected', errors: [{ reason: 'not_an_object' }] });
  });

  it('reports errors with Segment field names', () => {
    const m = mapSegmentMessage({ type: 'track', messageId: 5, timestamp: 'later' }, NOW, RULES);
    expect(m.kind).toBe('event');
    if (m.kind !== 'event' || m.result.ok) throw new Error('expected rejection');
    expect(m.result.errors.map((e) => `${e.field}:${e.reason}`)).toEqual([
      'event:required',
      'userId:required',
      'messageId:must_be_string',
      'timestamp:invalid_timestamp',
    ]);
    expect(m.result.errors[0]!.message).toBe('event is required');
  });

  it('rejects properties that flatten beyond the limits', () => {
    const wide = { a: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])) };
    expect(mapSegmentMessage({ type: 'track', event: 'x', userId: 'u', properties: wide }, NOW, RULES)).toMatchObject({
      kind: 'rejected',
      errors: [{ field: 'properties', reason: 'too_many_properties' }],
    });
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = { d: deep };
    expect(mapSegmentMessage({ type: 'track', event: 'x', userId: 'u', properties: deep }, NOW, RULES)).toMatchObject({
      kind: 'rejected',
      errors: [{ reason: 'too_deep' }],
    });
    expect(flattenProperties([1])).toMatchObject({ ok: false, error: { reason: 'must_be_object' } });
  });
});

describe('segmentMessagesOfBody', () => {
  it('accepts { batch }, one message, or an array', () => {
    expect(segmentMessagesOfBody({ batch: [{ a: 1 }], writeKey: 'k' })).toEqual({ messages: [{ a: 1 }] });
    expect(segmentMessagesOfBody({ type: 'track' })).toEqual({ messages: [{ type: 'track' }] });
    expect(segmentMessagesOfBody([{ a: 1 }])).toEqual({ messages: [{ a: 1 }] });
    expect(segmentMessagesOfBody(7)).toHaveProperty('error');
  });
});

describe('Segment signatures', () => {
  const body = Buffer.from('{"type":"track","event":"x"}');
  it('verifies hex HMAC-SHA1 of the raw body', () => {
    const sig = signSegmentBody(body, 's3cret');
    expect(sig).toMatch(/^[0-9a-f]{40}$/);
    expect(verifySegmentSignature(body, 's3cret', sig)).toBe(true);
    expect(verifySegmentSignature(body, 's3cret', sig.toUpperCase())).toBe(true);
    expect(verifySegmentSignature(Buffer.from('{"type":"track","event":"y"}'), 's3cret', sig)).toBe(false);
    expect(verifySegmentSignature(body, 'other', sig)).toBe(false);
    expect(verifySegmentSignature(body, 's3cret', undefined)).toBe(false);
    expect(verifySegmentSignature(body, 's3cret', 'zz')).toBe(false);
  });
});
