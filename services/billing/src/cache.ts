// Small in-process TTL caches for the entitlement hot path.
//   - customer snapshots (customer, active subscriptions with their plan versions, features, metrics):
//     TTL 5 s; invalidated at once in this process by every write that changes them (customer
//     update/archive, subscription create/cancel/change/renew, plan edit/archive, feature or metric
//     change). Another billing instance sees a change within the TTL.
//   - ClickHouse usage per (org, customer, metric version, window): TTL 250 ms with in-flight sharing.
//     Checks that consume are exact regardless (the Redis ledger holds their units); the TTL only
//     delays events that arrive through the gateway by at most 250 ms on top of aggregation lag.
export class TtlCache<V> {
  private readonly map = new Map<string, { value: Promise<V>; expires: number }>();
  constructor(private readonly ttlMs: number, private readonly maxEntries = 50_000) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const hit = this.map.get(key);
    if (hit && hit.expires > now) return hit.value;
    const value = load();
    if (this.map.size >= this.maxEntries) this.map.clear();
    this.map.set(key, { value, expires: now + this.ttlMs });
    value.catch(() => { if (this.map.get(key)?.value === value) this.map.delete(key); });
    return value;
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
