// Migrations and topic creation are versioned and re-runnable against the real services.
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createClickHouse, createKafka, migrateClickHouse, migratePostgres, setupBackingServices } from '../src/index.ts';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';

describe('setupBackingServices', () => {
  const suffix = uniqueId('mig').toLowerCase();
  const cfg = testConfig({
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${suffix}`,
    CLICKHOUSE_DATABASE: suffix,
    KAFKA_EVENTS_TOPIC: `${suffix}.events`,
    KAFKA_DEAD_LETTER_TOPIC: `${suffix}.dlq`,
  });
  const ch = createClickHouse(cfg.clickhouse, { database: null });

  afterAll(async () => {
    await ch.command({ query: `DROP DATABASE IF EXISTS ${suffix}` });
    await ch.close();
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${suffix}`);
    await admin.end();
    const kafka = createKafka(cfg.kafka).admin();
    await kafka.connect();
    await kafka.deleteTopics({ topics: [cfg.kafka.eventsTopic, cfg.kafka.deadLetterTopic] }).catch(() => undefined);
    await kafka.disconnect();
  });

  it('creates databases, tables and topics, and a second run changes nothing', async () => {
    await setupBackingServices(cfg);

    const tables = await (
      await ch.query({ query: `SELECT name FROM system.tables WHERE database = '${suffix}'`, format: 'JSONEachRow' })
    ).json<{ name: string }>();
    expect(tables.map((t) => t.name)).toContain('events');

    const client = new pg.Client({ connectionString: cfg.postgresUrl });
    await client.connect();
    const { rows } = await client.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
    await client.end();
    expect(rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining(['organizations', 'api_keys', 'customers', 'billable_metrics', 'schema_migrations']),
    );

    const admin = createKafka(cfg.kafka).admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: [cfg.kafka.eventsTopic] });
    await admin.disconnect();
    expect(meta.topics[0]!.partitions).toHaveLength(cfg.kafka.eventsPartitions);

    expect(await migratePostgres(cfg.postgresUrl)).toEqual([]);
    expect(await migrateClickHouse(ch, suffix)).toEqual([]);
    await setupBackingServices(cfg); // topics exist: no error
  });
});
