// Event ingest against the gateway: ids before the first attempt, splitting, per-event retry.
import { MeterlineError } from './errors.ts';
import { attempt, errorOf, isRetryableStatus, retryDelay, sleepFor, type CallOptions, type RawResponse, type Transport } from './http.ts';
import { randomId } from './ids.ts';
import type { EventError, EventResult, IngestResponse, UsageEventInput } from './types.ts';

/** An event as it goes on the wire: id assigned, Dates as ISO strings. */
export type WireEvent = Omit<UsageEventInput, 'time_created' | 'timestamp'> & {
  idempotency_id: string;
  time_created?: string;
  timestamp?: string;
};

export interface IngestLimits {
  /** Events per request; the gateway's limit is 1,000 (`GATEWAY_MAX_BATCH_EVENTS`). */
  maxBatchEvents: number;
  /** Serialized bytes per request; the gateway's body limit is 1 MiB. */
  maxBatchBytes: number;
}

const encoder = new TextEncoder();

/** Copies the event with an idempotency id (kept when given) and Dates as ISO strings. */
export function toWireEvent(e: UsageEventInput): WireEvent {
  if (e === null || typeof e !== 'object') {
    throw new MeterlineError('an event must be an object', { status: 0, code: 'invalid_event' });
  }
  const out: Record<string, unknown> = { ...e };
  out.idempotency_id = e.idempotency_id ?? e.idempotency_key ?? randomId();
  if (e.time_created instanceof Date) out.time_created = e.time_created.toISOString();
  if (e.timestamp instanceof Date) out.timestamp = e.timestamp.toISOString();
  return out as WireEvent;
}

/** Splits events into requests of at most `maxBatchEvents` events and about `maxBatchBytes` bytes. */
export function chunk<T>(items: T[], limits: IngestLimits): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 2;
  for (const item of items) {
    const size = encoder.encode(JSON.stringify(item)).length + 1;
    if (cur.length > 0 && (cur.length >= limits.maxBatchEvents || bytes + size > limits.maxBatchBytes)) {
      out.push(cur);
      cur = [];
      bytes = 2;
    }
    cur.push(item);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

export function summarize(results: EventResult[]): IngestResponse {
  const s: IngestResponse = { accepted: 0, duplicates: 0, rejected: 0, retry: 0, ignored: 0, results };
  for (const r of results) {
    if (r.status === 'accepted') s.accepted++;
    else if (r.status === 'duplicate') s.duplicates++;
    else if (r.status === 'rejected') s.rejected++;
    else if (r.status === 'retry') s.retry++;
    else if (r.status === 'ignored') s.ignored++;
  }
  return s;
}

export function eventErrorsOf(results: EventResult[]): EventError[] {
  return results
    .filter((r) => r.status === 'rejected')
    .map((r) => ({
      index: r.index,
      ...(r.idempotency_id !== undefined ? { idempotency_id: r.idempotency_id } : {}),
      errors: r.errors ?? [],
    }));
}

function perEventResults(res: RawResponse, sent: number): EventResult[] | undefined {
  const results = (res.body as { results?: unknown } | undefined)?.results;
  if (!Array.isArray(results) || results.length !== sent) return undefined;
  return results as EventResult[];
}

/**
 * Sends already-normalized events (ids assigned) and returns one result per event, in order, `index` =
 * position in `events`. Retries 503/429/network errors, re-sending only events not yet final. Throws
 * MeterlineError (with `results` as far as known; unfinished events have status `retry`) when a request
 * fails for good.
 */
export async function sendEvents(
  t: Transport,
  ingestUrl: string,
  events: WireEvent[],
  limits: IngestLimits,
  opts: CallOptions = {},
): Promise<EventResult[]> {
  const results: (EventResult | undefined)[] = new Array(events.length);
  const indexed = events.map((event, index) => ({ index, event }));
  const url = `${ingestUrl.replace(/\/+$/, '')}/v1/events`;
  for (const part of chunk(indexed, limits)) {
    let pending = part;
    for (let n = 0; ; n++) {
      let failure: MeterlineError;
      let retryAfterMs: number | undefined;
      try {
        const res = await attempt(
          t,
          'POST',
          url,
          pending.map((p) => p.event),
          opts,
        );
        const per = perEventResults(res, pending.length);
        if (per && (res.status < 300 || res.status === 207 || res.status === 400 || res.status === 503 || res.status === 429)) {
          const next: typeof pending = [];
          per.forEach((r, i) => {
            const p = pending[i]!;
            const mapped: EventResult = { ...r, index: p.index };
            if (r.duplicate_of !== undefined) {
              const first = pending[r.duplicate_of];
              if (first) mapped.duplicate_of = first.index;
              else delete mapped.duplicate_of;
            }
            if (mapped.idempotency_id === undefined && r.status !== 'rejected') mapped.idempotency_id = p.event.idempotency_id;
            results[p.index] = mapped;
            if (r.status === 'retry') next.push(p);
          });
          pending = next;
          if (pending.length === 0) break;
          failure = new MeterlineError(`${pending.length} event(s) still in flight elsewhere (status retry)`, {
            status: res.status,
            code: 'in_flight',
            ...(res.retryAfterMs !== undefined ? { retryAfterSeconds: res.retryAfterMs / 1000 } : {}),
          });
          retryAfterMs = res.retryAfterMs;
        } else if (isRetryableStatus(res.status)) {
          failure = errorOf(res, 'ingest');
          retryAfterMs = res.retryAfterMs;
        } else if (res.status >= 200 && res.status < 300) {
          throw new MeterlineError(`ingest: unexpected response (${res.status}) without one result per event`, {
            status: res.status,
            code: 'invalid_response',
          });
        } else {
          throw errorOf(res, 'ingest');
        }
      } catch (err) {
        if (!(err instanceof MeterlineError)) throw err;
        if (err.status !== 0 || err.code === 'aborted') throw withResults(err, results, events);
        failure = err; // network error or timeout: the ids make a resend safe
      }
      if (n >= t.retry.maxRetries) {
        throw withResults(
          new MeterlineError(`ingest failed after ${n + 1} attempt(s): ${failure.message}`, {
            status: failure.status,
            code: failure.code,
            details: failure.details,
            cause: failure,
            ...(failure.causeCode !== undefined ? { causeCode: failure.causeCode } : {}),
            ...(failure.retryAfterSeconds !== undefined ? { retryAfterSeconds: failure.retryAfterSeconds } : {}),
          }),
          results,
          events,
        );
      }
      const delay = retryDelay(t, n, retryAfterMs);
      t.logger.debug?.(
        `[meterline] ingest: retry ${n + 1}/${t.retry.maxRetries} of ${pending.length} event(s) in ${delay} ms: ${failure.message}`,
      );
      try {
        await sleepFor(t, delay, opts.signal, `POST ${url}`);
      } catch (err) {
        throw withResults(err as MeterlineError, results, events);
      }
    }
  }
  return results as EventResult[];
}

/** Attaches every event's result as far as known (unfinished: status `retry` with its id). */
function withResults(err: MeterlineError, results: (EventResult | undefined)[], events: WireEvent[]): MeterlineError {
  const all = events.map((e, index) =>
    results[index] && results[index]!.status !== 'retry'
      ? results[index]!
      : { index, status: 'retry' as const, idempotency_id: e.idempotency_id, reason: err.code },
  );
  return new MeterlineError(err.message, {
    status: err.status,
    code: err.code,
    details: err.details,
    results: all,
    eventErrors: eventErrorsOf(all),
    cause: err.cause ?? err,
    ...(err.causeCode !== undefined ? { causeCode: err.causeCode } : {}),
    ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
  });
}
