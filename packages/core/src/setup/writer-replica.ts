// One writer replica per deployment (issue #13; infra/local/cluster/README.md "Exactly-once on
// replicated tables"). Replication between ClickHouse replicas is asynchronous, and two readers need to
// see what the aggregators wrote the moment they wrote it:
//   - the aggregator itself (sink progress, window recomputes: services/aggregator/README.md), also after
//     a partition moves to another instance;
//   - billing's consuming checks: a usage reading taken after the aggregators' watermarks must contain
//     every record below them (services/billing/README.md "Usage state").
// So every aggregator and billing instance of a deployment uses the same replica. Measured on the local
// cluster (test/cluster): a billing instance reading the other replica granted 12 units past a hard limit
// of 1,000 after an aggregator takeover. This module makes that mistake a refusal to start instead of a
// silent over-grant: the first instance records its replica in Redis (SET NX), every later one compares.
// On one server (no replicated tables) there is nothing to check.
//
// Failing over to another replica (the writer is lost): stop the aggregators and billing, run
// `SYSTEM SYNC REPLICA <db>.<table>` on the new replica for every replicated table, then
// `redis-cli SET <key> <new replica name>` and start them against the new replica (README there).
import type { ClickHouseClient } from '../clients/clickhouse.ts';
import type { Redis } from '../clients/redis.ts';
import { redisKeys } from '../clients/redis-keys.ts';

export class WriterReplicaConflict extends Error {
  override readonly name = 'WriterReplicaConflict';
}

/** The replica name (the server's {replica} macro) of this database's replicated tables; null on one server. */
export async function replicaName(ch: ClickHouseClient): Promise<string | null> {
  const rs = await ch.query({
    query: 'SELECT DISTINCT replica_name AS r FROM system.replicas WHERE database = currentDatabase()',
    format: 'JSONEachRow',
  });
  const names = (await rs.json<{ r: string }>()).map((x) => x.r);
  if (names.length > 1) throw new WriterReplicaConflict(`the tables of this database name ${names.length} replicas (${names.join(', ')})`);
  return names[0] ?? null;
}

/** Our Redis clients fail fast while not connected (no offline queue): at startup, wait for the connection. */
async function whenReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/**
 * Records this instance's replica as the deployment's writer replica when none is recorded yet, and
 * throws WriterReplicaConflict when another one is. Returns the replica (null on one server).
 */
export async function ensureWriterReplica(
  ch: ClickHouseClient,
  redis: Redis,
  database: string,
  who: 'aggregator' | 'billing',
): Promise<string | null> {
  const mine = await replicaName(ch);
  if (mine === null) return null;
  await whenReady(redis, 10_000);
  const key = redisKeys.clickhouseWriterReplica(database);
  await redis.set(key, mine, 'NX');
  const recorded = await redis.get(key);
  if (recorded !== mine)
    throw new WriterReplicaConflict(
      `this ${who} reads ClickHouse replica "${mine}", but the deployment's writer replica is "${recorded}" (Redis ${key}): ` +
        'every aggregator and billing instance must use the writer replica, or recounts and usage checks can miss rows ' +
        'that have not replicated yet. Point CLICKHOUSE_URL at the writer replica, or fail over as infra/local/cluster/README.md describes.',
    );
  return mine;
}
