// Decoding and validating one Kafka record. Anything that cannot become a counted event goes to the
// dead-letter path with a reason; nothing here throws, so no record can block its partition.
import { decodeEvent, EventDecodeError, usageEventProblem, type UsageEvent } from '@meterline/core';

export type Decoded = { ok: true; event: UsageEvent } | { ok: false; reason: string; error: string; event?: Partial<UsageEvent> };

export function decodeRecord(value: Buffer | null): Decoded {
  if (!value || value.length === 0) return { ok: false, reason: 'empty_record', error: 'record has no value' };
  let event: UsageEvent;
  try {
    event = decodeEvent(value);
  } catch (err) {
    const reason = err instanceof EventDecodeError ? err.reason : 'bad_body';
    return { ok: false, reason, error: (err as Error).message };
  }
  const problem = usageEventProblem(event);
  if (problem) return { ok: false, reason: 'invalid_event', error: problem, event };
  return { ok: true, event };
}
