import type { EventError, EventResult } from './types.ts';

/**
 * Every failure the SDK reports. `status` is the HTTP status (0 when no answer arrived: network error,
 * timeout, abort, or a client-side condition such as `disabled`), `code` the server's error code
 * (`error.code`) or one of the SDK's own: `network_error`, `timeout`, `retries_exhausted`,
 * `events_rejected`, `events_dropped`, `aborted`, `disabled`, `invalid_response`, `invalid_options`.
 *
 * Network errors name their underlying cause in the message (Node's fetch throws `TypeError('fetch
 * failed')` whose `cause` holds the real reason): `network error: POST http://…/v1/events: fetch failed
 * (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9)`; the code is also in `causeCode`, the original
 * error in `cause`.
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
  /** The system error code under a network failure (`ECONNREFUSED`, `ECONNRESET`, `ENOTFOUND`, `UND_ERR_SOCKET`, …). */
  readonly causeCode?: string;

  constructor(
    message: string,
    opts: {
      status: number;
      code: string;
      details?: unknown;
      results?: EventResult[];
      eventErrors?: EventError[];
      retryAfterSeconds?: number;
      causeCode?: string;
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
    if (opts.causeCode !== undefined) this.causeCode = opts.causeCode;
  }
}
