// Records usage the way the gateway does: core's toKafkaMessage (the same key and Avro value as the
// gateway's), acks -1 (all in-sync replicas), so the aggregator counts it like
// any other event. Every event carries a generated idempotency id (derived from the request's
// idempotency_key when it has one: idempotentEventIds), so a retried send that lands
// twice is deduplicated downstream (by idempotency id); that is why the producer does not need
// kafkajs' idempotent mode, whose single in-flight request would serialize concurrent checks.
import { createHash, randomUUID } from 'node:crypto';
import { Partitioners, type Producer } from 'kafkajs';
import { createKafka, toKafkaMessage, type KafkaConfig, type Logger, type UsageEvent } from '@meterline/core';
import type { KafkaPosition } from './ledger.ts';

export interface UsageRecorder {
  /**
   * Produces one customer's events (acks from all in-sync replicas). Resolves with where the last one
   * landed (the usage ledger counts it until the aggregator passes that offset), or null when there is
   * no single position (no events; several partitions, which one customer's key never spans).
   */
  record(events: UsageEvent[]): Promise<KafkaPosition | null>;
  stop(): Promise<void>;
}

export function newIdempotencyId(): string {
  return `bill_${randomUUID()}`;
}

/**
 * The event ids of a request that carries an `idempotency_key` (usage/idempotency.ts): derived from the
 * organization and the key, event i of the request gets `bill_ik_<hash>_<i>`. A request executed again
 * with the same key (its first answer was never stored: crash after the produce) produces the same ids,
 * so the aggregator's dedup by idempotency id counts its events once.
 */
export function idempotentEventIds(orgId: string, idempotencyKey: string): (index: number) => string {
  const h = createHash('sha256').update(`${orgId}\u0000${idempotencyKey}`, 'utf8').digest('hex').slice(0, 40);
  return (index) => `bill_ik_${h}_${index}`;
}

export function kafkaUsageRecorder(cfg: KafkaConfig, logger?: Logger): UsageRecorder {
  const kafka = createKafka({ ...cfg, clientId: `${cfg.clientId}-billing` }, logger);
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  let connected: Promise<void> | null = null;
  const connect = () =>
    (connected ??= producer.connect().catch((err) => {
      connected = null;
      throw err;
    }));
  return {
    async record(events) {
      if (events.length === 0) return null;
      await connect();
      const meta = await producer.send({
        topic: cfg.eventsTopic,
        acks: -1,
        messages: events.map((e) => toKafkaMessage(e)),
      });
      const only = meta.length === 1 ? meta[0] : undefined;
      if (!only || only.baseOffset === undefined || !/^\d+$/.test(only.baseOffset)) return null;
      return { partition: only.partition, offset: (BigInt(only.baseOffset) + BigInt(events.length - 1)).toString() };
    },
    async stop() {
      if (connected)
        await connected.then(
          () => producer.disconnect(),
          () => undefined,
        );
    },
  };
}
