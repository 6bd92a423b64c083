// Prepares every backing service for a Config: Postgres database + migrations, ClickHouse database +
// migrations, Kafka topics. Idempotent; used by `npm run stack:up`, the test global setup and services.
import type { Config } from '../config.ts';
import { createClickHouse } from '../clients/clickhouse.ts';
import { createKafka, ensureTopics } from '../clients/kafka.ts';
import { migrateClickHouse, migratePostgres } from '../migrate/migrate.ts';

export async function setupBackingServices(config: Config, log: (msg: string) => void = () => undefined): Promise<void> {
  const pgApplied = await migratePostgres(config.postgresUrl);
  log(`postgres: ${pgApplied.length ? `applied ${pgApplied.join(', ')}` : 'up to date'}`);

  const ch = createClickHouse(config.clickhouse, { database: null });
  try {
    const chApplied = await migrateClickHouse(ch, config.clickhouse.database);
    log(`clickhouse: ${chApplied.length ? `applied ${chApplied.join(', ')}` : 'up to date'}`);
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
