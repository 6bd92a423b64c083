import type { EventError, EventResult } from './types.ts';

/**
 * Every failure the SDK reports. `status` is the HTTP status (0 when no answer arrived: network error,
 * timeout, or a client-side condition such as `queue_full`), `code` the server's error code
 * (`error.code`) or one of the SDK's own: `network_error`, `timeout`, `retries_exhausted`,
 * `events_rejected`, `queue_full`, `closed`, `invalid_response`.
 */
export class MeterlineError extends Error {
  override readonly name = 'MeterlineError';
  readonly status: number;
  readonly code: string;
  /** Server-provided `error.details`, if any (billing validation errors, conflicts). */
  readonly details?: unknown;
  /** Ingest: every event's result as far as known (unfinished events have status `retry`). */
  readonly results?: EventResult[];
  /** Ingest: the rejected events and their problems (`{ index, idempotency_id?, errors }`). */
  readonly eventErrors?: EventError[];
  /** Seconds the server asked to wait (Retry-After), if it said. */
  readonly retryAfterSeconds?: number;

  constructor(
    message: string,
    opts: {
      status: number;
      code: string;
      details?: unknown;
      results?: EventResult[];
      eventErrors?: EventError[];
      retryAfterSeconds?: number;
      cause?: unknown;
    },
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.status = opts.status;
    this.code = opts.code;
    if (opts.details !== undefined) this.details = opts.details;
    if (opts.results) this.results = opts.results;
    if (opts.eventErrors) this.eventErrors = opts.eventErrors;
    if (opts.retryAfterSeconds !== undefined) this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}
