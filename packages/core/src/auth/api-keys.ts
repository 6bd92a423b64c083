// Organization API keys. A key is shown once at creation; only its SHA-256 hash and a short prefix
// (for listing) are stored. Keys are 32 random bytes, so a fast hash is enough: there is nothing to
// brute-force, unlike passwords.
import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PgPool } from '../clients/postgres.ts';
import type { Redis } from '../clients/redis.ts';
import { redisKeys } from '../clients/redis-keys.ts';
import { followChannel, type ChannelFollower } from '../clients/redis-follow.ts';

export const API_KEY_PREFIX = 'ml_';

export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = API_KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, prefix: key.slice(0, 10), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export interface ApiKeyOwner {
  organizationId: string;
  keyId: string;
}

/** Finds the organization of an active key, or null. */
export async function findApiKeyOwner(pool: PgPool, key: string): Promise<ApiKeyOwner | null> {
  const { rows } = await pool.query<{ organization_id: string; id: string }>(
    `SELECT k.organization_id, k.id FROM api_keys k
       JOIN organizations o ON o.id = k.organization_id
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND o.archived_at IS NULL`,
    [hashApiKey(key)],
  );
  const row = rows[0];
  return row ? { organizationId: row.organization_id, keyId: row.id } : null;
}

/** Redis pub/sub channel announcing that API keys were revoked or an organization archived. */
export const API_KEYS_CHANGED_CHANNEL: string = redisKeys.apiKeysChangedChannel;

/** Tells every ApiKeyCache (all services) to forget what it cached. Call after the change is committed. */
export async function publishApiKeysChanged(
  redis: Redis,
  change: { organizationId: string; keyId?: string; reason: 'revoked' | 'organization_archived' },
  channel: string = API_KEYS_CHANGED_CHANNEL,
): Promise<number> {
  return redis.publish(channel, JSON.stringify(change));
}

export interface ApiKeyCacheFollowOptions {
  channel?: string;
  /** Logger-like sink for subscriber trouble (default: silent). */
  onError?: (err: Error) => void;
  /**
   * TTL used while the subscriber is not subscribed (Redis down, reconnecting): changes could be missed
   * then, so entries live at most this long (default 1 s).
   */
  unsubscribedTtlMs?: number;
}

/**
 * Caches key lookups briefly (default 30 s for hits, 5 s for misses) so that a hot ingest path does
 * not hit Postgres per request.
 *
 * Revocation: with followChanges(redis), a duplicated Redis connection subscribes to
 * API_KEYS_CHANGED_CHANNEL and the cache is cleared on every message and every time the subscription is
 * (re)established (messages published while disconnected are lost); while not subscribed, entries live
 * at most `unsubscribedTtlMs` (1 s). So a revoked key stops working within one pub/sub delivery (ms)
 * when Redis is up and within ~1 s otherwise. Without followChanges, a revoked key works until the TTL.
 * A lookup that started before a clear does not store its (possibly stale) result.
 */
export class ApiKeyCache {
  // LRU bounded by maxEntries, a TTL per entry (hits, misses, and the short one while unsubscribed)
  private readonly entries: LRUCache<string, { owner: ApiKeyOwner | null }>;
  private generation = 0;
  private follower: ChannelFollower | null = null;
  private subscribed = true; // no subscription: plain TTL behaviour
  private unsubscribedTtlMs = 1_000;
  private closed = false;

  constructor(
    private readonly lookup: (key: string) => Promise<ApiKeyOwner | null>,
    private readonly ttlMs = 30_000,
    private readonly negativeTtlMs = 5_000,
    maxEntries = 10_000,
  ) {
    this.entries = new LRUCache({ max: maxEntries, ttl: ttlMs, ttlAutopurge: false });
  }

  async resolve(key: string): Promise<ApiKeyOwner | null> {
    const hit = this.entries.get(key);
    if (hit) return hit.owner;
    const generation = this.generation;
    const owner = await this.lookup(key);
    if (generation !== this.generation) return owner; // cleared while we looked: don't cache a stale answer
    let ttl = owner ? this.ttlMs : this.negativeTtlMs;
    if (!this.subscribed) ttl = Math.min(ttl, this.unsubscribedTtlMs);
    this.entries.set(key, { owner }, { ttl });
    return owner;
  }

  invalidate(): void {
    this.generation++;
    this.entries.clear();
  }

  /** Whether changes are being received right now (always true without followChanges). */
  get following(): boolean {
    return this.subscribed;
  }

  /**
   * Subscribes to key changes through `redis.duplicate()`. The subscriber is closed by close(), and
   * also when `redis` itself ends (quit/disconnect), so owners of the connection need no extra step.
   */
  followChanges(redis: Redis, opts: ApiKeyCacheFollowOptions = {}): this {
    if (this.follower || this.closed) return this;
    this.unsubscribedTtlMs = opts.unsubscribedTtlMs ?? 1_000;
    this.subscribed = false;
    this.follower = followChannel(redis, opts.channel ?? API_KEYS_CHANGED_CHANNEL, 'api-keys', {
      onMessage: () => this.invalidate(),
      // cleared once the subscription is confirmed: nothing published after this can be missed
      onSubscribed: () => {
        this.invalidate();
        this.subscribed = true;
      },
      // lost it: forget entries cached under the long TTL; new ones live unsubscribedTtlMs
      onLost: () => {
        if (this.subscribed) this.invalidate();
        this.subscribed = false;
      },
      onError: opts.onError,
    });
    redis.once('end', () => {
      void this.close();
    });
    return this;
  }

  /** Stops following changes (closes the subscriber connection). */
  async close(): Promise<void> {
    this.closed = true;
    this.follower?.close();
    this.follower = null;
    this.subscribed = true;
  }
}

/** Extracts the API key from X-API-KEY or Authorization: Bearer. */
export function apiKeyFromHeaders(headers: Record<string, string | string[] | undefined>): string | null {
  const direct = headers['x-api-key'];
  if (typeof direct === 'string' && direct.length > 0) return direct.trim();
  const auth = headers['authorization'];
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1]!.trim();
  }
  return null;
}
