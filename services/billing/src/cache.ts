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
interface Entry<V> { value?: V; loaded: boolean; expires: number; refreshing?: Promise<V> }

export class TtlCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  constructor(private readonly ttlMs: number, private readonly maxEntries = 50_000) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const existing = this.map.get(key);
    if (existing?.loaded && existing.expires > Date.now()) return Promise.resolve(existing.value as V);
    const entry: Entry<V> = existing ?? { loaded: false, expires: 0 };
    if (!entry.refreshing) {
      entry.refreshing = load().then(
        (value) => {
          entry.value = value;
          entry.loaded = true;
          entry.expires = Date.now() + this.ttlMs;
          entry.refreshing = undefined;
          return value;
        },
        (err: unknown) => {
          entry.refreshing = undefined;
          if (!entry.loaded && this.map.get(key) === entry) this.map.delete(key);
          throw err;
        },
      );
      if (!existing) {
        if (this.map.size >= this.maxEntries) this.map.clear();
        this.map.set(key, entry);
      }
    }
    return entry.loaded ? Promise.resolve(entry.value as V) : entry.refreshing;
  }

  deletePrefix(prefix: string): void {
    for (const k of this.map.keys()) if (k.startsWith(prefix)) this.map.delete(k);
  }

  clear(): void { this.map.clear(); }
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
