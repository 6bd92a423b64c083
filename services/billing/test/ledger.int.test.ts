// The usage ledger's script on the real Redis (usage/ledger.ts): which grants a reading at watermark W
// counts, pending grants, refunds, pruning with floors (a reading below a floor is refused as stale),
// the pending TTL, gauges (`latest`, `max`) and the usage window. Values are the test's own arithmetic.
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, redisKeys, type Redis } from '@meterline/core';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { UsageLedger, type LedgerAggregation, type LedgerKey } from '../src/usage/ledger.ts';

let redis: Redis;
let ledger: UsageLedger;
const topic = uniqueId('t_ledger');
const T0 = Date.UTC(2026, 11, 1);

beforeAll(async () => {
  redis = createRedis(testConfig().redisUrl, { name: 'meterline-ledger-test' });
  if (redis.status !== 'ready') await once(redis, 'ready');
  ledger = new UsageLedger(redis, { keepMs: 1_000, pendingTtlMs: 5_000 });
});
afterAll(() => redis.disconnect());

const key = (): LedgerKey => ({ orgId: uniqueId('o'), customerId: uniqueId('c'), metricId: 'm', metricVersion: 1 });
const reading = (usage: number, watermarks: string) => ({ usage, watermarks, readAtMs: Date.now() });
const opts = (o: Partial<{ required: number; limit: number | null; consume: boolean; aggregation: LedgerAggregation; nowMs: number }>) => ({
  required: 0,
  limit: null,
  consume: false,
  aggregation: 'sum' as LedgerAggregation,
  windowStartMs: T0,
  windowEndMs: T0 + 30 * 86_400_000,
  nowMs: T0 + 1_000,
  ...o,
});
async function usage(k: LedgerKey, ch: number, wm: string, o: Parameters<typeof opts>[0] = {}) {
  const r = await ledger.check(k, reading(ch, wm), opts(o));
  if (r.status === 'stale') return 'stale' as const;
  return r.usage;
}

describe('usage ledger', () => {
  it('counts a grant while pending, then until the watermark passes its offset', async () => {
    const k = key();
    const g = await ledger.check(k, reading(10, '0:100'), opts({ required: 3, limit: 20, consume: true }));
    expect(g).toMatchObject({ status: 'allowed', usage: 13 });
    if (g.status === 'stale' || !g.grant) throw new Error('no grant');
    expect(await usage(k, 10, '0:100')).toBe(13); // pending
    await ledger.settle(k, g.grant, { partition: 0, offset: '150' });
    expect(await usage(k, 10, '0:150')).toBe(13); // offset 150 not below the watermark: not in ClickHouse yet
    expect(await usage(k, 13, '0:151')).toBe(13); // the aggregator passed it: ClickHouse has it, not added again
    expect(await usage(k, 10, '1:999')).toBe(13); // another partition's watermark says nothing about partition 0
  });

  it('denies past a hard limit, refunds a failed produce, never consumes when denied', async () => {
    const k = key();
    const first = await ledger.check(k, reading(0, ''), opts({ required: 15, limit: 20, consume: true }));
    expect(first.status).toBe('allowed');
    expect(await ledger.check(k, reading(0, ''), opts({ required: 6, limit: 20, consume: true }))).toMatchObject({
      status: 'denied',
      usage: 15,
      grant: null,
    });
    if (first.status === 'stale' || !first.grant) throw new Error('no grant');
    await ledger.refund(k, first.grant);
    expect(await usage(k, 0, '')).toBe(0);
  });

  it('prunes aggregated grants older than keepMs and refuses readings below the raised floor', async () => {
    const k = key();
    for (const [off, t] of [
      [10, T0],
      [20, T0 + 100],
    ] as const)
      await ledger.record(k, 1, t, { partition: 2, offset: String(off) });
    // a reading at watermark 15, at T0 + 5 s: the grant at 10 is aggregated and older than keepMs
    expect(await usage(k, 1, '2:15', { nowMs: T0 + 5_000 })).toBe(2);
    expect(await redis.zcard(redisKeys.billingUsage(k).grants)).toBe(1);
    expect(await redis.hget(redisKeys.billingUsage(k).floors, '2')).toBe('11');
    // a reading taken at an older watermark might not contain offset 10 any more: refused
    expect(await usage(k, 0, '2:5', { nowMs: T0 + 5_000 })).toBe('stale');
    expect(await usage(k, 0, '', { nowMs: T0 + 5_000 })).toBe('stale');
    expect(await usage(k, 1, '2:11', { nowMs: T0 + 5_000 })).toBe(2);
  });

  it('drops a grant still pending after the pending TTL (its instance died before the produce answered)', async () => {
    const k = key();
    await ledger.check(k, reading(0, ''), opts({ required: 4, consume: true, nowMs: T0 }));
    expect(await usage(k, 0, '', { nowMs: T0 + 4_999 })).toBe(4);
    expect(await usage(k, 0, '', { nowMs: T0 + 5_001 })).toBe(0);
  });

  it('gauges: the newest unaggregated value wins over ClickHouse (latest), the larger one (max)', async () => {
    const k = key();
    await ledger.record(k, 5, T0 + 10, { partition: 0, offset: '7' });
    await ledger.record(k, 1, T0 + 20, { partition: 0, offset: '8' });
    expect(await usage(k, 5, '0:7', { aggregation: 'latest' })).toBe(1);
    expect(await usage(k, 9, '0:9', { aggregation: 'latest' })).toBe(9); // both aggregated: ClickHouse's value
    expect(await usage(k, 3, '0:7', { aggregation: 'max' })).toBe(5);
    expect(await usage(k, 0, '0:0', { aggregation: 'latest', required: 2, limit: 2 })).toBe(1);
    expect((await ledger.check(k, reading(0, '0:0'), opts({ aggregation: 'latest', required: 2, limit: 2 }))).status).toBe('denied');
  });

  it('counts only grants inside the usage window', async () => {
    const k = key();
    await ledger.record(k, 3, T0 - 1, { partition: 0, offset: '1' });
    await ledger.record(k, 4, T0 + 10, { partition: 0, offset: '2' });
    expect(await usage(k, 0, '0:0')).toBe(4);
    expect(await usage(k, 0, '0:0', { nowMs: T0 + 20 })).toBe(4);
  });

  it('reads the watermarks the aggregator publishes', async () => {
    await redis.hset(redisKeys.aggregatorWatermarks(topic), { '0': '12', '3': '40', junk: 'x' });
    expect((await ledger.watermarks(topic)).split(',').sort()).toEqual(['0:12', '3:40']);
  });
});
