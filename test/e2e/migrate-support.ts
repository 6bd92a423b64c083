// Shared setup of the migration walkthroughs (test/e2e/migrate-*.int.test.ts): the real services in-process
// (gateway → Kafka → aggregator → ClickHouse; billing on Postgres), a fresh organization, its own topics and
// consumer group, and a @meterline/sdk client pointed at them. Nothing here is specific to one reference.
import { createClickHouse, createKafka, createPostgres, ensureTopics, type ClickHouseClient, type PgPool } from '@meterline/core';
import { startGateway } from '@meterline/gateway';
import { startAggregator } from '@meterline/aggregator';
import { startBilling, type BillingHandle } from '@meterline/billing';
import { Meterline } from '@meterline/sdk';
import { testConfig } from '../support/env.ts';
import { createTestOrganization, uniqueId } from '../support/fixtures.ts';

export interface MigrationStack {
  sdk: Meterline;
  org: { organizationId: string; apiKey: string };
  billingUrl: string;
  gatewayUrl: string;
  stop(): Promise<void>;
}

export async function startMigrationStack(prefix: string): Promise<MigrationStack> {
  const run = uniqueId(prefix);
  const cfg = testConfig({
    KAFKA_EVENTS_TOPIC: `${run}.events`,
    KAFKA_DEAD_LETTER_TOPIC: `${run}.dlq`,
    AGGREGATOR_GROUP_ID: `${run}.aggregator`,
    GATEWAY_PORT: '0',
    BILLING_PORT: '0',
    AGGREGATOR_PORT: '0',
  });
  const admin = createKafka(cfg.kafka).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, cfg.kafka);
  } finally {
    await admin.disconnect();
  }
  const pool: PgPool = createPostgres(cfg.postgresUrl);
  const ch: ClickHouseClient = createClickHouse(cfg.clickhouse);
  const org = await createTestOrganization(pool);
  const gateway = await startGateway(cfg);
  const aggregator = await startAggregator(cfg);
  // the scheduler is off: the walkthroughs close nothing by time, only by the calls they make
  const billing: BillingHandle = await startBilling(cfg, {}, { renewalIntervalMs: 0 });
  const sdk = new Meterline({ apiKey: org.apiKey, ingestUrl: gateway.url, billingUrl: billing.url, timeoutMs: 15_000, flushIntervalMs: 0 });
  return {
    sdk,
    org,
    billingUrl: billing.url,
    gatewayUrl: gateway.url,
    async stop() {
      await sdk.close().catch(() => undefined);
      await gateway.stop();
      await billing.stop();
      await aggregator.stop();
      await ch.close();
      await pool.end();
    },
  };
}

/** Today's date in UTC as YYYY-MM-DD (a Lotus start_date): the subscription's period starts at its midnight. */
export const todayUtc = (now = new Date()) => now.toISOString().slice(0, 10);

/** The error a call rejected with (fails the test if it resolved). */
export async function rejection(p: Promise<unknown>): Promise<any> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (e) => e,
  );
}
