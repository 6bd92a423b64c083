// Idempotency of requests that consume units (POST /v1/usage, POST /v1/check with send_event): the first
// answer to an `idempotency_key` is stored in Redis and every retry with the same key gets it back.
//
// One Redis key per (organization, idempotency key): redisKeys.billingIdempotency. It holds JSON:
//   pending {s:'p', t:<token>, f:<fingerprint>}   while one request executes (claim TTL 30 s, renewed
//                                                 every 10 s while it runs; a crashed instance's claim expires)
//   done    {s:'d', f, st:<status>, b:<body>, at}  the first successful answer, kept `retentionMs` (24 h)
// The fingerprint is a SHA-256 of the route and the canonical JSON of the validated body (defaults
// applied, `idempotency_key` left out), so the same key with a different body is refused (409
// `idempotency_key_reused`), and so is the same key on the other route.
//
// Only 2xx answers are stored (a denied check is a 200 and is stored). A failure (4xx, 503, 500, crash)
// releases the claim, so a retry executes again. Concurrent requests with one key: exactly one
// executes; the others poll Redis for its answer up to `waitMs` (5 s) and replay it, or get 409
// `idempotency_key_in_progress` with Retry-After: 1 (the SDK retries that).
//
// What protects the counts when the answer never got stored (crash between the Kafka produce and the
// store): the events' idempotency ids are derived from the key (recorder.ts idempotentEventIds), so a
// re-execution produces the same ids and the aggregator counts them once. Only the Redis usage ledger
// may then over-count (conservatively) until its key idles out (usage/ledger.ts).
import { createHash, randomUUID } from 'node:crypto';
import { redisKeys, type Logger, type Redis } from '@meterline/core';

export interface IdempotencyOptions {
  /** How long a first answer is replayed. Default 24 h. */
  retentionMs?: number;
  /** Claim of an executing request; renewed while it runs, expires if its instance dies. Default 30 s. */
  claimTtlMs?: number;
  /** How long a concurrent request waits for the executing one's answer. Default 5 s. */
  waitMs?: number;
  /** Poll interval while waiting. Default 20 ms. */
  pollMs?: number;
  logger?: Logger;
}

export const IDEMPOTENCY_RETENTION_MS = 24 * 3_600_000;

export type IdempotentOutcome<T> =
  | { kind: 'executed'; status: number; body: T }
  | { kind: 'replayed'; status: number; body: T }
  | { kind: 'reused' }
  | { kind: 'in_progress' };

interface Pending {
  s: 'p';
  t: string;
  f: string;
}
interface Done {
  s: 'd';
  f: string;
  st: number;
  b: unknown;
  at: string;
}
type Stored = Pending | Done;

// claim if free; else the current record
const BEGIN = `
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if ok then return false end
return redis.call('GET', KEYS[1])
`;
// store the answer unless another request owns the key now (its claim, or its answer)
const FINISH = `
local raw = redis.call('GET', KEYS[1])
if raw then
  local cur = cjson.decode(raw)
  if cur.s ~= 'p' or cur.t ~= ARGV[1] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;
// our claim only: release (failure) or renew (still running)
const RELEASE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local cur = cjson.decode(raw)
if cur.s ~= 'p' or cur.t ~= ARGV[1] then return 0 end
if ARGV[2] == 'del' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/** What makes two requests "the same": the route and the body without its idempotency_key. */
export function requestFingerprint(route: string, body: Record<string, unknown>): string {
  const { idempotency_key: _ignored, ...rest } = body;
  return createHash('sha256')
    .update(`${route}\n${canonicalJson(rest)}`, 'utf8')
    .digest('hex');
}

type Scripted = Record<string, (...a: unknown[]) => Promise<unknown>>;

export class IdempotencyStore {
  private readonly retentionMs: number;
  private readonly claimTtlMs: number;
  private readonly waitMs: number;
  private readonly pollMs: number;
  private readonly logger: Logger | undefined;

  constructor(
    private readonly redis: Redis,
    opts: IdempotencyOptions = {},
  ) {
    this.retentionMs = opts.retentionMs ?? IDEMPOTENCY_RETENTION_MS;
    this.claimTtlMs = opts.claimTtlMs ?? 30_000;
    this.waitMs = opts.waitMs ?? 5_000;
    this.pollMs = opts.pollMs ?? 20;
    this.logger = opts.logger;
    redis.defineCommand('mlIdemBegin', { numberOfKeys: 1, lua: BEGIN });
    redis.defineCommand('mlIdemFinish', { numberOfKeys: 1, lua: FINISH });
    redis.defineCommand('mlIdemRelease', { numberOfKeys: 1, lua: RELEASE });
  }

  private get cmd(): Scripted {
    return this.redis as unknown as Scripted;
  }

  /**
   * Runs `exec` once per (organization, key): the first request executes and its 2xx answer is stored;
   * later ones with the same fingerprint replay it. `exec` returns the answer (status 200) or throws
   * (nothing stored, claim released, the error propagates).
   */
  async run<T>(orgId: string, key: string, fingerprint: string, exec: () => Promise<T>): Promise<IdempotentOutcome<T>> {
    const rkey = redisKeys.billingIdempotency(orgId, key);
    const token = randomUUID();
    const pending: Pending = { s: 'p', t: token, f: fingerprint };
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const raw = (await this.cmd['mlIdemBegin']!(rkey, JSON.stringify(pending), String(this.claimTtlMs))) as string | null;
      if (raw === null) return this.execute(rkey, token, fingerprint, exec);
      const cur = JSON.parse(raw) as Stored;
      if (cur.f !== fingerprint) return { kind: 'reused' };
      if (cur.s === 'd') return { kind: 'replayed', status: cur.st, body: cur.b as T };
      // another request with this key is executing: wait for its answer (or for its claim to go away)
      if (Date.now() >= deadline) return { kind: 'in_progress' };
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  private async execute<T>(rkey: string, token: string, fingerprint: string, exec: () => Promise<T>): Promise<IdempotentOutcome<T>> {
    const renew = setInterval(
      () => {
        this.cmd['mlIdemRelease']!(rkey, token, String(this.claimTtlMs)).catch(() => undefined);
      },
      Math.max(100, Math.floor(this.claimTtlMs / 3)),
    );
    renew.unref();
    let body: T;
    try {
      body = await exec();
    } catch (err) {
      await this.cmd['mlIdemRelease']!(rkey, token, 'del').catch(() => undefined);
      throw err;
    } finally {
      clearInterval(renew);
    }
    // JSON round trip: the first answer is exactly what a replay returns
    const stored = JSON.parse(JSON.stringify(body)) as T;
    const done: Done = { s: 'd', f: fingerprint, st: 200, b: stored, at: new Date().toISOString() };
    // If this fails (Redis gone) the answer is still returned; the claim expires and a retry executes
    // again with the same derived event ids (counted once downstream).
    await this.cmd['mlIdemFinish']!(rkey, token, JSON.stringify(done), String(this.retentionMs)).catch((err) => {
      this.logger?.error({ err }, 'storing the first answer of an idempotency key failed (a retry will execute again)');
    });
    return { kind: 'executed', status: 200, body: stored };
  }
}
