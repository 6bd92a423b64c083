// The environment integration tests run against. Tests use their own Postgres database, ClickHouse
// database and Kafka topics (suffix `_test`), so a running dev pipeline is never disturbed.
import { loadConfig, type Config } from '@meterline/core';

export const TEST_ENV_DEFAULTS: Record<string, string> = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/meterline_test',
  CLICKHOUSE_DATABASE: 'meterline_test',
  KAFKA_EVENTS_TOPIC: 'meterline_test.events',
  KAFKA_DEAD_LETTER_TOPIC: 'meterline_test.events.dead-letter',
  AGGREGATOR_GROUP_ID: 'meterline_test-aggregator',
  LOG_LEVEL: 'warn',
  // no webhook delivery worker unless a test asks for one (WEBHOOK_WORKER_INTERVAL_MS or startBilling's
  // opts.webhooks): every test shares this database, and another file's worker would claim its deliveries
  WEBHOOK_WORKER_INTERVAL_MS: '0',
};

/** process.env with the test defaults filled in (explicit environment variables win). */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const [k, v] of Object.entries(TEST_ENV_DEFAULTS)) if (!env[k]) env[k] = v;
  return { ...env, ...overrides };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}
