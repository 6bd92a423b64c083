// The whole pipeline in-process for end-to-end tests: the configured topics, a Postgres pool, a
// ClickHouse client, a fresh organization, a gateway and an aggregator. stop() ends them all.
import {
  createClickHouse,
  createKafka,
  createPostgres,
  ensureTopics,
  type ClickHouseClient,
  type Config,
  type PgPool,
} from '@meterline/core';
import { startGateway } from '@meterline/gateway';
import { startAggregator } from '@meterline/aggregator';
import { createTestOrganization } from './fixtures.ts';

export interface TestPipeline {
  pool: PgPool;
  ch: ClickHouseClient;
  org: { organizationId: string; apiKey: string };
  gateway: Awaited<ReturnType<typeof startGateway>>;
  aggregator: Awaited<ReturnType<typeof startAggregator>>;
  stop(): Promise<void>;
}

/** `beforeAggregator` runs after the organization exists (e.g. to insert its metrics) and before the aggregator starts. */
export async function startTestPipeline(
  cfg: Config,
  beforeAggregator?: (p: Pick<TestPipeline, 'pool' | 'org'>) => Promise<void>,
): Promise<TestPipeline> {
  const admin = createKafka(cfg.kafka).admin();
  await admin.connect();
  await ensureTopics(admin, cfg.kafka);
  await admin.disconnect();
  const pool = createPostgres(cfg.postgresUrl);
  const ch = createClickHouse(cfg.clickhouse);
  const org = await createTestOrganization(pool);
  await beforeAggregator?.({ pool, org });
  const gateway = await startGateway(cfg);
  const aggregator = await startAggregator(cfg, { backfillSettleMs: 200 });
  return {
    pool,
    ch,
    org,
    gateway,
    aggregator,
    async stop() {
      await gateway.stop();
      await aggregator.stop();
      await ch.close();
      await pool.end();
    },
  };
}
