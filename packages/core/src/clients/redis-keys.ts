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
  /**
   * Hash partition -> committed offset of the aggregator on one events topic: every record of the
   * partition below it is in ClickHouse's aggregates (services/aggregator/src/watermarks.ts). Billing
   * reads it with every ClickHouse usage reading. Losing it is safe (billing then counts its recent
   * grants twice until the aggregator publishes again).
   */
  aggregatorWatermarks: (topic: string) => `ml:agg:watermarks:${topic}`,
  /**
   * The offset window size every aggregator uses on one events topic, decided once (SET NX) by the
   * first instance and mirrored durably in ClickHouse `aggregator_window_sizes`
   * (services/aggregator/src/window-sizes.ts). Deleting it is safe while ClickHouse keeps its record.
   */
  aggregatorWindowSize: (topic: string) => `ml:agg:window-size:${topic}`,
  /**
   * Billing's usage ledger of one customer and metric version (services/billing/src/usage/ledger.ts):
   * `grants` = sorted set of the units checks granted and usage reports recorded, scored by Kafka offset
   * (not yet produced: a pending score); `floors` = hash partition -> lowest offset a reading may have.
   * Both hold state that ClickHouse may not show yet: renaming them forgets recent grants.
   */
  billingUsage: (k: { orgId: string; customerId: string; metricId: string; metricVersion: number; entityId?: string }) => {
    // an entity's own balance (per_entity entitlements): `#<entity_id>` ('#' is in no billing id)
    const base = `ml:billing:usage:{${k.orgId}:${k.customerId}}:${k.metricId}:v${k.metricVersion}${k.entityId ? `#${k.entityId}` : ''}`;
    return { grants: `${base}:grants`, floors: `${base}:floors` };
  },
  /**
   * Billing's idempotency record of one `idempotency_key` (POST /v1/usage, consuming POST /v1/check), per
   * organization: a pending claim (expires after the claim TTL, 30 s) or the stored first answer, kept
   * 24 h (services/billing/src/usage/idempotency.ts). Renaming it forgets the stored answers: retries of
   * keys used before would execute again (their Kafka event ids are derived from the key, so the
   * aggregator still counts them once).
   */
  billingIdempotency: (organizationId: string, idempotencyKey: string) =>
    `ml:billing:idem:{${organizationId}}:${sha256(idempotencyKey).toString('hex')}`,
  /**
   * The ClickHouse replica (name) every aggregator and billing instance of a cluster deployment uses for
   * one database, recorded by the first one (packages/core/src/setup/writer-replica.ts). Deleting it lets
   * the next instance to start choose again: do it only as part of a fail-over.
   */
  clickhouseWriterReplica: (database: string) => `ml:agg:writer-replica:${database}`,
  /** Pub/sub: API keys revoked or an organization archived; every ApiKeyCache clears. */
  apiKeysChangedChannel: 'ml:keys:changed',
  /** Pub/sub: billing catalog data (customer, subscription, plan, feature, metric) changed; every billing CatalogCache drops it. */
  billingCatalogChangedChannel: 'ml:billing:catalog:changed',
} as const;
