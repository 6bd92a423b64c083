// Raw events into ClickHouse. One INSERT per partition chunk, rows in offset order; the sink's progress
// for a partition is max(kafka_offset) in events_by_offset (fed from events by a materialized view in
// the same INSERT), so a replay after a crash skips what is already stored.
import { propertyColumns, sqlNumber, sqlString, toClickHouseEpochSeconds, type ClickHouseClient, type UsageEvent } from '@meterline/core';

export interface RawRow {
  event: UsageEvent;
  topic: string;
  partition: number;
  offset: string;
}

/** Highest stored offset >= fromOffset of the partition, or -1 when none. */
export async function sinkProgress(ch: ClickHouseClient, topic: string, partition: number, fromOffset: bigint): Promise<bigint> {
  const rs = await ch.query({
    query: `SELECT count() AS c, max(kafka_offset) AS m FROM events_by_offset
             WHERE kafka_topic = ${sqlString(topic)} AND kafka_partition = ${sqlNumber(partition)} AND kafka_offset >= ${fromOffset.toString()}`,
    format: 'JSONEachRow',
  });
  const row = (await rs.json<{ c: string; m: string }>())[0];
  return row && Number(row.c) > 0 ? BigInt(row.m) : -1n;
}

export async function insertRaw(ch: ClickHouseClient, rows: RawRow[]): Promise<void> {
  if (rows.length === 0) return;
  // DateTimes as epoch seconds: the same instant whatever the column's or the server's zone (0007)
  const now = toClickHouseEpochSeconds(Date.now());
  await ch.insert({
    table: 'events',
    format: 'JSONEachRow',
    values: rows.map(({ event: e, topic, partition, offset }) => ({
      organization_id: e.organizationId,
      customer_id: e.customerId,
      event_name: e.eventName,
      idempotency_id: e.idempotencyId,
      time_created: toClickHouseEpochSeconds(e.timeCreatedMs),
      time_created_ms: e.timeCreatedMs,
      received_at: toClickHouseEpochSeconds(e.receivedAtMs),
      received_at_ms: e.receivedAtMs,
      ingested_at: now,
      properties: JSON.stringify(e.properties),
      source: e.source,
      entity_id: e.entityId ?? '',
      kafka_topic: topic,
      kafka_partition: partition,
      kafka_offset: offset,
      ...propertyColumns(e.properties),
    })),
  });
}
