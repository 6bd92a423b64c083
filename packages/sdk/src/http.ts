// Transport: one attempt with a timeout, retry delays (exponential backoff, full jitter, Retry-After).
import { MeterlineError } from './errors.ts';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface RetryPolicy {
  maxRetries: number;
  /** First backoff step; attempt n waits up to min(maxDelayMs, baseDelayMs * 2^n), fully jittered. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Upper bound for a server's Retry-After. */
  maxRetryAfterMs: number;
}

/** Options every call takes as its last argument. */
export interface CallOptions {
  /** Aborts the call: the attempt in flight and any retry waiting (rejects with MeterlineError `aborted`). */
  signal?: AbortSignal;
  /** Per-attempt timeout of this call (default: the client's `timeoutMs`). */
  timeoutMs?: number;
}

/** Where the SDK logs (each function optional): requests and retries at debug, drops at warn, failures at error. */
export interface Logger {
  debug?: (message: string) => void;
  warn?: (message: string) => void;
  error?: (message: string) => void;
}

export interface Transport {
  fetch: FetchLike;
  logger: Logger;
  apiKey: string;
  timeoutMs: number;
  retry: RetryPolicy;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  userAgent: string;
}

export interface RawResponse {
  status: number;
  body: unknown;
  retryAfterMs: number | undefined;
}

export const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unparseable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const s = value.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Delay before retry number `attempt` (0-based): the server's Retry-After if given, else backoff; jittered. */
export function retryDelay(t: Pick<Transport, 'retry' | 'random'>, attempt: number, retryAfterMs?: number): number {
  const backoff = Math.min(t.retry.maxDelayMs, t.retry.baseDelayMs * 2 ** attempt);
  if (retryAfterMs !== undefined) {
    // Honor the server's wait, plus up to 10% jitter so a fleet of clients does not return in lockstep.
    const wait = Math.min(retryAfterMs, t.retry.maxRetryAfterMs);
    return Math.round(wait + t.random() * wait * 0.1);
  }
  return Math.round(t.random() * backoff);
}

/** The error of an aborted call (`signal` aborted by the caller, or close()'s deadline). */
export function abortedError(what: string, signal: AbortSignal): MeterlineError {
  const reason = signal.reason as { message?: unknown } | undefined;
  const why = typeof reason?.message === 'string' ? `: ${reason.message}` : '';
  return new MeterlineError(`aborted${why}: ${what}`, { status: 0, code: 'aborted', cause: signal.reason });
}

/**
 * The reason under a failed fetch: Node's fetch throws `TypeError('fetch failed')` with the real error
 * (`{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:9' }`, or an AggregateError of one per
 * address tried) in `cause`. Returns the text to show and the first system error code found.
 */
export function describeFailure(err: unknown): { text: string; code?: string } {
  const top = err as { message?: unknown; cause?: unknown } | undefined;
  const head = typeof top?.message === 'string' && top.message ? top.message : String(err);
  let code: string | undefined;
  const parts: string[] = [];
  let cur: unknown = top?.cause;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 4; depth++) {
    const c = cur as { message?: unknown; code?: unknown; errors?: unknown; cause?: unknown };
    const cCode = typeof c.code === 'string' ? c.code : undefined;
    code ??= cCode;
    let msg = typeof c.message === 'string' ? c.message : '';
    if (!msg && Array.isArray(c.errors)) {
      msg = c.errors
        .slice(0, 3)
        .map((e) => String((e as { message?: unknown })?.message ?? e))
        .join('; ');
      if (!code) {
        const inner = c.errors.find((e) => typeof (e as { code?: unknown })?.code === 'string') as { code: string } | undefined;
        code = inner?.code;
      }
    }
    if (!msg && typeof cur !== 'object') msg = String(cur);
    const piece = cCode && !msg.startsWith(cCode) ? (msg ? `${cCode}: ${msg}` : cCode) : msg;
    if (piece) parts.push(piece);
    cur = c.cause;
  }
  return { text: parts.length ? `${head} (${parts.join(' <- ')})` : head, ...(code !== undefined ? { code } : {}) };
}

/** Waits `ms` (via the transport's sleep) unless `signal` aborts first (then rejects with `aborted`). */
export function sleepFor(t: Pick<Transport, 'sleep'>, ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  if (!signal) return t.sleep(ms);
  if (signal.aborted) return Promise.reject(abortedError(what, signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(abortedError(what, signal));
    signal.addEventListener('abort', onAbort, { once: true });
    t.sleep(ms).then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** One HTTP attempt. Network failures, timeouts and aborts become MeterlineError with status 0. */
export async function attempt(t: Transport, method: string, url: string, body?: unknown, opts: CallOptions = {}): Promise<RawResponse> {
  const what = `${method} ${url}`;
  if (opts.signal?.aborted) throw abortedError(what, opts.signal);
  const timeoutMs = opts.timeoutMs ?? t.timeoutMs;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = () => controller.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const started = Date.now();
  const fail = (err: unknown, reading: boolean): MeterlineError => {
    if (opts.signal?.aborted) return abortedError(what, opts.signal);
    if (timedOut)
      return new MeterlineError(`${reading ? 'timed out reading the response' : `request timed out after ${timeoutMs} ms`}: ${what}`, {
        status: 0,
        code: 'timeout',
        cause: err,
      });
    const d = describeFailure(err);
    return new MeterlineError(`${reading ? 'failed reading the response' : 'network error'}: ${what}: ${d.text}`, {
      status: 0,
      code: 'network_error',
      cause: err,
      ...(d.code !== undefined ? { causeCode: d.code } : {}),
    });
  };
  try {
    let res: Response;
    try {
      res = await t.fetch(url, {
        method,
        headers: {
          'x-api-key': t.apiKey,
          accept: 'application/json',
          'user-agent': t.userAgent,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: controller.signal,
      });
    } catch (err) {
      const e = fail(err, false);
      t.logger.debug?.(`[meterline] ${what} failed after ${Date.now() - started} ms: ${e.message}`);
      throw e;
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw fail(err, true);
    }
    let parsed: unknown;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    t.logger.debug?.(`[meterline] ${what} -> ${res.status} in ${Date.now() - started} ms`);
    return { status: res.status, body: parsed, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** The `{ error: { code, message, details } }` body of the services as a MeterlineError. */
export function errorOf(res: RawResponse, what: string): MeterlineError {
  const e = (res.body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const code = typeof e?.code === 'string' ? e.code : `http_${res.status}`;
  const message = typeof e?.message === 'string' ? e.message : typeof res.body === 'string' ? res.body.slice(0, 200) : `HTTP ${res.status}`;
  return new MeterlineError(`${what}: ${res.status} ${code}: ${message}`, {
    status: res.status,
    code,
    details: e?.details,
    ...(res.retryAfterMs !== undefined ? { retryAfterSeconds: res.retryAfterMs / 1000 } : {}),
  });
}

export const isRetryableStatus = (status: number): boolean => status === 503 || status === 429;
