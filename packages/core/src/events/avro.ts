// Avro single-object encoding of UsageEvent (spec: "Single-object encoding"):
//   C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema | Avro binary body.
// The fingerprint lets readers pick the writer schema, so the schema can evolve: add a version to
// WRITER_SCHEMAS (with defaults for new fields) and older records still decode.
import avro from 'avsc';
import { rabinFingerprint64, fingerprintBytesLE } from './rabin.ts';
import type { UsageEvent } from './event.ts';

/** Version 1 of the event schema: the published contract of the events topic. */
export const USAGE_EVENT_SCHEMA_V1 = {
  type: 'record',
  name: 'UsageEvent',
  namespace: 'dev.meterline',
  doc: 'A usage event accepted by the Meterline gateway.',
  fields: [
    { name: 'organization_id', type: 'string' },
    { name: 'customer_id', type: 'string' },
    { name: 'event_name', type: 'string' },
    { name: 'idempotency_id', type: 'string' },
    { name: 'time_created', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'received_at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'properties', type: 'string', doc: 'JSON object of string, number and boolean values.' },
    { name: 'source', type: 'string', default: 'api' },
  ],
} as const;

/**
 * Version 2 (entities): V1 + `entity_id` (default '', so V1 records resolve to it). The writer uses V1
 * for events without an entity and V2 only for events with one, so a reader that knows only V1 keeps
 * decoding everything until entities are used (upgrade aggregators before sending entity_id).
 */
export const USAGE_EVENT_SCHEMA_V2 = {
  ...USAGE_EVENT_SCHEMA_V1,
  fields: [
    ...USAGE_EVENT_SCHEMA_V1.fields,
    { name: 'entity_id', type: 'string', default: '', doc: "The customer's entity (seat, workspace); '' = customer-level." },
  ],
} as const;

const MAGIC = Buffer.from([0xc3, 0x01]);
const HEADER_LENGTH = MAGIC.length + 8;

interface AvroRecord {
  organization_id: string;
  customer_id: string;
  event_name: string;
  idempotency_id: string;
  time_created: number;
  received_at: number;
  properties: string;
  source: string;
  entity_id?: string;
}

const v1Type = avro.Type.forSchema(USAGE_EVENT_SCHEMA_V1 as unknown as avro.Schema);
/** Records are read with the newest schema; older writer schemas resolve to it (defaults fill new fields). */
const readerType = avro.Type.forSchema(USAGE_EVENT_SCHEMA_V2 as unknown as avro.Schema);

/** Parsing Canonical Form of a schema (avsc's schema() without options returns it). */
export function canonicalForm(type: avro.Type): string {
  return JSON.stringify(type.schema());
}

function fingerprintOf(type: avro.Type): Buffer {
  return fingerprintBytesLE(rabinFingerprint64(Buffer.from(canonicalForm(type), 'utf8')));
}

const writerFingerprint = fingerprintOf(v1Type);
const v2Fingerprint = fingerprintOf(readerType);

/** Every schema version a record on the topic may have been written with, keyed by fingerprint (hex). */
const resolvers = new Map<string, avro.Resolver | null>([
  [writerFingerprint.toString('hex'), readerType.createResolver(v1Type)],
  [v2Fingerprint.toString('hex'), null],
]);

/** Fingerprint of V1: the writer schema of events without an entity. */
export const SCHEMA_FINGERPRINT_HEX = writerFingerprint.toString('hex');
/** Fingerprint of V2: the writer schema of events with an entity_id. */
export const SCHEMA_V2_FINGERPRINT_HEX = v2Fingerprint.toString('hex');

export class EventDecodeError extends Error {
  constructor(
    message: string,
    readonly reason: 'bad_magic' | 'unknown_schema' | 'bad_body',
  ) {
    super(message);
  }
}

export function encodeEvent(e: UsageEvent): Buffer {
  const record: AvroRecord = {
    organization_id: e.organizationId,
    customer_id: e.customerId,
    event_name: e.eventName,
    idempotency_id: e.idempotencyId,
    time_created: e.timeCreatedMs,
    received_at: e.receivedAtMs,
    properties: JSON.stringify(e.properties),
    source: e.source,
  };
  if (e.entityId) return Buffer.concat([MAGIC, v2Fingerprint, readerType.toBuffer({ ...record, entity_id: e.entityId })]);
  return Buffer.concat([MAGIC, writerFingerprint, v1Type.toBuffer(record)]);
}

export function decodeEvent(buf: Buffer): UsageEvent {
  if (buf.length < HEADER_LENGTH || buf[0] !== MAGIC[0] || buf[1] !== MAGIC[1]) {
    throw new EventDecodeError('not an Avro single-object encoded record (missing C3 01 header)', 'bad_magic');
  }
  const fp = buf.subarray(2, HEADER_LENGTH).toString('hex');
  if (!resolvers.has(fp)) throw new EventDecodeError(`unknown writer schema fingerprint ${fp}`, 'unknown_schema');
  let r: AvroRecord;
  try {
    const resolver = resolvers.get(fp);
    const body = buf.subarray(HEADER_LENGTH);
    r = (resolver ? readerType.fromBuffer(body, resolver) : readerType.fromBuffer(body)) as AvroRecord;
  } catch (err) {
    throw new EventDecodeError(`Avro body does not match schema: ${(err as Error).message}`, 'bad_body');
  }
  let properties: UsageEvent['properties'];
  try {
    properties = JSON.parse(r.properties);
  } catch {
    throw new EventDecodeError('properties is not valid JSON', 'bad_body');
  }
  return {
    organizationId: r.organization_id,
    customerId: r.customer_id,
    eventName: r.event_name,
    idempotencyId: r.idempotency_id,
    timeCreatedMs: Number(r.time_created),
    receivedAtMs: Number(r.received_at),
    properties,
    source: r.source,
    ...(r.entity_id ? { entityId: r.entity_id } : {}),
  };
}
