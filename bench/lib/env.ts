// The environment a benchmark run uses: the shared local stack (brought up idempotently), its own
// Postgres and ClickHouse databases (meterline_bench) and its own Kafka topics and consumer groups per run.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, setupBackingServices, createPostgres, type Config, type PgPool } from '@meterline/core';
import { createTestOrganization } from '../../test/support/fixtures.ts';
import { ROOT } from './proc.ts';

export function bringUpSharedStack(): void {
  if (process.env.METERLINE_TEST_USE_ENV === '1') return;
  execFileSync('bash', [path.join(ROOT, 'infra/local/stack.sh'), 'up'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * From a clean clone the Kafka jars and clickhouse-server may be missing, and PrivateStack only starts
 * what is installed: run `stack.sh install` then (only then: it may also `npm ci`).
 */
export function ensureStackInstalled(): void {
  const kafkaReady = existsSync(path.join(ROOT, '.cache/kafka-3.9.1/.complete'));
  let clickhouse = true;
  try {
    execFileSync('sh', ['-c', 'command -v clickhouse-server && command -v redis-server'], { stdio: 'ignore' });
  } catch {
    clickhouse = false;
  }
  if (kafkaReady && clickhouse) return;
  execFileSync('bash', [path.join(ROOT, 'infra/local/stack.sh'), 'install'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Postgres is the machine's own (never private); `stack.sh up` starts it when it is not running. */
export function ensurePostgres(): void {
  try {
    execFileSync('pg_isready', ['-h', '127.0.0.1', '-p', '5432'], { stdio: 'ignore' });
  } catch {
    bringUpSharedStack();
  }
}

export interface RunEnv {
  runId: string;
  env: Record<string, string>;
  config: Config;
}

/** Environment variables for one run; `overrides` win. Service children get exactly these. */
export function runEnv(runId: string, overrides: Record<string, string> = {}): RunEnv {
  const env: Record<string, string> = {
    DATABASE_URL: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/meterline_bench',
    CLICKHOUSE_DATABASE: 'meterline_bench',
    KAFKA_EVENTS_TOPIC: `bench_${runId}_events`,
    KAFKA_DEAD_LETTER_TOPIC: `bench_${runId}_dead`,
    AGGREGATOR_GROUP_ID: `bench_${runId}_aggregator`,
    KAFKA_CLIENT_ID: `bench_${runId}`,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    NODE_ENV: 'production',
    ...overrides,
  };
  for (const k of ['KAFKA_BROKERS', 'CLICKHOUSE_URL', 'REDIS_URL'] as const) {
    if (process.env[k] && !overrides[k]) env[k] = process.env[k]!;
  }
  return { runId, env, config: loadConfig({ ...process.env, ...env }) };
}

export async function prepare(run: RunEnv): Promise<void> {
  await dropBenchDatabase(run.config.postgresUrl);
  await setupBackingServices(run.config);
}

/**
 * A fresh Postgres database per run. Every run adds organizations and metrics, and a run's aggregator
 * backfills every metric it finds: after a day of runs (3,310 metrics of 89 stale organizations) the
 * trickle phase measured those backfills (36 status INSERTs/s with no events) as trickle cost. Only a
 * database whose name starts with `meterline_bench` is dropped.
 */
async function dropBenchDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!name.startsWith('meterline_bench')) return;
  u.pathname = '/postgres';
  const admin = createPostgres(u.toString(), { max: 1, applicationName: 'meterline-bench-reset' });
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export interface BenchOrg {
  organizationId: string;
  apiKey: string;
  metricId: string;
  eventName: string;
}

/** An organization with one API key and a `count` metric over `eventName`, inserted straight into Postgres. */
export async function createBenchOrg(pool: PgPool, eventName: string, metricId = 'calls'): Promise<BenchOrg> {
  const { organizationId, apiKey } = await createTestOrganization(pool, { name: `bench ${eventName}` });
  await pool.query(
    `INSERT INTO billable_metrics (organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by)
     VALUES ($1, $2, 1, $3, $4, 'count', NULL, '[]'::jsonb, '[]'::jsonb)`,
    [organizationId, metricId, `bench ${metricId}`, eventName],
  );
  return { organizationId, apiKey, metricId, eventName };
}

export function pgPool(run: RunEnv): PgPool {
  return createPostgres(run.config.postgresUrl, { max: 4, applicationName: 'meterline-bench' });
}
