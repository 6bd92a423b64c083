// The dedup store's scripts against the real Redis: the keys, values and TTLs they leave are exactly the
// documented protocol (README "Deduplication protocol"), outcome by outcome, and a lost script cache
// (SCRIPT FLUSH, as after a Redis restart) is not an error.
import { createRedis, type Redis } from '@meterline/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { DedupStore, dedupKey } from '../src/dedup.ts';

let redis: Redis;
const claimTtlMs = 20_000;
const windowMs = 3_600_000;

beforeAll(async () => {
  redis = createRedis(testConfig().redisUrl, { name: 'gw-dedup-test' });
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve)); // no offline queue
});
afterAll(async () => {
  await redis.quit();
});

describe('DedupStore on Redis', () => {
  it('claim: nil → claimed (pending:<token>, claim TTL), done → duplicate, pending → in_flight; commit → done for the window', async () => {
    const org = uniqueId('org');
    const store = new DedupStore(redis, { claimTtlMs, windowMs });
    await redis.set(dedupKey(org, 'seen'), 'done', 'PX', 60_000);
    await redis.set(dedupKey(org, 'busy'), 'pending:someone-else', 'PX', 60_000);
    const token = store.newToken();
    expect(await store.claim(org, ['new-1', 'seen', 'busy', 'new-2'], token)).toEqual(['claimed', 'duplicate', 'in_flight', 'claimed']);
    expect(await redis.get(dedupKey(org, 'new-1'))).toBe(token);
    expect(await redis.get(dedupKey(org, 'busy'))).toBe('pending:someone-else'); // NX: untouched
    const ttl = await redis.pttl(dedupKey(org, 'new-2'));
    expect(ttl).toBeGreaterThan(claimTtlMs - 5_000);
    expect(ttl).toBeLessThanOrEqual(claimTtlMs);

    await store.commit(org, ['new-1', 'new-2']);
    expect(await redis.get(dedupKey(org, 'new-1'))).toBe('done');
    expect(await redis.pttl(dedupKey(org, 'new-2'))).toBeGreaterThan(windowMs - 60_000);
    expect(await store.claim(org, ['new-1'], store.newToken())).toEqual(['duplicate']);
  });

  it('release deletes only the keys still holding our token', async () => {
    const org = uniqueId('org');
    const store = new DedupStore(redis, { claimTtlMs, windowMs });
    const token = store.newToken();
    expect(await store.claim(org, ['a', 'b'], token)).toEqual(['claimed', 'claimed']);
    await redis.set(dedupKey(org, 'b'), 'pending:other', 'PX', 60_000); // taken over after expiry
    expect(await store.release(org, ['a', 'b'], token)).toBe(1);
    expect(await redis.exists(dedupKey(org, 'a'))).toBe(0);
    expect(await redis.get(dedupKey(org, 'b'))).toBe('pending:other');
  });

  it('a request of 2,500 ids is claimed and committed in script calls of at most 1,000 keys, outcomes in order', async () => {
    const org = uniqueId('org');
    const store = new DedupStore(redis, { claimTtlMs, windowMs });
    const ids = Array.from({ length: 2_500 }, (_, i) => `id-${i}`);
    await redis.set(dedupKey(org, 'id-1700'), 'done', 'PX', 60_000);
    const outcomes = await store.claim(org, ids, store.newToken());
    expect(outcomes.filter((o) => o === 'claimed')).toHaveLength(2_499);
    expect(outcomes[1700]).toBe('duplicate');
    await store.commit(org, ids);
    expect(await redis.get(dedupKey(org, 'id-2499'))).toBe('done');
  });

  it('survives a flushed script cache (EVALSHA falls back to EVAL)', async () => {
    const org = uniqueId('org');
    const store = new DedupStore(redis, { claimTtlMs, windowMs });
    expect(await store.claim(org, ['x'], store.newToken())).toEqual(['claimed']);
    // SCRIPT FLUSH on the shared Redis only drops cached scripts; every client reloads them on NOSCRIPT.
    await redis.script('FLUSH');
    expect(await store.claim(org, ['x', 'y'], store.newToken())).toEqual(['in_flight', 'claimed']);
    await store.commit(org, ['x']);
    expect(await redis.get(dedupKey(org, 'x'))).toBe('done');
  });
});
