// Deduplication claims in Redis (protocol in README "Deduplication").
//
//   key   ml:gw:dedup:{<org>}:<base64 of the first 16 bytes of sha256(idempotency_id)> (core's redisKeys)
//         ({org} is a Redis Cluster hash tag: one organization's keys share a slot, so the Lua release
//         and the pipelines stay valid on a cluster.)
//   claim SET key pending:<token> NX PX <claimTtl> GET   → nil: ours | "done": duplicate | "pending:*": in flight
//         (per key, inside one Lua script per request)
//   ack   SET key done PX <dedupWindow>                  (after Kafka acknowledged; one Lua script per request)
//   fail  compare-and-delete our pending:<token> (Lua)   (Kafka failed: the client's retry must succeed)
// A gateway that dies between claim and ack leaves a pending claim that expires after claimTtl, so the
// client's retry is then accepted (status "retry" until then, never "duplicate").
import { randomBytes } from 'node:crypto';
import { redisKeys, type Redis } from '@meterline/core';

export type ClaimOutcome = 'claimed' | 'duplicate' | 'in_flight';

// claim and commit are ONE script call per request instead of one SET per id: with 1,000 ids a pipeline
// cost the gateway ~24 µs of CPU per event in ioredis (a Command object, argument encoding and a reply per
// SET), more than validation, Avro and Kafka encoding together (docs/benchmarks.md, "Gateway profile").
// Each script runs exactly the per-key commands of the protocol above, so the keys, values and TTLs in
// Redis are the same as with the pipelines; a script is also atomic, which the protocol does not need but
// does not mind. ioredis' defineCommand sends EVALSHA and falls back to EVAL after NOSCRIPT (a restarted
// or failed-over Redis), so a lost script cache is not an error.
const CLAIM_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local old = redis.call('SET', key, ARGV[1], 'PX', ARGV[2], 'NX', 'GET')
  if not old then out[i] = 0 elseif old == 'done' then out[i] = 1 else out[i] = 2 end
end
return out`;

const COMMIT_SCRIPT = `
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 'done', 'PX', ARGV[1])
end
return #KEYS`;

const RELEASE_SCRIPT = `
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n`;

/** Keys per script call: bounds how long one call holds Redis (~1 ms per 1,000 keys). */
const KEYS_PER_CALL = 1000;

const OUTCOMES: readonly ClaimOutcome[] = ['claimed', 'duplicate', 'in_flight'];

type ScriptedRedis = Redis & {
  gwDedupClaim(n: number, ...keysThenArgs: string[]): Promise<number[]>;
  gwDedupCommit(n: number, ...keysThenArgs: string[]): Promise<number>;
};

export function dedupKey(organizationId: string, idempotencyId: string): string {
  return redisKeys.gatewayDedup(organizationId, idempotencyId);
}

export class DedupStore {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly opts: { claimTtlMs: number; windowMs: number },
  ) {
    // defineCommand is idempotent per name; a Redis shared with other code only gains two methods.
    const r = redis as ScriptedRedis;
    if (typeof r.gwDedupClaim !== 'function') r.defineCommand('gwDedupClaim', { lua: CLAIM_SCRIPT });
    if (typeof r.gwDedupCommit !== 'function') r.defineCommand('gwDedupCommit', { lua: COMMIT_SCRIPT });
    this.redis = r;
  }

  /** A token unique to one request: its claims can only be released by it. */
  newToken(): string {
    return `pending:${randomBytes(12).toString('base64url')}`;
  }

  /** Claims every id (one script call per 1,000). Throws when Redis fails (the caller answers 503). */
  async claim(organizationId: string, ids: readonly string[], token: string): Promise<ClaimOutcome[]> {
    if (ids.length === 0) return [];
    const ttl = String(this.opts.claimTtlMs);
    const out: ClaimOutcome[] = new Array(ids.length);
    for (let start = 0; start < ids.length; start += KEYS_PER_CALL) {
      const keys = this.keysOf(organizationId, ids, start);
      const replies = await this.redis.gwDedupClaim(keys.length, ...keys, token, ttl);
      if (!Array.isArray(replies) || replies.length !== keys.length) throw new Error('unexpected reply from the dedup claim script');
      for (let i = 0; i < replies.length; i++) out[start + i] = OUTCOMES[replies[i]!] ?? 'in_flight';
    }
    return out;
  }

  /** Marks ids as done for the dedup window (after Kafka acknowledged them). */
  async commit(organizationId: string, ids: readonly string[]): Promise<void> {
    const window = String(this.opts.windowMs);
    for (let start = 0; start < ids.length; start += KEYS_PER_CALL) {
      const keys = this.keysOf(organizationId, ids, start);
      await this.redis.gwDedupCommit(keys.length, ...keys, window);
    }
  }

  /** Deletes our pending claims (only those still holding our token). Returns how many were released. */
  async release(organizationId: string, ids: readonly string[], token: string): Promise<number> {
    if (ids.length === 0) return 0;
    let released = 0;
    // Chunked: one EVAL with thousands of keys would block Redis for long.
    for (let i = 0; i < ids.length; i += 500) {
      const keys = ids.slice(i, i + 500).map((id) => dedupKey(organizationId, id));
      released += Number(await this.redis.eval(RELEASE_SCRIPT, keys.length, ...keys, token));
    }
    return released;
  }

  private keysOf(organizationId: string, ids: readonly string[], start: number): string[] {
    const end = Math.min(ids.length, start + KEYS_PER_CALL);
    const keys: string[] = new Array(end - start);
    for (let i = start; i < end; i++) keys[i - start] = dedupKey(organizationId, ids[i]!);
    return keys;
  }
}
