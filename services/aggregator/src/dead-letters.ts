// Dead letters: the record (value as-is, key kept) to the dead-letter topic with the reason in headers,
// and a row in ClickHouse dead_letters for the events debugger. Replays may publish a record twice
// (at-least-once); the table deduplicates by (organization, topic, partition, offset).
import { toClickHouseEpochSeconds, type ClickHouseClient, type UsageEvent } from '@meterline/core';
import type { Producer } from 'kafkajs';

export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  reason: string;
  error: string;
  event?: Partial<UsageEvent>;
}

export async function publishDeadLetters(producer: Producer, deadLetterTopic: string, letters: DeadLetter[]): Promise<void> {
  if (letters.length === 0) return;
  await producer.send({
    topic: deadLetterTopic,
    acks: -1,
    messages: letters.map((d) => ({
      key: d.key,
      value: d.value,
      headers: {
        reason: d.reason,
        error: d.error.slice(0, 1000),
        'source-topic': d.topic,
        'source-partition': String(d.partition),
        'source-offset': d.offset,
        ...(typeof d.event?.organizationId === 'string' ? { 'organization-id': d.event.organizationId } : {}),
        'dead-lettered-at': new Date().toISOString(),
      },
    })),
  });
}

/** A dead letter's text as the table can hold it: lone surrogates (ClickHouse refuses them) replaced. */
const text = (v: unknown, max = 1000) => (typeof v === 'string' ? v.slice(0, max).toWellFormed() : '');

export async function storeDeadLetters(ch: ClickHouseClient, letters: DeadLetter[]): Promise<void> {
  if (letters.length === 0) return;
  // epoch seconds: dead_lettered_at is a zone-less DateTime (a partition key 18.16 cannot alter)
  const now = toClickHouseEpochSeconds(Date.now());
  await ch.insert({
    table: 'dead_letters',
    format: 'JSONEachRow',
    values: letters.map((d) => ({
      organization_id: text(d.event?.organizationId),
      customer_id: text(d.event?.customerId),
      event_name: text(d.event?.eventName),
      idempotency_id: text(d.event?.idempotencyId),
      reason: text(d.reason),
      error: text(d.error),
      payload_base64: d.value ? d.value.subarray(0, 64 * 1024).toString('base64') : '',
      kafka_topic: d.topic,
      kafka_partition: d.partition,
      kafka_offset: d.offset,
      dead_lettered_at: now,
    })),
  });
}
