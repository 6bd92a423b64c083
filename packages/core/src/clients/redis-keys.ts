// Every Redis key and channel Meterline uses, named in one place and one scheme:
//   ml:<owner>:<purpose>:…     owner = gw (gateway), agg (aggregator), billing, keys (every service)
// `{…}` is a Redis Cluster hash tag: keys that a Lua script or a pipeline touches together share a
// slot. Changing a key that holds state (dedup, claims, the usage ledger) forgets that state: see the
// notes on each.
import { createHash } from 'node:crypto';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export const redisKeys = {
  /**
   * Gateway deduplication claim of an idempotency id (pending:<token> or done), per organization.
   * (Was `d:{org}:…` before; ids accepted under the old name are still recognized as duplicates by the
   * aggregator's claims below, so the rename cannot double count.)
   */
  gatewayDedup: (organizationId: string, idempotencyId: string) =>
    `ml:gw:dedup:{${organizationId}}:${sha256(idempotencyId).subarray(0, 16).toString('base64')}`,
  /** Aggregator claim "partition:offset" of the record that owns an idempotency id (dedup window). */
  aggregatorClaim: (organizationId: string, idempotencyId: string) =>
    `ml:agg:claim:${organizationId}:${sha256(idempotencyId).toString('hex')}`,
  /** Lock: one aggregator instance backfills a metric version. */
  aggregatorBackfillLock: (organizationId: string, metricId: string, version: number) =>
    `ml:agg:backfill:${organizationId}/${metricId}/${version}`,
  /** Billing's usage ledger of one customer, feature, metric version and period window. */
  billingUsage: (k: { orgId: string; customerId: string; featureId: string; metricVersion: number; windowStartMs: number }) =>
    `ml:billing:usage:{${k.orgId}:${k.customerId}}:${k.featureId}:v${k.metricVersion}:${k.windowStartMs}`,
  /** Pub/sub: API keys revoked or an organization archived; every ApiKeyCache clears. */
  apiKeysChangedChannel: 'ml:keys:changed',
} as const;
