// The usage a check sees, in one place: a ClickHouse reading taken at a known aggregator watermark,
// plus the grants that reading cannot contain yet. See services/billing/README.md, "Usage state", for
// the guarantee and the argument; in short:
//
//   usage(customer, metric, window) = U(W) + Σ { g in grants : g.offset >= W[g.partition] or g pending }
//
//   W     the aggregator's watermark vector (partition -> committed offset, Redis hash published after
//         every commit: services/aggregator/src/watermarks.ts), read BEFORE the ClickHouse query. Every
//         record below W[p] is in the aggregates, so U(W) counts every grant with offset < W[p].
//   U(W)  the ClickHouse usage read after W (readings.ts caches it, at most `maxAgeMs` old).
//   grant a unit a consuming check granted, or usage POST /v1/usage recorded, with the Kafka
//         (partition, offset) its last event landed at; "pending" while it is being produced.
//
// One Lua script per check makes read-decide-consume atomic across every billing instance (one key
// per customer and metric version; `{org:customer}` hash tag). Consequences:
//   - No double counting: a grant is in U(W) exactly when its offset < W[p]; it is added otherwise.
//     A ClickHouse read that ran ahead of W (the aggregator committed more meanwhile) can count a grant
//     twice: conservative (it may deny near a limit, never grants past one).
//   - No lost grant: a grant is pending (counted) from the moment it is decided until its produce has
//     an offset (then counted until the aggregator passes it) or failed (then refunded: removed).
//   - Pruning: grants below the caller's W and older than `keepMs` are dropped, and `floors[p]` is
//     raised above them. A reading whose W[p] is below a floor could miss a dropped grant: the script
//     answers STALE and the caller reads ClickHouse again. keepMs (10 s) is far above normal
//     aggregation lag, so that almost never happens.
//   - A grant still pending after `pendingTtlMs` (10 min: its billing instance died between the grant
//     and the produce's answer) is dropped: by then the aggregator has counted it if it was produced.
//   - Gauges (`latest`): the value of the newest not-yet-aggregated entry (SET, or a consuming check)
//     wins over ClickHouse; once the aggregator passes it, ClickHouse (which holds it) is the value.
//     `max`: the larger of ClickHouse and those entries.
//   - Keys expire `idleTtlMs` (24 h) after the last write.
// Redis must persist (AOF) for the guarantee to survive a Redis crash; a lost ledger forgets grants
// the aggregator has not counted yet (README, "Usage state").
import { redisKeys, type MetricDefinition, type Redis } from '@meterline/core';

/** Score of a grant whose produce has no offset yet (above every real offset; 2^53 - 1). */
const PENDING = 9007199254740991;

// KEYS: grants (zset), floors (hash). ARGV: 1 watermarks "p:o,p:o", 2 ClickHouse usage, 3 required,
// 4 limit (-1 = none), 5 consume 1/0, 6 aggregation sum|max|latest, 7 window start ms, 8 window end ms
// (-1 = open), 9 now ms, 10 grant id, 11 pending TTL ms, 12 keep ms, 13 idle TTL ms.
// Returns {status, usage, member}: status 1 allowed, 0 denied, -1 stale reading.
// Members are "id|partition|value|timeMs" (partition "-" while pending); usage is formatted %.17g.
const CHECK = `
local PENDING = ${PENDING}
local wm = {}
for p, o in string.gmatch(ARGV[1], '(%d+):(%d+)') do wm[p] = tonumber(o) end
local now = tonumber(ARGV[9])
local floors = redis.call('HGETALL', KEYS[2])
local lower = PENDING
for i = 1, #floors, 2 do
  local w = wm[floors[i]] or 0
  if w < tonumber(floors[i + 1]) then return {-1, '0', ''} end
  if w < lower then lower = w end
end
local keepBefore = now - tonumber(ARGV[12])
local low = redis.call('ZRANGE', KEYS[1], 0, 99, 'WITHSCORES')
for i = 1, #low, 2 do
  local s = tonumber(low[i + 1])
  if s >= PENDING then break end
  local p, t = string.match(low[i], '^[^|]*|([^|]*)|[^|]*|(%d+)$')
  if not (s < (wm[p] or 0) and tonumber(t) < keepBefore) then break end
  redis.call('ZREM', KEYS[1], low[i])
  if s + 1 > tonumber(redis.call('HGET', KEYS[2], p) or '0') then redis.call('HSET', KEYS[2], p, string.format('%.0f', s + 1)) end
end
local agg = ARGV[6]
local winStart = tonumber(ARGV[7])
local winEnd = tonumber(ARGV[8])
local pendingBefore = now - tonumber(ARGV[11])
local extra = 0
local best = nil
local bestT = -1
local bestS = -1
local live = redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%.0f', lower), '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  local s = tonumber(live[i + 1])
  local p, v, t = string.match(live[i], '^[^|]*|([^|]*)|([^|]*)|(%d+)$')
  v = tonumber(v)
  t = tonumber(t)
  local counted = false
  if s >= PENDING then
    if t < pendingBefore then redis.call('ZREM', KEYS[1], live[i]) else counted = true end
  else
    counted = s >= (wm[p] or 0)
  end
  if counted and t >= winStart and (winEnd < 0 or t < winEnd) then
    if agg == 'sum' then extra = extra + v
    elseif agg == 'max' then if best == nil or v > best then best = v end
    elseif t > bestT or (t == bestT and s > bestS) then best = v bestT = t bestS = s end
  end
end
local ch = tonumber(ARGV[2])
local cur
if agg == 'sum' then cur = ch + extra
elseif agg == 'max' then cur = ch if best ~= nil and best > cur then cur = best end
else cur = ch if best ~= nil then cur = best end end
local req = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
if not (limit < 0 or cur + req <= limit) then return {0, string.format('%.17g', cur), ''} end
if ARGV[5] ~= '1' then return {1, string.format('%.17g', cur), ''} end
local value = req
if agg ~= 'sum' then value = cur + req end
local member = ARGV[10] .. '|-|' .. string.format('%.17g', value) .. '|' .. ARGV[9]
redis.call('ZADD', KEYS[1], '${PENDING}', member)
redis.call('PEXPIRE', KEYS[1], ARGV[13])
redis.call('PEXPIRE', KEYS[2], ARGV[13])
return {1, string.format('%.17g', cur + req), member}
`;

// KEYS: grants, floors. ARGV: 1 pending member ('' = none), 2 member, 3 offset, 4 partition, 5 idle TTL ms.
const SETTLE = `
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('HSETNX', KEYS[2], ARGV[4], '0')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`;

export interface LedgerKey {
  orgId: string;
  customerId: string;
  metricId: string;
  metricVersion: number;
  /** Set for a per_entity entitlement: the entity's own grants (its own key, same script and guarantee). */
  entityId?: string;
}

/** A ClickHouse usage value and the aggregator watermarks read just before it ("p:o,p:o"). */
export interface UsageReading {
  usage: number;
  watermarks: string;
  /** When the watermarks were read (ms): the reading shows at least what was aggregated then. */
  readAtMs: number;
}

/** Where the last event of a produce landed. */
export interface KafkaPosition {
  partition: number;
  offset: string;
}

export type LedgerAggregation = 'sum' | 'max' | 'latest';

/** How a metric's usage combines: counts and sums add, `max` keeps the largest, `latest` the newest. */
export function ledgerAggregation(agg: MetricDefinition['aggregation']): LedgerAggregation {
  return agg === 'max' ? 'max' : agg === 'latest' ? 'latest' : 'sum';
}

export type CheckOutcome =
  | { status: 'stale' }
  | {
      status: 'allowed' | 'denied';
      /** Usage after this check (including what it consumed). */
      usage: number;
      /** The pending grant this check consumed (settle or refund it after producing); null when nothing was consumed. */
      grant: string | null;
    };

export interface LedgerOptions {
  pendingTtlMs?: number;
  keepMs?: number;
  idleTtlMs?: number;
}

type Script = (...args: string[]) => Promise<unknown>;

let grantSeq = 0;
const grantPrefix = Math.random().toString(36).slice(2, 10);

export class UsageLedger {
  private readonly pendingTtlMs: number;
  private readonly keepMs: number;
  private readonly idleTtlMs: number;

  constructor(
    private readonly redis: Redis,
    opts: LedgerOptions = {},
  ) {
    this.pendingTtlMs = opts.pendingTtlMs ?? 600_000;
    this.keepMs = opts.keepMs ?? 10_000;
    this.idleTtlMs = opts.idleTtlMs ?? 86_400_000;
    redis.defineCommand('mlUsageCheck', { numberOfKeys: 2, lua: CHECK });
    redis.defineCommand('mlUsageSettle', { numberOfKeys: 2, lua: SETTLE });
  }

  private script(name: string): Script {
    const fn = (this.redis as unknown as Record<string, Script>)[name]!;
    return (...args) => fn.apply(this.redis, args);
  }

  /** The watermark vector for a reading, in the script's "p:o,p:o" form (absent = nothing aggregated yet). */
  async watermarks(topic: string): Promise<string> {
    const h = await this.redis.hgetall(redisKeys.aggregatorWatermarks(topic));
    return Object.entries(h)
      .filter(([p, o]) => /^\d+$/.test(p) && /^\d+$/.test(o))
      .map(([p, o]) => `${p}:${o}`)
      .join(',');
  }

  /**
   * Atomically: usage = reading + grants it cannot contain; allowed = usage + required <= limit
   * (limit null = unlimited); when allowed and `consume`, a pending grant of `required` is added.
   */
  async check(
    k: LedgerKey,
    reading: UsageReading,
    p: {
      required: number;
      limit: number | null;
      consume: boolean;
      aggregation: LedgerAggregation;
      windowStartMs: number;
      windowEndMs: number | null;
      nowMs: number;
    },
  ): Promise<CheckOutcome> {
    const keys = redisKeys.billingUsage(k);
    const [status, usage, member] = (await this.script('mlUsageCheck')(
      keys.grants,
      keys.floors,
      reading.watermarks,
      String(reading.usage),
      String(p.required),
      String(p.limit ?? -1),
      p.consume ? '1' : '0',
      p.aggregation,
      String(p.windowStartMs),
      String(p.windowEndMs ?? -1),
      String(p.nowMs),
      `${grantPrefix}${(grantSeq++).toString(36)}`,
      String(this.pendingTtlMs),
      String(this.keepMs),
      String(this.idleTtlMs),
    )) as [number, string, string];
    if (status === -1) return { status: 'stale' };
    return { status: status === 1 ? 'allowed' : 'denied', usage: Number(usage), grant: member || null };
  }

  /** The grant's events were produced: from now on it counts until the aggregator passes `at`. */
  async settle(k: LedgerKey, grant: string, at: KafkaPosition): Promise<void> {
    const [id, , value, t] = grant.split('|');
    await this.write(k, grant, `${id}|${at.partition}|${value}|${t}`, at);
  }

  /** Producing failed: the grant never happened. */
  async refund(k: LedgerKey, grant: string): Promise<void> {
    await this.redis.zrem(redisKeys.billingUsage(k).grants, grant);
  }

  /**
   * Usage recorded outside a check (POST /v1/usage: a delta, or a gauge's new value) whose event landed
   * at `at`: counted by every instance at once, until the aggregator passes it.
   */
  async record(k: LedgerKey, value: number, timeMs: number, at: KafkaPosition): Promise<void> {
    await this.write(k, '', `${grantPrefix}${(grantSeq++).toString(36)}|${at.partition}|${value}|${Math.trunc(timeMs)}`, at);
  }

  private async write(k: LedgerKey, pending: string, member: string, at: KafkaPosition): Promise<void> {
    const keys = redisKeys.billingUsage(k);
    await this.script('mlUsageSettle')(keys.grants, keys.floors, pending, member, at.offset, String(at.partition), String(this.idleTtlMs));
  }
}
