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

export interface ProgressQuery {
  topic: string;
  partition: number;
  fromOffset: bigint;
}

/** Highest stored offset >= fromOffset of the partition, or -1 when none. */
export async function sinkProgress(ch: ClickHouseClient, topic: string, partition: number, fromOffset: bigint): Promise<bigint> {
  return (await sinkProgressMany(ch, [{ topic, partition, fromOffset }]))[0]!;
}

/** sinkProgress of several partitions in one query (coalesce.ts); one result per query, in order. */
export async function sinkProgressMany(ch: ClickHouseClient, queries: ProgressQuery[]): Promise<bigint[]> {
  const where = queries
    .map(
      (q) =>
        `(kafka_topic = ${sqlString(q.topic)} AND kafka_partition = ${sqlNumber(q.partition)} AND kafka_offset >= ${q.fromOffset.toString()})`,
    )
    .join(' OR ');
  const rs = await ch.query({
    query: `SELECT kafka_topic AS t, kafka_partition AS p, max(kafka_offset) AS m FROM events_by_offset
             WHERE ${where} GROUP BY kafka_topic, kafka_partition`,
    format: 'JSONEachRow',
  });
  const found = new Map<string, bigint>();
  for (const row of await rs.json<{ t: string; p: number; m: string }>()) found.set(`${row.t}\0${row.p}`, BigInt(row.m));
  // one query per partition: kafkajs never runs two chunks of one partition at once
  return queries.map((q) => found.get(`${q.topic}\0${q.partition}`) ?? -1n);
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
