// ClickHouse usage readings for checks, per (org, customer, metric version, window), each with the
// aggregator watermarks read just before its query (ledger.ts explains why the pair is what makes a
// cached value safe to combine with the grant ledger). The one bound that matters: a check never uses
// a reading whose watermarks were read more than `maxAgeMs` ago (default 250 ms) — no stale-while-
// revalidate past that. To keep the hot path off ClickHouse, a reading older than half the bound is
// refreshed in the background while it is still served; at most one load per key is in flight.
import { LRUCache } from 'lru-cache';
import type { UsageReading } from './ledger.ts';

interface InFlight {
  startedAtMs: number;
  promise: Promise<UsageReading>;
}

export class UsageReadings {
  private readonly entries: LRUCache<string, UsageReading>;
  private readonly inFlight = new Map<string, InFlight>();

  constructor(
    readonly maxAgeMs = 250,
    maxEntries = 50_000,
    private readonly clock: () => number = Date.now,
  ) {
    this.entries = new LRUCache({ max: maxEntries });
  }

  /**
   * A reading at most `maxAgeMs` old, and read after `newerThanMs` when given (a reading the ledger
   * answered "stale" to). `load` reads the watermarks, then ClickHouse, and stamps `readAtMs`.
   */
  async get(key: string, load: () => Promise<UsageReading>, newerThanMs?: number): Promise<UsageReading> {
    const now = this.clock();
    const oldest = Math.max(now - this.maxAgeMs, newerThanMs === undefined ? -Infinity : newerThanMs + 1);
    const cached = this.entries.get(key);
    if (cached && cached.readAtMs >= oldest) {
      if (now - cached.readAtMs >= this.maxAgeMs / 2) this.load(key, load, -Infinity).catch(() => undefined);
      return cached;
    }
    return this.load(key, load, oldest);
  }

  /** Joins a load that started at or after `notBeforeMs` (its reading is recent enough), else starts one. */
  private load(key: string, load: () => Promise<UsageReading>, notBeforeMs: number): Promise<UsageReading> {
    const running = this.inFlight.get(key);
    if (running && running.startedAtMs >= notBeforeMs) return running.promise;
    const flight: InFlight = {
      startedAtMs: this.clock(),
      promise: load().then((r) => {
        const prev = this.entries.get(key);
        if (!prev || prev.readAtMs <= r.readAtMs) this.entries.set(key, r);
        return r;
      }),
    };
    this.inFlight.set(key, flight);
    const clear = () => {
      if (this.inFlight.get(key) === flight) this.inFlight.delete(key);
    };
    flight.promise.then(clear, clear);
    return flight.promise;
  }

  clear(): void {
    this.entries.clear();
  }
}
