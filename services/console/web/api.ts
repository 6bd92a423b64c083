// The console's only way to the server: the public API under the same origin (the console service
// forwards /v1/* to billing, the aggregator's debugger and the gateway). The organization's API key
// lives in sessionStorage (this tab only, gone when it closes) and is sent as X-API-KEY, never in a URL.
const KEY = 'meterline.apiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  signIn: (key: string) => sessionStorage.setItem(KEY, key),
  signOut: () => {
    sessionStorage.removeItem(KEY);
    window.dispatchEvent(new Event('meterline:signed-out'));
  },
};

export type Query = Record<string, string | number | boolean | undefined | null>;

export function qs(q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

async function call<T>(
  method: string,
  path: string,
  opts: { query?: Query; body?: unknown; accept?: string; key?: string } = {},
): Promise<T> {
  const key = opts.key ?? session.key();
  const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
  if (key) headers['x-api-key'] = key;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path + qs(opts.query), {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'omit',
  });
  const text = await res.text();
  if (res.status === 401 && !opts.key) session.signOut();
  if (!res.ok && res.status !== 207) {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    const b = body as { error?: string; message?: string };
    throw new ApiError(res.status, b?.error ?? `http_${res.status}`, b?.message ?? `${method} ${path} answered ${res.status}`, body);
  }
  return (opts.accept && opts.accept !== 'application/json' ? text : text ? JSON.parse(text) : null) as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => call<T>('GET', path, { query }),
  getText: (path: string, accept: string) => call<string>('GET', path, { accept }),
  post: <T>(path: string, body: unknown) => call<T>('POST', path, { body }),
  /** Checks a key before keeping it: any organization-scoped read answers 401 to a bad key. */
  verify: (key: string) => call<unknown>('GET', '/v1/customers', { query: { limit: 1 }, key }),
};

export interface Page<T> {
  data: T[];
  limit: number;
  offset: number;
  has_more: boolean;
  next_offset: number | null;
}

export const seg = encodeURIComponent;
