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

export interface Transport {
  fetch: FetchLike;
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

/** One HTTP attempt. Network failures and timeouts become MeterlineError with status 0. */
export async function attempt(t: Transport, method: string, url: string, body?: unknown): Promise<RawResponse> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), t.timeoutMs);
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
    clearTimeout(timer);
    const timedOut = controller.signal.aborted;
    throw new MeterlineError(
      timedOut
        ? `request timed out after ${t.timeoutMs} ms: ${method} ${url}`
        : `network error: ${method} ${url}: ${(err as Error)?.message ?? String(err)}`,
      {
        status: 0,
        code: timedOut ? 'timeout' : 'network_error',
        cause: err,
      },
    );
  }
  try {
    const text = await res.text();
    let parsed: unknown;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: res.status, body: parsed, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
  } catch (err) {
    const timedOut = controller.signal.aborted;
    throw new MeterlineError(`${timedOut ? 'timed out' : 'failed'} reading the response: ${method} ${url}`, {
      status: 0,
      code: timedOut ? 'timeout' : 'network_error',
      cause: err,
    });
  } finally {
    clearTimeout(timer);
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
