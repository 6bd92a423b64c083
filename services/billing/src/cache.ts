// Small in-process caches for the entitlement hot path (the bounds are documented in README.md, "Caches").
//   - catalog entries (customer snapshots: customer, active subscriptions with their plan versions,
//     features, metrics; and feature lookups, including "not found"): TTL 5 s (not found: 1 s). Every
//     write that changes them (customer create/update/archive, subscription create/cancel/change/renew/
//     close, plan create/edit/archive, feature or metric create/change) drops them at once in this
//     process and publishes on `redisKeys.billingCatalogChangedChannel`; every other billing instance
//     drops them when the message arrives (milliseconds). While an instance is not subscribed (Redis
//     down, subscriber connection lost, before the first SUBSCRIBE is confirmed) it stores entries for
//     at most `unsubscribedTtlMs` (1 s) and clears everything when the subscription is (re)confirmed, so
//     a message missed while unsubscribed delays a change by at most that TTL.
//   (ClickHouse usage readings for checks are not here: usage/readings.ts, bounded by age, not TTL.)
//   The TTL counts from when a load finishes (not when it starts: under load a query can take longer
//   than the TTL, and the entry would be born expired). While one refresh runs, callers get the
//   previous value (stale-while-revalidate), so a value is at most TTL + one query old and at most one
//   load per key is in flight. A load that races with an invalidation is never stored (lru-cache aborts
//   the in-flight fetch on delete/clear); its caller still gets the value it loaded.
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { followChannel, redisKeys, type ChannelFollower, type Redis } from '@meterline/core';

// Built on lru-cache (bounded LRU, per-entry TTL, one in-flight fetch per key, stale-while-revalidate)
// instead of a hand-rolled map. Times come from Date.now() so that tests can use fake timers.
const wallClock = { now: () => Date.now() };

export class TtlCache<V> {
  // values are boxed: lru-cache cannot hold null/undefined, and "not found" (null) is cached too
  private readonly lru: LRUCache<string, { v: V }, () => Promise<V>>;

  /** `ttlFor` (optional) picks the TTL of a loaded value (e.g. shorter for "not found"). */
  constructor(ttlMs: number, maxEntries = 50_000, ttlFor?: (v: V) => number) {
    this.lru = new LRUCache<string, { v: V }, () => Promise<V>>({
      max: maxEntries,
      ttl: ttlMs, // set when a fetch resolves: the TTL counts from load completion
      allowStale: true, // an expired value is served while its one refresh runs
      noDeleteOnFetchRejection: true,
      perf: wallClock,
      fetchMethod: async (_key, _stale, { context, options }) => {
        const v = await context();
        if (ttlFor) options.ttl = Math.max(1, ttlFor(v));
        return { v };
      },
    });
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    let mine: Promise<V> | undefined;
    let box: { v: V } | undefined;
    try {
      box = await this.lru.fetch(key, {
        context: () => {
          mine = load();
          return mine;
        },
      });
    } catch (err) {
      // The entry was deleted/cleared while loading (the fetch is aborted and nothing is stored), or
      // the load failed. Our own load: its outcome is the answer. A load we joined: load afresh.
      if (mine) return await mine;
      if (isAbort(err)) return await load();
      throw err;
    }
    if (box === undefined) throw new Error(`cache load for ${key} returned nothing`);
    return box.v;
  }

  deletePrefix(prefix: string): void {
    for (const k of [...this.lru.keys()]) if (k.startsWith(prefix)) this.lru.delete(k);
  }

  clear(): void {
    this.lru.clear();
  }
}

// lru-cache rejects the fetches of a deleted/evicted/replaced key with these reasons
const isAbort = (err: unknown) => err instanceof Error && ['deleted', 'evicted', 'replaced', 'stale'].includes(err.message);

export interface CatalogFollowOptions {
  /** TTL of entries stored while not subscribed (default 1 s). */
  unsubscribedTtlMs?: number;
  /** Delay before the subscriber reconnects after losing its connection (default: ioredis' backoff). */
  reconnectDelayMs?: number;
  onError?: (err: Error) => void;
}

interface ChangeMessage {
  /** sender instance */ i: string;
  o: string;
  /** customer id; absent = the whole organization */ c?: string;
}

export class CatalogCache {
  readonly customers: TtlCache<unknown>;
  /** Identifies this process's messages (its own are not applied twice) and names its subscriber connection. */
  readonly instanceId = randomBytes(6).toString('hex');
  private readonly snapshotTtlMs: number;
  private readonly negativeTtlMs: number;
  private unsubscribedTtlMs = 1_000;
  private subscribed = true; // without followChanges: plain TTL behaviour, invalidation in this process only
  private publisher: Redis | null = null;
  private follower: ChannelFollower | null = null;
  private closed = false;
  private onError: (err: Error) => void = () => undefined;

  constructor(opts: { snapshotTtlMs?: number; negativeTtlMs?: number } = {}) {
    this.snapshotTtlMs = opts.snapshotTtlMs ?? 5_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 1_000;
    this.customers = new TtlCache<unknown>(this.snapshotTtlMs, 50_000, (v) => {
      const ttl = v === null ? Math.min(this.negativeTtlMs, this.snapshotTtlMs) : this.snapshotTtlMs;
      return this.subscribed ? ttl : Math.min(ttl, this.unsubscribedTtlMs);
    });
  }

  /** Whether changes made by other instances are being received right now (true without followChanges). */
  get following(): boolean {
    return this.subscribed;
  }

  /** Name of the subscriber connection (CLIENT LIST), set by followChanges. */
  get subscriberName(): string | null {
    return this.follower?.connectionName ?? null;
  }

  /** A customer's entries changed: dropped here at once and in every other instance (resolves once published). */
  invalidateCustomer(orgId: string, customerId: string): Promise<void> {
    this.dropCustomer(orgId, customerId);
    return this.publish({ i: this.instanceId, o: orgId, c: customerId });
  }

  /** Something org-wide changed (plan, feature, metric): every entry of the org, in every instance. */
  invalidateOrg(orgId: string): Promise<void> {
    this.dropOrg(orgId);
    return this.publish({ i: this.instanceId, o: orgId });
  }

  /** Drops a customer's entries in this process only (e.g. a snapshot past its period boundary). */
  dropCustomer(orgId: string, customerId: string): void {
    this.customers.deletePrefix(`${orgId}\u0000${customerId}\u0000`);
  }

  dropOrg(orgId: string): void {
    this.customers.deletePrefix(`${orgId}\u0000`);
  }

  private async publish(msg: ChangeMessage): Promise<void> {
    if (!this.publisher) return;
    try {
      await this.publisher.publish(redisKeys.billingCatalogChangedChannel, JSON.stringify(msg));
    } catch (err) {
      // other instances keep their entries up to the snapshot TTL (or 1 s if they lost Redis as well)
      this.onError(err as Error);
    }
  }

  private apply(raw: string): void {
    let msg: ChangeMessage;
    try {
      msg = JSON.parse(raw) as ChangeMessage;
    } catch {
      this.customers.clear(); // unreadable: be safe
      return;
    }
    if (msg.i === this.instanceId || typeof msg.o !== 'string') return;
    if (typeof msg.c === 'string') this.dropCustomer(msg.o, msg.c);
    else this.dropOrg(msg.o);
  }

  /**
   * Publishes this process's invalidations through `redis` and applies everyone else's, received on a
   * subscriber made with `redis.duplicate()` (closed by close(), or when `redis` ends). Mirrors core's
   * ApiKeyCache.followChanges: the cache is cleared once each SUBSCRIBE is confirmed, so nothing
   * published after that can be missed, and entries stored while unsubscribed live unsubscribedTtlMs.
   */
  followChanges(redis: Redis, opts: CatalogFollowOptions = {}): this {
    if (this.follower || this.closed) return this;
    this.onError = opts.onError ?? (() => undefined);
    this.unsubscribedTtlMs = opts.unsubscribedTtlMs ?? 1_000;
    this.publisher = redis;
    this.subscribed = false;
    this.follower = followChannel(
      redis,
      redisKeys.billingCatalogChangedChannel,
      `catalog-${this.instanceId}`,
      {
        onMessage: (message) => this.apply(message),
        onSubscribed: () => {
          this.customers.clear();
          this.subscribed = true;
        },
        // lost it: forget entries cached under the long TTL; new ones live unsubscribedTtlMs
        onLost: () => {
          this.subscribed = false;
          this.customers.clear();
        },
        onError: (err) => this.onError(err),
      },
      opts.reconnectDelayMs !== undefined ? { reconnectDelayMs: opts.reconnectDelayMs } : {},
    );
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
    this.publisher = null;
    this.subscribed = true;
  }
}
