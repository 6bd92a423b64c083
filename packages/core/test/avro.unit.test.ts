import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import {
  canonicalForm,
  decodeEvent,
  encodeEvent,
  EventDecodeError,
  rabinFingerprint64,
  SCHEMA_FINGERPRINT_HEX,
  USAGE_EVENT_SCHEMA_V1,
  type UsageEvent,
} from '../src/index.ts';

// Published CRC-64-AVRO vectors: Apache Avro, share/test/data/schema-tests.txt (signed 64-bit decimals).
const SPEC_VECTORS: Array<[string, bigint]> = [
  ['"null"', 7195948357588979594n],
  ['"boolean"', -6970731678124411036n],
  ['"int"', 8247732601305521295n],
  ['"long"', -3434872931120570953n],
  ['"double"', -8181574048448539266n],
  ['{"name":"foo","type":"fixed","size":15}', 1756455273707447556n],
  ['{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}', 7843277075252814651n],
];

const toUnsigned = (n: bigint) => BigInt.asUintN(64, n);

describe('CRC-64-AVRO fingerprint', () => {
  it.each(SPEC_VECTORS)('matches the spec vector for %s', (canonical, expected) => {
    expect(rabinFingerprint64(Buffer.from(canonical, 'utf8'))).toBe(toUnsigned(expected));
  });

  it('fingerprints the Parsing Canonical Form, not the schema as written', () => {
    const t = avro.Type.forSchema({ type: 'fixed', name: 'foo', size: 15, doc: 'ignored' } as avro.Schema);
    expect(canonicalForm(t)).toBe('{"name":"foo","type":"fixed","size":15}');
  });
});

describe('single-object encoding of UsageEvent', () => {
  const event: UsageEvent = {
    organizationId: 'org_1',
    customerId: 'cust "a"',
    eventName: 'api_call',
    idempotencyId: 'id-1',
    timeCreatedMs: 1_767_225_600_123,
    receivedAtMs: 1_767_225_601_000,
    properties: { region: 'eu', tokens: 12.5, cached: false },
    source: 'api',
  };

  it('writes C3 01, the little-endian schema fingerprint, then the Avro body', () => {
    const buf = encodeEvent(event);
    expect([...buf.subarray(0, 2)]).toEqual([0xc3, 0x01]);
    const fp = rabinFingerprint64(Buffer.from(canonicalForm(avro.Type.forSchema(USAGE_EVENT_SCHEMA_V1 as unknown as avro.Schema))));
    expect(buf.readBigUInt64LE(2)).toBe(fp);
    expect(buf.subarray(2, 10).toString('hex')).toBe(SCHEMA_FINGERPRINT_HEX);
  });

  it('round-trips every field', () => {
    expect(decodeEvent(encodeEvent(event))).toEqual(event);
  });

  it('decodes with a plain Avro reader of the published schema', () => {
    const body = encodeEvent(event).subarray(10);
    const rec = avro.Type.forSchema(USAGE_EVENT_SCHEMA_V1 as unknown as avro.Schema).fromBuffer(body);
    expect(rec.customer_id).toBe('cust "a"');
    expect(JSON.parse(rec.properties)).toEqual(event.properties);
  });

  it('refuses records without the header or with an unknown schema', () => {
    expect(() => decodeEvent(Buffer.from('{"json":true}'))).toThrow(EventDecodeError);
    const unknown = encodeEvent(event);
    unknown[5] = unknown[5]! ^ 0xff;
    expect(() => decodeEvent(unknown)).toThrow(/unknown writer schema/);
    const truncated = encodeEvent(event).subarray(0, 20);
    expect(() => decodeEvent(truncated)).toThrow(/does not match schema/);
  });
});
