// Small in-process TTL caches for the entitlement hot path.
//   - customer snapshots (customer, active subscriptions with their plan versions, features, metrics):
//     TTL 5 s; invalidated at once in this process by every write that changes them (customer
//     update/archive, subscription create/cancel/change/renew, plan edit/archive, feature or metric
//     change). Another billing instance sees a change within the TTL.
//   - ClickHouse usage per (org, customer, metric version, window): TTL 250 ms, one refresh at a time.
//     Checks that consume are exact regardless (the Redis ledger holds their units); the TTL only
//     delays events that arrive through the gateway by at most 250 ms on top of aggregation lag.
//   The TTL counts from when a load finishes (not when it starts: under load a ClickHouse query can take
//   longer than the TTL, and the entry would be born expired). While one refresh runs, callers get the
//   previous value (stale-while-revalidate), so a value is at most TTL + one query old and at most one
//   load per key is in flight.
import { LRUCache } from 'lru-cache';

// Built on lru-cache (bounded LRU, per-entry TTL, one in-flight fetch per key, stale-while-revalidate)
// instead of a hand-rolled map. Times come from Date.now() so that tests can use fake timers.
const wallClock = { now: () => Date.now() };

export class TtlCache<V> {
  // values are boxed: lru-cache cannot hold null/undefined, and "not found" (null) is cached too
  private readonly lru: LRUCache<string, { v: V }, () => Promise<V>>;

  constructor(ttlMs: number, maxEntries = 50_000) {
    this.lru = new LRUCache<string, { v: V }, () => Promise<V>>({
      max: maxEntries,
      ttl: ttlMs, // set when a fetch resolves: the TTL counts from load completion
      allowStale: true, // an expired value is served while its one refresh runs
      noDeleteOnFetchRejection: true,
      perf: wallClock,
      fetchMethod: async (_key, _stale, { context }) => ({ v: await context() }),
    });
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const box = await this.lru.fetch(key, { context: load });
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

export class CatalogCache {
  readonly customers: TtlCache<unknown>;
  readonly usage: TtlCache<number>;
  constructor(opts: { snapshotTtlMs?: number; usageTtlMs?: number } = {}) {
    this.customers = new TtlCache(opts.snapshotTtlMs ?? 5_000);
    this.usage = new TtlCache(opts.usageTtlMs ?? 250);
  }
  invalidateCustomer(orgId: string, customerId: string): void {
    this.customers.deletePrefix(`${orgId}\u0000${customerId}\u0000`);
  }
  invalidateOrg(orgId: string): void {
    this.customers.deletePrefix(`${orgId}\u0000`);
  }
}
