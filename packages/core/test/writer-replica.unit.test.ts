// The one-writer-replica guard (setup/writer-replica.ts) with fakes: the first instance records its
// replica, the same replica passes, another replica is refused, one server is never checked.
import { describe, expect, it } from 'vitest';
import type { ClickHouseClient, Redis } from '../src/index.ts';
import { ensureWriterReplica, redisKeys, WriterReplicaConflict } from '../src/index.ts';

const replicaClient = (names: string[]) =>
  ({
    query: async ({ query }: { query: string }) => {
      expect(query).toContain('system.replicas');
      return { json: async () => names.map((r) => ({ r })) };
    },
  }) as unknown as ClickHouseClient;

function fakeRedis() {
  const m = new Map<string, string>();
  const redis = {
    status: 'ready',
    set: async (k: string, v: string, nx: string) => {
      expect(nx).toBe('NX');
      if (!m.has(k)) m.set(k, v);
      return 'OK';
    },
    get: async (k: string) => m.get(k) ?? null,
  } as unknown as Redis;
  return { redis, m };
}

describe('ensureWriterReplica', () => {
  it('records the first replica, accepts it again and refuses another', async () => {
    const { redis, m } = fakeRedis();
    expect(await ensureWriterReplica(replicaClient(['clickhouse1']), redis, 'db1', 'aggregator')).toBe('clickhouse1');
    expect(m.get(redisKeys.clickhouseWriterReplica('db1'))).toBe('clickhouse1');
    expect(await ensureWriterReplica(replicaClient(['clickhouse1']), redis, 'db1', 'billing')).toBe('clickhouse1');
    const refused = ensureWriterReplica(replicaClient(['clickhouse2']), redis, 'db1', 'billing');
    await expect(refused).rejects.toBeInstanceOf(WriterReplicaConflict);
    await expect(refused).rejects.toThrow(/reads ClickHouse replica "clickhouse2", but the deployment's writer replica is "clickhouse1"/);
    // another database is its own deployment
    expect(await ensureWriterReplica(replicaClient(['clickhouse2']), redis, 'db2', 'aggregator')).toBe('clickhouse2');
  });

  it('checks nothing on one server (no replicated tables)', async () => {
    const { redis, m } = fakeRedis();
    expect(await ensureWriterReplica(replicaClient([]), redis, 'db1', 'aggregator')).toBeNull();
    expect(m.size).toBe(0);
  });

  it('refuses a database whose tables name two replicas', async () => {
    const { redis } = fakeRedis();
    await expect(ensureWriterReplica(replicaClient(['a', 'b']), redis, 'db1', 'aggregator')).rejects.toBeInstanceOf(WriterReplicaConflict);
  });
});
