// The authority for "how much of this feature has been consumed in the current usage window" when a
// check consumes balance. One Redis key per (org, customer, feature, metric version, window start).
// A Lua script makes check-and-consume atomic: it takes the larger of the key and the ClickHouse
// usage the caller just read, tests `current + required <= limit`, and on success adds `required`.
//
// Why it stays consistent with the aggregates:
//   - Every unit granted by a consuming check is also produced to Kafka as an event, so ClickHouse
//     converges to (at least) the Redis value; max(redis, clickhouse) never double counts a unit.
//   - Events that bypass checks (sent straight to the gateway) enter through the ClickHouse term,
//     i.e. with the aggregator's lag; checks never under-count their own consumption.
//   - If producing fails after a grant, the grant is refunded (decrement) and the caller gets 503.
//   - Keys expire after `idleTtlMs` without use (default 10 min, far longer than aggregation lag), so
//     a crash between grant and produce only over-counts (conservative) until the key is reseeded
//     from ClickHouse; a new window is a new key, so usage resets with the period.
// Gauges (aggregation `latest`, e.g. seats) use SET: the key holds the last value set through the API
// (or by a consuming check) and is the usage every instance reads, at once, instead of ClickHouse.
// It shadows ClickHouse until ClickHouse shows the same value (the aggregator has caught up with the
// SET's event), for at most `idleTtlMs` (10 min); once confirmed it lives only `gaugeTtlMs` (60 s)
// more, so gauge events sent straight to the gateway take over again. (Before, the key always expired
// after 60 s: when the aggregator lagged longer than that — e.g. during an outage — checks fell back to
// the old ClickHouse value, "5 after SET 1", until the aggregator caught up.) Bound: a SET back to a
// value ClickHouse already shows (5 → 1 → 5 faster than the aggregator) confirms early.
import { redisKeys, type Redis } from '@meterline/core';

const CHECK = `
local mode = ARGV[6]
local raw = redis.call('GET', KEYS[1])
local cur
local ch = tonumber(ARGV[1])
if mode == 'gauge' then
  if raw then
    cur = tonumber(raw)
    -- ClickHouse shows the value set: shorten the shadow to ARGV[7]
    if ch == cur and redis.call('PTTL', KEYS[1]) > tonumber(ARGV[7]) then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
  else
    cur = ch
  end
else
  cur = tonumber(raw or '0')
  if ch > cur then cur = ch end
end
local req = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local allowed = 0
if limit < 0 or cur + req <= limit then allowed = 1 end
if allowed == 1 and ARGV[4] == '1' then
  cur = cur + req
  redis.call('SET', KEYS[1], tostring(cur), 'PX', ARGV[5])
elseif mode ~= 'gauge' then
  redis.call('SET', KEYS[1], tostring(cur), 'PX', ARGV[5])
end
return {allowed, tostring(cur)}
`;

const REFUND = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local v = tonumber(raw) - tonumber(ARGV[1])
if v < 0 then v = 0 end
redis.call('SET', KEYS[1], tostring(v), 'KEEPTTL')
return 1
`;

export interface LedgerKey {
  orgId: string;
  customerId: string;
  featureId: string;
  metricVersion: number;
  windowStartMs: number;
}

export class UsageLedger {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { idleTtlMs?: number; gaugeTtlMs?: number } = {},
  ) {
    redis.defineCommand('mlCheckConsume', { numberOfKeys: 1, lua: CHECK });
    redis.defineCommand('mlRefund', { numberOfKeys: 1, lua: REFUND });
  }

  static key(k: LedgerKey): string {
    // a hash tag keeps one customer's keys in one slot if this ever runs on Redis Cluster
    return redisKeys.billingUsage(k);
  }

  /** Atomically: current = max(ledger, clickhouse) (gauge: ledger ?? clickhouse); allowed = current + required <= limit; consume when asked. */
  async checkAndConsume(
    k: LedgerKey,
    p: { clickhouseUsage: number; required: number; limit: number | null; consume: boolean; gauge: boolean },
  ): Promise<{ allowed: boolean; usage: number }> {
    // gauges: a consumed value shadows ClickHouse like a SET (until confirmed, at most the idle TTL)
    const ttl = this.opts.idleTtlMs ?? 600_000;
    const [allowed, cur] = await (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<[number, string]>>)[
      'mlCheckConsume'
    ]!(
      UsageLedger.key(k),
      String(p.clickhouseUsage),
      String(p.required),
      String(p.limit ?? -1),
      p.consume ? '1' : '0',
      String(ttl),
      p.gauge ? 'gauge' : 'add',
      String(this.opts.gaugeTtlMs ?? 60_000),
    );
    return { allowed: allowed === 1, usage: Number(cur) };
  }

  async refund(k: LedgerKey, amount: number): Promise<void> {
    await (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<number>>)['mlRefund']!(UsageLedger.key(k), String(amount));
  }

  /** SET behaviour (gauges): the value is the new usage, in every instance, until ClickHouse shows it (see above). */
  async set(k: LedgerKey, value: number): Promise<void> {
    await this.redis.set(UsageLedger.key(k), String(value), 'PX', this.opts.idleTtlMs ?? 600_000);
  }

  /** Adds a reported delta to an existing window key (no-op when not seeded: ClickHouse will have it). */
  async add(k: LedgerKey, delta: number): Promise<void> {
    await this.redis.eval(
      `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBYFLOAT', KEYS[1], ARGV[1]) end return 1`,
      1,
      UsageLedger.key(k),
      String(delta),
    );
  }
}
