import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.ts';

describe('loadConfig', () => {
  it('defaults to the local stack', () => {
    const c = loadConfig({});
    expect(c.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.clickhouse.url).toBe('http://127.0.0.1:8123');
    expect(c.redisUrl).toBe('redis://127.0.0.1:6380');
    expect(c.gateway.bodyLimitBytes).toBe(1024 * 1024);
    expect(c.gateway.maxBatchEvents).toBe(1000);
    expect(c.kafka.eventsPartitions).toBeGreaterThanOrEqual(6);
  });

  it('reads overrides and splits broker lists', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'a:1, b:2', GATEWAY_PORT: '9999' });
    expect(c.kafka.brokers).toEqual(['a:1', 'b:2']);
    expect(c.gateway.port).toBe(9999);
  });

  it('names the variable when a number is malformed', () => {
    expect(() => loadConfig({ GATEWAY_BODY_LIMIT_BYTES: '1MB' })).toThrow(ConfigError);
    expect(() => loadConfig({ GATEWAY_BODY_LIMIT_BYTES: '1MB' })).toThrow(/GATEWAY_BODY_LIMIT_BYTES/);
  });
});
