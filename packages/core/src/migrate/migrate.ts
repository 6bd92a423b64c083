// Versioned, re-runnable schema migrations for PostgreSQL and ClickHouse.
// Files: infra/migrations/{postgres,clickhouse}/NNNN_name.sql, applied in file-name order, each once;
// the applied versions are recorded in a schema_migrations table in the same database.
// ClickHouse files may hold several statements separated by a line ending in ';', and may use {db}
// for the database name (materialized views need fully qualified names).
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import pg from 'pg';
import type { ClickHouseClient } from '../clients/clickhouse.ts';
import { sqlIdentifier, sqlString } from '../clients/clickhouse.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../../infra/migrations/', import.meta.url));

interface Migration {
  version: string;
  sql: string;
}

async function loadMigrations(kind: 'postgres' | 'clickhouse'): Promise<Migration[]> {
  const dir = path.join(MIGRATIONS_DIR, kind);
  const files = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(files.map(async (f) => ({ version: f.replace(/\.sql$/, ''), sql: await readFile(path.join(dir, f), 'utf8') })));
}

/** Creates the Postgres database named in the URL if it does not exist. */
export async function ensurePostgresDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const dbName = decodeURIComponent(target.pathname.replace(/^\//, ''));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
    if (!rowCount) {
      // identifiers cannot be parameters; quote it as an identifier
      await client.query(`CREATE DATABASE "${dbName.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently
      });
    }
  } finally {
    await client.end();
  }
}

export async function migratePostgres(url: string): Promise<string[]> {
  await ensurePostgresDatabase(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const applied: string[] = [];
  try {
    // one migrator at a time (tests and services may start together)
    await client.query('SELECT pg_advisory_lock(727274)');
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const m of await loadMigrations('postgres')) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
        await client.query('COMMIT');
        applied.push(m.version);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`postgres migration ${m.version} failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(727274)').catch(() => undefined);
    await client.end();
  }
  return applied;
}

export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

/**
 * `root` must have no default database (it creates it); statements then run with names qualified by {db}.
 * `shape` rewrites every DDL statement for the deployment (packages/core/src/setup/cluster.ts: unchanged on
 * one server, ON CLUSTER + Replicated*MergeTree on a cluster).
 */
export async function migrateClickHouse(
  root: ClickHouseClient,
  database: string,
  shape: (statement: string, migration: string) => string = (s) => s,
): Promise<string[]> {
  const db = sqlIdentifier(database);
  await root.command({ query: shape(`CREATE DATABASE IF NOT EXISTS ${db}`, 'schema_migrations') });
  await root.command({
    query: shape(
      `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version String, applied_at DateTime DEFAULT now()) ENGINE = TinyLog`,
      'schema_migrations',
    ),
  });
  const rs = await root.query({ query: `SELECT version FROM ${db}.schema_migrations`, format: 'JSONEachRow' });
  const done = new Set((await rs.json<{ version: string }>()).map((r) => r.version));
  const applied: string[] = [];
  for (const m of await loadMigrations('clickhouse')) {
    if (done.has(m.version)) continue;
    for (const stmt of splitStatements(m.sql)) {
      try {
        await root.command({ query: shape(stmt.replaceAll('{db}', db), m.version) });
      } catch (err) {
        throw new Error(`clickhouse migration ${m.version} failed on: ${stmt.slice(0, 120)}…: ${(err as Error).message}`);
      }
    }
    await root.command({ query: `INSERT INTO ${db}.schema_migrations (version) VALUES (${sqlString(m.version)})` });
    applied.push(m.version);
  }
  return applied;
}
