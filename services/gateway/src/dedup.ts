// Deduplication claims in Redis (protocol in README "Deduplication").
//
//   key   ml:gw:dedup:{<org>}:<base64 of the first 16 bytes of sha256(idempotency_id)> (core's redisKeys)
//         ({org} is a Redis Cluster hash tag: one organization's keys share a slot, so the Lua release
//         and the pipelines stay valid on a cluster.)
//   claim SET key pending:<token> NX PX <claimTtl> GET   → nil: ours | "done": duplicate | "pending:*": in flight
//   ack   SET key done PX <dedupWindow>                  (after Kafka acknowledged)
//   fail  compare-and-delete our pending:<token> (Lua)   (Kafka failed: the client's retry must succeed)
// A gateway that dies between claim and ack leaves a pending claim that expires after claimTtl, so the
// client's retry is then accepted (status "retry" until then, never "duplicate").
import { randomBytes } from 'node:crypto';
import { redisKeys, type Redis } from '@meterline/core';

export type ClaimOutcome = 'claimed' | 'duplicate' | 'in_flight';

const RELEASE_SCRIPT = `
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n`;

export function dedupKey(organizationId: string, idempotencyId: string): string {
  return redisKeys.gatewayDedup(organizationId, idempotencyId);
}

export class DedupStore {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { claimTtlMs: number; windowMs: number },
  ) {}

  /** A token unique to one request: its claims can only be released by it. */
  newToken(): string {
    return `pending:${randomBytes(12).toString('base64url')}`;
  }

  /** Claims every id in one pipeline round trip. Throws when Redis fails (the caller answers 503). */
  async claim(organizationId: string, ids: readonly string[], token: string): Promise<ClaimOutcome[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.set(dedupKey(organizationId, id), token, 'PX', this.opts.claimTtlMs, 'NX', 'GET');
    const replies = await pipeline.exec();
    if (!replies) throw new Error('redis pipeline aborted');
    return replies.map(([err, value]) => {
      if (err) throw err;
      if (value === null) return 'claimed';
      if (value === 'done') return 'duplicate';
      return 'in_flight';
    });
  }

  /** Marks ids as done for the dedup window (after Kafka acknowledged them). */
  async commit(organizationId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.set(dedupKey(organizationId, id), 'done', 'PX', this.opts.windowMs);
    const replies = await pipeline.exec();
    if (!replies) throw new Error('redis pipeline aborted');
    for (const [err] of replies) if (err) throw err;
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
}
