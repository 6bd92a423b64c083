// One promise deadline for every service: the promise's outcome if it settles within `ms`, otherwise a
// rejection (TimeoutError, or the caller's own error type). The timer is cleared either way; the
// underlying work is not cancelled (the caller owns that, e.g. by discarding a producer).

export class TimeoutError extends Error {}

export interface WithTimeoutOptions {
  /** What timed out, prefixed to the message: "<what> timed out after <ms> ms". */
  what?: string;
  /** Builds the rejection (default: TimeoutError). */
  error?: (message: string) => Error;
}

export function withTimeout<T>(p: Promise<T>, ms: number, opts: WithTimeoutOptions = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      const message = `${opts.what ? `${opts.what} ` : ''}timed out after ${ms} ms`;
      reject(opts.error ? opts.error(message) : new TimeoutError(message));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
