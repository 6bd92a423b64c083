// The gateway's ingest response (POST /v1/events, Segment intakes): one result per event, in order.
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from './schema.ts';

export const EVENT_STATUSES = ['accepted', 'duplicate', 'rejected', 'retry', 'ignored'] as const;
export const EventStatus = StringEnum(EVENT_STATUSES);
export type EventStatus = Static<typeof EventStatus>;

export const FieldError = Type.Object({
  field: Type.String({ description: 'the offending field as a path: `customer_id`, `properties.plan`, or `` for the event itself' }),
  reason: Type.String({ description: 'machine-readable reason code' }),
  message: Type.String({ description: 'human-readable explanation' }),
});
export type FieldError = Static<typeof FieldError>;

export const EventResult = Type.Object({
  index: Type.Integer({ description: 'position of the event in the request' }),
  status: EventStatus,
  idempotency_id: Type.Optional(Type.String()),
  duplicate_of: Type.Optional(Type.Integer({ description: 'for a duplicate of an earlier event of the same request' })),
  errors: Type.Optional(Type.Array(FieldError, { description: 'for rejected events: every problem found' })),
  reason: Type.Optional(Type.String({ description: 'for retry / ignored: why' })),
  customer_id: Type.Optional(Type.String({ description: 'for Segment identify: the customer that was created or updated' })),
});
export type EventResult = Static<typeof EventResult>;

export const IngestSummary = Type.Object({
  accepted: Type.Integer(),
  duplicates: Type.Integer(),
  rejected: Type.Integer(),
  retry: Type.Integer(),
  ignored: Type.Integer(),
  results: Type.Array(EventResult),
});
export type IngestSummary = Static<typeof IngestSummary>;
