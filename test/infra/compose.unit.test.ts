// docker-compose.yml cannot run here (no Docker engine), so check what can be checked without one:
// the file is valid for docker-compose, and it wires services with settings Meterline actually reads.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@meterline/core';

const root = fileURLToPath(new URL('../../', import.meta.url));
const compose = readFileSync(`${root}docker-compose.yml`, 'utf8');

describe('docker-compose.yml', () => {
  it('is valid according to docker-compose', () => {
    // docker-compose is installed by `infra/local/stack.sh install-test-tools` (test/run.sh runs it)
    const out = execFileSync('docker-compose', ['-f', `${root}docker-compose.yml`, 'config'], { encoding: 'utf8' });
    for (const service of ['kafka', 'clickhouse', 'redis', 'postgres', 'setup', 'gateway', 'aggregator', 'billing', 'prometheus']) {
      expect(out).toMatch(new RegExp(`^  ${service}:`, 'm'));
    }
  });

  it('configures services only with variables the config module reads, pointing at the compose hosts', () => {
    const block = compose.slice(compose.indexOf('x-meterline-env'), compose.indexOf('services:'));
    const vars = Object.fromEntries([...block.matchAll(/^\s+([A-Z_]+): (.+)$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
    expect(Object.keys(vars).sort()).toEqual(['ADMIN_SECRET', 'CLICKHOUSE_URL', 'DATABASE_URL', 'KAFKA_BROKERS', 'LOG_LEVEL', 'REDIS_URL']);
    const cfg = loadConfig({ ...vars, ADMIN_SECRET: 'x' });
    expect(cfg.kafka.brokers).toEqual(['kafka:9092']);
    expect(cfg.clickhouse.url).toBe('http://clickhouse:8123');
    expect(cfg.redisUrl).toBe('redis://redis:6379');
    expect(cfg.postgresUrl).toBe('postgres://postgres:postgres@postgres:5432/meterline');
  });

  it('mounts the Prometheus config and alert rules, which promtool accepts, and whose tests pass', () => {
    expect(compose).toMatch(/\.\/infra\/prometheus:\/etc\/prometheus:ro/);
    // promtool comes with Debian's prometheus package, installed by `stack.sh install-test-tools`
    const dir = `${root}infra/prometheus`;
    expect(execFileSync('promtool', ['check', 'config', 'prometheus.yml'], { cwd: dir, encoding: 'utf8' })).toMatch(
      /SUCCESS: 6 rules found/,
    );
    expect(execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8' })).toMatch(/SUCCESS/);
  });

  it('uses a current ClickHouse LTS and Kafka 3.9 in KRaft mode', () => {
    expect(compose).toMatch(/image: clickhouse\/clickhouse-server:\d+\.\d+/);
    expect(compose).toMatch(/image: apache\/kafka:3\.9\./);
    expect(compose).toMatch(/KAFKA_PROCESS_ROLES: broker,controller/);
  });
});
