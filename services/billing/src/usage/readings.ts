// ClickHouse usage readings for checks, per (org, customer, metric version, window), each with the
// aggregator watermarks read just before its query (ledger.ts explains why the pair is what makes a
// cached value safe to combine with the grant ledger: a reading's age never affects how grants are
// counted, only how recent the gateway usage it shows is).
//   - Consuming checks (strict): never a reading whose watermarks were read more than `maxAgeMs` ago
//     (default 2 s, BILLING_USAGE_MAX_AGE_MS): no stale-while-revalidate past that bound, which is F in the guarantee.
//   - Reads (non-consuming checks, entitlements, customer_access; they grant nothing): a reading up to
//     `readStaleMs` old (default 5 s) is served at once while a refresh runs.
//   - Either way, a reading older than half of `maxAgeMs` is refreshed in the background while it is
//     served, so steady traffic rarely waits for ClickHouse; at most one load per key is in flight.
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
    readonly maxAgeMs = 2_000,
    readonly readStaleMs = 5_000,
    maxEntries = 50_000,
    private readonly clock: () => number = Date.now,
  ) {
    this.entries = new LRUCache({ max: maxEntries });
  }

  /**
   * A reading for `key`: at most `maxAgeMs` old when `strict` (else at most `readStaleMs`), and read
   * after `newerThanMs` when given (a reading the ledger answered "stale" to). `load` reads the
   * watermarks, then ClickHouse, and stamps `readAtMs`.
   */
  async get(key: string, load: () => Promise<UsageReading>, opts: { strict: boolean; newerThanMs?: number }): Promise<UsageReading> {
    const now = this.clock();
    const bound = opts.strict ? this.maxAgeMs : Math.max(this.maxAgeMs, this.readStaleMs);
    const oldest = Math.max(now - bound, opts.newerThanMs === undefined ? -Infinity : opts.newerThanMs + 1);
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
