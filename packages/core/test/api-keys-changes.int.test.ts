// ApiKeyCache.followChanges against the shared Redis: cleared on a change message, on re-subscription
// after its connection was killed (messages missed meanwhile), short TTL while unsubscribed, and a
// lookup racing with a clear does not store a stale answer. Own channel per test.
import { afterEach, describe, expect, it } from 'vitest';
import { ApiKeyCache, createRedis, publishApiKeysChanged, type ApiKeyOwner, type Redis } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';

const config = testConfig();
const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

function setup(opts: { unsubscribedTtlMs?: number } = {}) {
  const name = uniqueId('apikeys');
  const channel = `meterline:test:${name}`;
  const redis = createRedis(config.redisUrl, { name });
  const admin = createRedis(config.redisUrl, { name: `${name}-admin` });
  let owner: ApiKeyOwner | null = { organizationId: 'o', keyId: 'k' };
  let lookups = 0;
  const cache = new ApiKeyCache(
    async () => {
      lookups++;
      return owner;
    },
    60_000,
    60_000,
  ).followChanges(redis, { channel, ...opts });
  cleanup.push(
    () => cache.close(),
    () => redis.quit().catch(() => undefined),
    () => admin.quit().catch(() => undefined),
  );
  return {
    cache,
    redis,
    admin,
    channel,
    name,
    revoke: () => {
      owner = null;
    },
    lookups: () => lookups,
  };
}

async function subscriberId(admin: Redis, name: string): Promise<string | null> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(` name=${name}-api-keys `));
  return line ? /(?:^|\s)id=(\d+)/.exec(line)![1]! : null;
}

describe('ApiKeyCache.followChanges', () => {
  it('clears on a change message (the next resolve sees the revocation)', async () => {
    const t = setup();
    await waitFor(async () => t.cache.following, Boolean, { timeoutMs: 5_000, intervalMs: 10, what: 'subscribed' });
    expect(await t.cache.resolve('key')).not.toBeNull();
    t.revoke();
    expect(await t.cache.resolve('key')).not.toBeNull(); // still cached (60 s TTL)
    const t0 = performance.now();
    await publishApiKeysChanged(t.admin, { organizationId: 'o', keyId: 'k', reason: 'revoked' }, t.channel);
    await waitFor(
      () => t.cache.resolve('key'),
      (o) => o === null,
      { timeoutMs: 1_000, intervalMs: 2, what: 'cleared by message' },
    );
    console.log(`pub/sub clear after ${(performance.now() - t0).toFixed(1)} ms`);
  });

  it('a change missed while the subscriber was disconnected is covered: cleared on re-subscribe, short TTL meanwhile', async () => {
    const t = setup({ unsubscribedTtlMs: 300 });
    await waitFor(async () => t.cache.following, Boolean, { timeoutMs: 5_000, intervalMs: 10, what: 'subscribed' });
    expect(await t.cache.resolve('key')).not.toBeNull();
    const id = await subscriberId(t.admin, t.name);
    expect(id).not.toBeNull();
    await t.admin.call('CLIENT', 'KILL', 'ID', id!);
    t.revoke(); // committed while nobody listens; no message at all
    await waitFor(
      () => t.cache.resolve('key'),
      (o) => o === null,
      { timeoutMs: 3_000, intervalMs: 10, what: 'revocation seen after reconnect' },
    );
    await waitFor(async () => t.cache.following, Boolean, { timeoutMs: 5_000, intervalMs: 10, what: 're-subscribed' });
    expect(await subscriberId(t.admin, t.name)).not.toBe(id);
  });

  it('a lookup that started before a clear does not cache its answer', async () => {
    const t = setup();
    await waitFor(async () => t.cache.following, Boolean, { timeoutMs: 5_000, intervalMs: 10, what: 'subscribed' });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    const slow = new ApiKeyCache(
      async () => {
        calls++;
        if (calls === 1) await gate;
        return { organizationId: 'o', keyId: 'k' };
      },
      60_000,
      60_000,
    );
    const first = slow.resolve('key');
    slow.invalidate(); // the revocation arrives while the lookup is in flight
    release();
    await first;
    await slow.resolve('key');
    expect(calls).toBe(2);
  });

  it('closes its subscriber when the parent connection ends', async () => {
    const t = setup();
    await waitFor(async () => t.cache.following, Boolean, { timeoutMs: 5_000, intervalMs: 10, what: 'subscribed' });
    expect(await subscriberId(t.admin, t.name)).not.toBeNull();
    await t.redis.quit();
    await waitFor(
      () => subscriberId(t.admin, t.name),
      (v) => v === null,
      { timeoutMs: 3_000, intervalMs: 20, what: 'subscriber gone' },
    );
  });
});
