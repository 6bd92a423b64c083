// Retrying a step until it succeeds while the work is still ours: a dependency outage (ClickHouse,
// Redis, Kafka) pauses the partition instead of skipping or losing anything.
export class Aborted extends Error {
  constructor() { super('aborted: partition revoked or aggregator stopping'); }
}

export interface RetryOptions {
  /** False once the work must be abandoned (stale batch, stopping): throws Aborted. */
  active: () => boolean;
  maxBackoffMs: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Called between attempts (e.g. Kafka heartbeat), errors ignored. */
  tick?: () => Promise<void>;
}

export async function retryUntilDone<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (!o.active()) throw new Aborted();
    try {
      return await fn();
    } catch (err) {
      if (!o.active()) throw new Aborted();
      const delay = Math.min(o.maxBackoffMs, 100 * 2 ** Math.min(attempt - 1, 10));
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
