// Retrying a step while the work is still ours. A dependency outage (ClickHouse, Redis, Kafka) is
// retried inline for a short budget, then the step gives up with Deferred: the consumer pauses just
// that partition and replays it after a backoff, so one failing partition never holds the fetch loop
// (kafkajs waits for every batch of a fetch before fetching again) and never blocks the others.
// Permanent failures (bad data, bad SQL) are rethrown at once: the caller isolates the culprit.
export class Aborted extends Error {
  constructor() {
    super('aborted: partition revoked or aggregator stopping');
  }
}

/** The step kept failing for its inline budget; `cause` is the last error. */
export class Deferred extends Error {
  constructor(
    readonly stage: string,
    override readonly cause: unknown,
  ) {
    super(`${stage} kept failing: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

export interface RetryOptions {
  /** False once the work must be abandoned (stale batch, stopping): throws Aborted. */
  active: () => boolean;
  maxBackoffMs: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Called between attempts (e.g. Kafka heartbeat), errors ignored. */
  tick?: () => Promise<void>;
  /** Errors that no retry can fix: rethrown at once. */
  isPermanent?: (err: unknown) => boolean;
  /** Throw Deferred once the step has been failing for this long (undefined: retry while active). */
  giveUpAfterMs?: number;
  /** Name of the step (for Deferred and metrics). */
  stage?: string;
}

export async function retryUntilDone<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  let firstFailure = 0;
  for (let attempt = 1; ; attempt++) {
    if (!o.active()) throw new Aborted();
    try {
      return await fn();
    } catch (err) {
      if (!o.active()) throw new Aborted();
      if (o.isPermanent?.(err)) throw err;
      firstFailure ||= Date.now();
      const delay = Math.min(o.maxBackoffMs, 100 * 2 ** Math.min(attempt - 1, 10));
      if (o.giveUpAfterMs !== undefined && Date.now() + delay - firstFailure > o.giveUpAfterMs) throw new Deferred(o.stage ?? 'step', err);
      o.onRetry?.(err, attempt, delay);
      const until = Date.now() + delay;
      while (Date.now() < until) {
        if (!o.active()) throw new Aborted();
        await o.tick?.().catch(() => undefined);
        await new Promise((r) => setTimeout(r, Math.min(250, until - Date.now())));
      }
    }
  }
}
