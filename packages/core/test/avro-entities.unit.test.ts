// entity_id in the event schema (V2): a backward-compatible evolution — V1 records (written before
// entities, or by a V1-only writer) still decode, with no entity; events without an entity are still
// written as V1, so V1-only readers keep working until entities are used.
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import {
  canonicalForm,
  decodeEvent,
  encodeEvent,
  rabinFingerprint64,
  fingerprintBytesLE,
  SCHEMA_FINGERPRINT_HEX,
  SCHEMA_V2_FINGERPRINT_HEX,
  USAGE_EVENT_SCHEMA_V1,
  USAGE_EVENT_SCHEMA_V2,
  usageEventProblem,
  type UsageEvent,
} from '../src/index.ts';

const event: UsageEvent = {
  organizationId: 'org_1',
  customerId: 'cust_1',
  eventName: 'message',
  idempotencyId: 'id-1',
  timeCreatedMs: 1_767_225_600_123,
  receivedAtMs: 1_767_225_601_000,
  properties: { n: 1 },
  source: 'api',
};

const v1 = avro.Type.forSchema(USAGE_EVENT_SCHEMA_V1 as unknown as avro.Schema);
const v2 = avro.Type.forSchema(USAGE_EVENT_SCHEMA_V2 as unknown as avro.Schema);
const header = (t: avro.Type) =>
  Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintBytesLE(rabinFingerprint64(Buffer.from(canonicalForm(t), 'utf8')))]);

describe('event schema V2 (entity_id)', () => {
  it('adds only an optional entity_id with default "" (a valid Avro schema evolution)', () => {
    const added = USAGE_EVENT_SCHEMA_V2.fields.filter((f) => !USAGE_EVENT_SCHEMA_V1.fields.some((g) => g.name === f.name));
    expect(added).toEqual([expect.objectContaining({ name: 'entity_id', type: 'string', default: '' })]);
    // avsc refuses a resolver when the reader lacks a default for a field the writer does not have
    expect(() => v2.createResolver(v1)).not.toThrow();
    const noDefault = { ...USAGE_EVENT_SCHEMA_V2, fields: [...USAGE_EVENT_SCHEMA_V1.fields, { name: 'entity_id', type: 'string' }] };
    expect(() => avro.Type.forSchema(noDefault as unknown as avro.Schema).createResolver(v1)).toThrow();
  });

  it('writes events with an entity as V2 and round-trips entity_id', () => {
    const withEntity = { ...event, entityId: 'seat_42' };
    const buf = encodeEvent(withEntity);
    expect(buf.subarray(2, 10).toString('hex')).toBe(SCHEMA_V2_FINGERPRINT_HEX);
    expect(SCHEMA_V2_FINGERPRINT_HEX).not.toBe(SCHEMA_FINGERPRINT_HEX);
    expect(decodeEvent(buf)).toEqual(withEntity);
    expect(v2.fromBuffer(buf.subarray(10)).entity_id).toBe('seat_42');
  });

  it('writes events without an entity as V1 (unchanged bytes for V1-only readers)', () => {
    const buf = encodeEvent(event);
    expect(buf.subarray(2, 10).toString('hex')).toBe(SCHEMA_FINGERPRINT_HEX);
    expect(v1.fromBuffer(buf.subarray(10)).customer_id).toBe('cust_1');
    expect(decodeEvent(encodeEvent({ ...event, entityId: '' }))).toEqual(event);
  });

  it('decodes an old V1 record written by a plain Avro writer: no entity', () => {
    const record = {
      organization_id: 'org_old',
      customer_id: 'c_old',
      event_name: 'e',
      idempotency_id: 'old-1',
      time_created: 1_700_000_000_000,
      received_at: 1_700_000_000_500,
      properties: '{"a":"b"}',
      source: 'api',
    };
    const decoded = decodeEvent(Buffer.concat([header(v1), v1.toBuffer(record)]));
    expect(decoded).toEqual({
      organizationId: 'org_old',
      customerId: 'c_old',
      eventName: 'e',
      idempotencyId: 'old-1',
      timeCreatedMs: 1_700_000_000_000,
      receivedAtMs: 1_700_000_000_500,
      properties: { a: 'b' },
      source: 'api',
    });
    expect(decoded.entityId).toBeUndefined();
  });

  it('applies customer_id rules to entity_id in the contract', () => {
    expect(usageEventProblem({ ...event, entityId: 'ws:1' })).toBeNull();
    expect(usageEventProblem({ ...event, entityId: 'x'.repeat(256) })).toMatch(/^entity_id: too_long/);
    expect(usageEventProblem({ ...event, entityId: 'a\u0001b' })).toBe('entity_id: invalid_characters');
    expect(usageEventProblem({ ...event, entityId: '   ' })).toMatch(/^entity_id: invalid/);
    expect(usageEventProblem({ ...event, entityId: '\ud800' })).toBe('entity_id: invalid_unicode');
  });
});
