// Decoding and validating one Kafka record. Anything that cannot become a counted event goes to the
// dead-letter path with a reason; nothing here throws, so no record can block its partition.
import { decodeEvent, EventDecodeError, type UsageEvent } from '@meterline/core';

export type Decoded =
  | { ok: true; event: UsageEvent }
  | { ok: false; reason: string; error: string; event?: Partial<UsageEvent> };

const MAX_ID = 512;

export function validateEvent(e: UsageEvent): string | null {
  const nonEmpty = (v: unknown, name: string, max = MAX_ID) => (typeof v !== 'string' || v.length === 0 || v.length > max ? `${name} must be a non-empty string of at most ${max} characters` : null);
  const problem =
    nonEmpty(e.organizationId, 'organization_id') ??
    nonEmpty(e.customerId, 'customer_id') ??
    nonEmpty(e.eventName, 'event_name') ??
    nonEmpty(e.idempotencyId, 'idempotency_id');
  if (problem) return problem;
  if (!Number.isSafeInteger(e.timeCreatedMs) || e.timeCreatedMs < 0 || e.timeCreatedMs > 4_102_444_800_000) return 'time_created out of range';
  if (!Number.isSafeInteger(e.receivedAtMs) || e.receivedAtMs < 0) return 'received_at out of range';
  const p = e.properties as unknown;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return 'properties must be a JSON object';
  for (const [k, v] of Object.entries(p as Record<string, unknown>)) {
    if (!['string', 'number', 'boolean'].includes(typeof v)) return `property ${JSON.stringify(k).slice(0, 100)} must be a string, number or boolean`;
    if (typeof v === 'number' && !Number.isFinite(v)) return `property ${JSON.stringify(k).slice(0, 100)} must be finite`;
  }
  return null;
}

export function decodeRecord(value: Buffer | null): Decoded {
  if (!value || value.length === 0) return { ok: false, reason: 'empty_record', error: 'record has no value' };
  let event: UsageEvent;
  try {
    event = decodeEvent(value);
  } catch (err) {
    const reason = err instanceof EventDecodeError ? err.reason : 'bad_body';
    return { ok: false, reason, error: (err as Error).message };
  }
  const problem = validateEvent(event);
  if (problem) return { ok: false, reason: 'invalid_event', error: problem, event };
  return { ok: true, event };
}
