// The Kafka -> ClickHouse leg for integration tests. Uses the real aggregator (startAggregator from
// @meterline/aggregator) when it exists; until then a minimal stand-in consumer that decodes the
// Avro events and inserts them into the ClickHouse `events` table, which billing's raw-events usage
// reader (the same contract as core's queryUsage) reads.
import { createClickHouse, createKafka, decodeEvent, toClickHouseDateTime, type Config } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';

export interface Pipeline { kind: 'aggregator' | 'stand-in'; stop(): Promise<void> }

export async function startPipeline(config: Config): Promise<Pipeline> {
  let mod: Record<string, unknown> | null = null;
  const specifier = '@meterline/aggregator'; // not a literal: the package may not exist yet
  try { mod = (await import(specifier)) as Record<string, unknown>; } catch { mod = null; }
  const start = mod?.['startAggregator'] as ((c: Config, d?: unknown) => Promise<{ stop: () => Promise<void> }>) | undefined;
  if (typeof start === 'function') {
    const agg = await start({ ...config, aggregator: { ...config.aggregator, port: 0, groupId: uniqueId('g_bill_agg') } });
    return { kind: 'aggregator', stop: () => agg.stop() };
  }
  const ch = createClickHouse(config.clickhouse);
  const consumer = createKafka(config.kafka).consumer({ groupId: uniqueId('g_bill_sink'), sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic: config.kafka.eventsTopic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const values = batch.messages.map((m) => {
        const e = decodeEvent(m.value!);
        return {
          organization_id: e.organizationId, customer_id: e.customerId, event_name: e.eventName, idempotency_id: e.idempotencyId,
          time_created: toClickHouseDateTime(e.timeCreatedMs), time_created_ms: e.timeCreatedMs, received_at: toClickHouseDateTime(e.receivedAtMs),
          properties: JSON.stringify(e.properties), source: e.source, kafka_partition: batch.partition, kafka_offset: Number(m.offset),
        };
      });
      if (values.length) await ch.insert({ table: 'events', values, format: 'JSONEachRow' });
    },
  });
  return { kind: 'stand-in', async stop() { await consumer.disconnect(); await ch.close(); } };
}
