import { describe, expect, it } from 'vitest';
import { ApiKeyCache, apiKeyFromHeaders, generateApiKey, hashApiKey } from '../src/index.ts';

describe('API keys', () => {
  it('stores only a hash and a short prefix', () => {
    const k = generateApiKey();
    expect(k.key.startsWith('ml_')).toBe(true);
    expect(k.hash).toBe(hashApiKey(k.key));
    expect(k.hash).not.toContain(k.key);
    expect(k.key.startsWith(k.prefix)).toBe(true);
    expect(k.prefix.length).toBeLessThan(k.key.length / 3);
  });

  it('reads X-API-KEY or a Bearer token', () => {
    expect(apiKeyFromHeaders({ 'x-api-key': 'ml_a' })).toBe('ml_a');
    expect(apiKeyFromHeaders({ authorization: 'Bearer ml_b' })).toBe('ml_b');
    expect(apiKeyFromHeaders({ authorization: 'Basic xyz' })).toBeNull();
    expect(apiKeyFromHeaders({})).toBeNull();
  });

  it('caches hits and misses for their TTLs', async () => {
    let lookups = 0;
    const cache = new ApiKeyCache(
      async (key) => {
        lookups++;
        return key === 'good' ? { organizationId: 'o', keyId: 'k' } : null;
      },
      60_000,
      60_000,
    );
    expect(await cache.resolve('good')).toEqual({ organizationId: 'o', keyId: 'k' });
    expect(await cache.resolve('good')).toEqual({ organizationId: 'o', keyId: 'k' });
    expect(await cache.resolve('bad')).toBeNull();
    expect(await cache.resolve('bad')).toBeNull();
    expect(lookups).toBe(2);
    cache.invalidate();
    await cache.resolve('good');
    expect(lookups).toBe(3);
  });
});
