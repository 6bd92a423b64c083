// The one mapping of a usage event to its Kafka record, for every producer (the gateway's ingest, billing's
// usage recorder): key = organization/customer (one customer's events stay on one partition, in order),
// value = the Avro single-object encoding the aggregator decodes. No headers: the value is self-describing
// (its schema fingerprint is in the value).
import type { UsageEvent } from './event.ts';
import { eventKey } from './event.ts';
import { encodeEvent } from './avro.ts';

/** Structurally a kafkajs `Message`. */
export interface EventKafkaMessage {
  key: string;
  value: Buffer;
}

export function toKafkaMessage(event: UsageEvent): EventKafkaMessage {
  return { key: eventKey(event), value: encodeEvent(event) };
}
