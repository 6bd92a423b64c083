// Integration tests need Kafka, ClickHouse, Redis and Postgres.
// - METERLINE_TEST_USE_ENV=1: use the services named by the environment (KAFKA_BROKERS, CLICKHOUSE_URL, ...).
// - otherwise: bring the local stack up with infra/local/stack.sh (idempotent; installs what is missing).
// Then create the test databases, run migrations and create the test topics.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setupBackingServices } from '@meterline/core';
import { testConfig } from './env.ts';

export default async function globalSetup(): Promise<void> {
  if (process.env.METERLINE_TEST_USE_ENV !== '1') {
    const stack = fileURLToPath(new URL('../../infra/local/stack.sh', import.meta.url));
    execFileSync('bash', [stack, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  await setupBackingServices(testConfig());
}
