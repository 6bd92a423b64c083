// Prepares every backing service for a Config: Postgres database + migrations, ClickHouse database +
// migrations, Kafka topics. Idempotent; used by `npm run stack:up`, the test global setup and services.
import type { Config } from '../config.ts';
import { createClickHouse } from '../clients/clickhouse.ts';
import { createKafka, ensureTopics } from '../clients/kafka.ts';
import { migrateClickHouse, migratePostgres } from '../migrate/migrate.ts';
import { checkClusterShape, shaperFor } from './cluster.ts';
import { checkServerTimezone } from './timezone.ts';
import { ensureAnalystViews } from './views.ts';

export async function setupBackingServices(config: Config, log: (msg: string) => void = () => undefined): Promise<void> {
  const pgApplied = await migratePostgres(config.postgresUrl);
  log(`postgres: ${pgApplied.length ? `applied ${pgApplied.join(', ')}` : 'up to date'}`);

  const ch = createClickHouse(config.clickhouse, { database: null });
  try {
    // before migrating: a non-UTC server is refused unless CLICKHOUSE_ALLOW_NON_UTC (./timezone.ts)
    const tz = await checkServerTimezone(ch, config.clickhouse.allowNonUtcTimezone ?? false, (m) => log(`clickhouse: WARNING ${m}`));
    log(`clickhouse: server time zone ${tz.timezone}${tz.utc ? ' (UTC)' : ''}`);
    // one server or a cluster (CLICKHOUSE_CLUSTER): the same migrations, shaped (./cluster.ts)
    const cluster = config.clickhouse.cluster ?? '';
    await checkClusterShape(ch, config.clickhouse.database, cluster);
    if (cluster) log(`clickhouse: cluster ${cluster} (Replicated*MergeTree, ON CLUSTER DDL)`);
    const shape = shaperFor(config.clickhouse);
    const chApplied = await migrateClickHouse(ch, config.clickhouse.database, shape);
    log(`clickhouse: ${chApplied.length ? `applied ${chApplied.join(', ')}` : 'up to date'}`);
    // after the migrations: the views follow the tables' current schema (./views.ts)
    const views = await ensureAnalystViews(ch, config.clickhouse.database, shape);
    if (views.length) log(`clickhouse: analyst views ${views.join(', ')} (re)created`);
  } finally {
    await ch.close();
  }

  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  try {
    await ensureTopics(admin, config.kafka);
    log(`kafka: topics ${config.kafka.eventsTopic} (${config.kafka.eventsPartitions} partitions), ${config.kafka.deadLetterTopic}`);
  } finally {
    await admin.disconnect();
  }
}
