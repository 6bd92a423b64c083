// Duplicates that slipped past the gateway (same organization + idempotency id on another record).
// One Redis key per (organization, sha256(idempotency id)) holds the Kafka position "partition:offset"
// of the record that owns the id: SET key "p:o" NX GET. nil (first claim) or our own "p:o" (a replay of
// the same record) => count it; anything else => duplicate, skip. The decision depends only on which
// record claimed first, so every replay after a crash decides the same way.
import { redisKeys, type Redis } from '@meterline/core';

export interface ClaimInput {
  organizationId: string;
  idempotencyId: string;
  partition: number;
  offset: string;
}

export function claimKey(organizationId: string, idempotencyId: string): string {
  return redisKeys.aggregatorClaim(organizationId, idempotencyId);
}

/** For each input, true = count it (first or own claim), false = duplicate. Throws when Redis fails. */
export async function claimAll(redis: Redis, inputs: ClaimInput[], ttlMs: number): Promise<boolean[]> {
  if (inputs.length === 0) return [];
  const pipe = redis.pipeline();
  const ttlS = String(Math.ceil(ttlMs / 1000));
  for (const c of inputs)
    pipe.call('SET', claimKey(c.organizationId, c.idempotencyId), `${c.partition}:${c.offset}`, 'NX', 'GET', 'EX', ttlS);
  const results = await pipe.exec();
  if (!results) throw new Error('redis pipeline returned nothing');
  return results.map(([err, value], i) => {
    if (err) throw err;
    const c = inputs[i]!;
    return value === null || value === `${c.partition}:${c.offset}`;
  });
}
