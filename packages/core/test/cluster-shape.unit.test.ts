import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, splitStatements } from '../src/migrate/migrate.ts';
import { clusterShaper, shaperFor, singleServer, UnshapeableStatement } from '../src/setup/cluster.ts';

const dir = path.join(MIGRATIONS_DIR, 'clickhouse');
const files = readdirSync(dir)
  .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
  .sort();
const shape = clusterShaper({ cluster: 'meterline', replicationPath: '/clickhouse/tables/{shard}' });

describe('ClickHouse migration shapes', () => {
  it('one server: every statement of every migration unchanged', () => {
    expect(shaperFor({ cluster: '' })).toBe(singleServer);
    for (const f of files)
      for (const s of splitStatements(readFileSync(path.join(dir, f), 'utf8')))
        expect(singleServer(s.replaceAll('{db}', 'meterline'), f)).toBe(s.replaceAll('{db}', 'meterline'));
  });

  for (const f of files) {
    it(`cluster: ${f} is shaped (replicated tables, ON CLUSTER DDL)`, () => {
      const version = f.replace(/\.sql$/, '');
      for (const raw of splitStatements(readFileSync(path.join(dir, f), 'utf8'))) {
        const s = raw.replaceAll('{db}', 'meterline');
        const out = shape(s, version);
        if (/^CREATE\s+TABLE/i.test(s)) {
          const table = /meterline\.([a-z_]+)/.exec(s)?.[1];
          expect(out).toMatch(/^CREATE TABLE IF NOT EXISTS meterline\.[a-z_]+ ON CLUSTER meterline\s*\(/);
          expect(out).toContain(`ENGINE = Replicated`);
          expect(out).toContain(`('/clickhouse/tables/{shard}/meterline/${table}/${version}', '{replica}'`);
          expect(out).not.toMatch(/ENGINE = (Replacing)?MergeTree/);
        } else if (/^(CREATE|DROP)\s/i.test(s)) {
          expect(out).toMatch(/^(CREATE|DROP) [A-Z ]+meterline\.[a-z_]+ ON CLUSTER meterline( |$)/);
        } else {
          // ALTERs replicate through the replicated table itself
          expect(s).toMatch(/^ALTER TABLE meterline\./);
          expect(out).toBe(s);
        }
      }
    });
  }

  it('engine arguments kept, Log tables become ReplicatedMergeTree, unknown kinds refused', () => {
    expect(shape('CREATE TABLE IF NOT EXISTS d.t (a String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY a', '0099_x')).toBe(
      "CREATE TABLE IF NOT EXISTS d.t ON CLUSTER meterline (a String, v UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/t/0099_x', '{replica}', v) ORDER BY a",
    );
    expect(shape('CREATE TABLE IF NOT EXISTS d.schema_migrations (version String) ENGINE = TinyLog', 'schema_migrations')).toContain(
      "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/schema_migrations/schema_migrations', '{replica}') ORDER BY tuple()",
    );
    expect(shape('CREATE DATABASE IF NOT EXISTS d', 'x')).toBe('CREATE DATABASE IF NOT EXISTS d ON CLUSTER meterline');
    expect(() => shape('OPTIMIZE TABLE d.t FINAL', 'x')).toThrow(UnshapeableStatement);
    expect(() => shape('CREATE TABLE d.t (a String) ENGINE = Memory', 'x')).toThrow(UnshapeableStatement);
    expect(() => shape('CREATE MATERIALIZED VIEW d.v ENGINE = MergeTree() ORDER BY a AS SELECT a FROM d.t', 'x')).toThrow(
      UnshapeableStatement,
    );
  });
});
