// Baselines the services are measured against:
//  - raw kafkajs producer writing the same Avro-encoded events (core's encodeEvent) to the same broker;
//  - a plain Redis GET round trip from Node (the floor for entitlement checks);
//  - ClickHouse's own Kafka table engine consuming a topic into a plain MergeTree table.
import {
  encodeEvent,
  eventKey,
  createKafka,
  type Config,
  type UsageEvent,
  type ClickHouseClient,
  sqlIdentifier,
  sqlString,
} from '@meterline/core';
import { CompressionTypes, type Producer } from 'kafkajs';
import { Redis } from 'ioredis';
import { nowMs, sleep } from './stats.ts';
import type { ClientEvent, EventSource } from './load.ts';

export function toUsageEvent(organizationId: string, e: ClientEvent): UsageEvent {
  return {
    organizationId,
    customerId: e.customer_id,
    eventName: e.event_name,
    idempotencyId: e.idempotency_id,
    timeCreatedMs: Date.parse(e.time_created),
    receivedAtMs: Date.now(),
    properties: e.properties,
    source: 'api',
  };
}

export interface KafkaBaselineResult {
  batchSize: number;
  concurrency: number;
  events: number;
  elapsedMs: number;
  eventsPerSec: number;
  sendLatency: number[];
}

/** Concurrent workers share one producer (as a service would); each send() carries batchSize records, acks=all. */
export async function kafkaProducerBaseline(opts: {
  config: Config;
  topic: string;
  organizationId: string;
  source: EventSource;
  batchSize: number;
  concurrency: number;
  durationMs: number;
  maxEvents: number;
  encode?: (org: string, e: ClientEvent) => { key: string; value: Buffer | string };
  producer?: Producer;
}): Promise<KafkaBaselineResult> {
  const kafka = createKafka(opts.config.kafka);
  const producer = opts.producer ?? kafka.producer({ allowAutoTopicCreation: false });
  if (!opts.producer) await producer.connect();
  const encode =
    opts.encode ??
    ((org: string, e: ClientEvent) => {
      const u = toUsageEvent(org, e);
      return { key: eventKey(u), value: encodeEvent(u) };
    });
  let issued = 0;
  let done = 0;
  const lat: number[] = [];
  const t0 = nowMs();
  const stopAt = t0 + opts.durationMs;
  const worker = async () => {
    while (issued < opts.maxEvents && nowMs() < stopAt) {
      const n = Math.min(opts.batchSize, opts.maxEvents - issued);
      issued += n;
      const s = nowMs();
      const messages = opts.source.next(n).map((e) => encode(opts.organizationId, e));
      await producer.send({ topic: opts.topic, acks: -1, compression: CompressionTypes.None, messages });
      lat.push(nowMs() - s);
      done += n;
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    if (!opts.producer) await producer.disconnect();
  }
  const elapsedMs = nowMs() - t0;
  return {
    batchSize: opts.batchSize,
    concurrency: opts.concurrency,
    events: done,
    elapsedMs,
    eventsPerSec: done / (elapsedMs / 1000),
    sendLatency: lat,
  };
}

/** Redis GET round trips from `concurrency` concurrent callers on one connection (ioredis pipelines them). */
export async function redisGetFloor(opts: {
  redisUrl: string;
  concurrency: number;
  durationMs: number;
  maxRequests: number;
}): Promise<{ requests: number; elapsedMs: number; requestsPerSec: number; latency: number[] }> {
  const redis = new Redis(opts.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const key = `bench:floor:${process.pid}`;
  await redis.set(key, JSON.stringify({ allowed: true, balance: 12345 }), 'EX', 120);
  const lat: number[] = [];
  let issued = 0;
  const t0 = nowMs();
  const stopAt = t0 + opts.durationMs;
  const worker = async () => {
    while (issued < opts.maxRequests && nowMs() < stopAt) {
      issued++;
      const s = nowMs();
      await redis.get(key);
      lat.push(nowMs() - s);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const elapsedMs = nowMs() - t0;
  await redis.del(key);
  redis.disconnect();
  return { requests: lat.length, elapsedMs, requestsPerSec: lat.length / (elapsedMs / 1000), latency: lat };
}

/**
 * ClickHouse's Kafka engine (18.16 has it, but no Avro input format and it cannot skip the
 * single-object header, so it reads a parallel topic carrying the same events as JSONEachRow).
 * Creates: <db>.<name>_queue (Kafka engine), <db>.<name> (MergeTree), <db>.<name>_mv (queue -> table).
 * The consumer group's offsets are set to the beginning first, because 18.16's consumer starts at
 * the end of the topic for a new group (auto.offset.reset=largest), which would race the producer.
 */
export class ClickHouseKafkaEngine {
  constructor(
    private readonly ch: ClickHouseClient,
    private readonly config: Config,
    private readonly db: string,
    private readonly name: string,
    private readonly topic: string,
    private readonly groupId: string,
  ) {}

  private q(t: string): string {
    return `${sqlIdentifier(this.db)}.${sqlIdentifier(t)}`;
  }

  async create(partitions: number): Promise<void> {
    const admin = createKafka(this.config.kafka).admin();
    await admin.connect();
    try {
      await admin.setOffsets({
        groupId: this.groupId,
        topic: this.topic,
        partitions: Array.from({ length: partitions }, (_, p) => ({ partition: p, offset: '0' })),
      });
    } finally {
      await admin.disconnect();
    }
    const cols = `organization_id String, customer_id String, event_name String, idempotency_id String, time_created_ms UInt64, received_at_ms UInt64, properties String, source String`;
    await this.ch.command({
      query: `CREATE TABLE ${this.q(this.name)} (${cols}) ENGINE = MergeTree() ORDER BY (organization_id, customer_id, idempotency_id)`,
    });
    const brokers = this.config.kafka.brokers.join(',');
    await this.ch.command({
      query: `CREATE TABLE ${this.q(`${this.name}_queue`)} (${cols}) ENGINE = Kafka(${sqlString(brokers)}, ${sqlString(this.topic)}, ${sqlString(this.groupId)}, 'JSONEachRow')`,
    });
    await this.ch.command({
      query: `CREATE MATERIALIZED VIEW ${this.q(`${this.name}_mv`)} TO ${this.q(this.name)} AS SELECT * FROM ${this.q(`${this.name}_queue`)}`,
    });
  }

  async count(organizationId: string): Promise<number> {
    const rs = await this.ch.query({
      query: `SELECT count() AS c FROM ${this.q(this.name)} WHERE organization_id = ${sqlString(organizationId)}`,
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ c: string | number }>();
    return Number(rows[0]?.c ?? 0);
  }

  async waitForCount(
    organizationId: string,
    expected: number,
    timeoutMs: number,
  ): Promise<{ reached: boolean; count: number; atMs: number }> {
    const deadline = Date.now() + timeoutMs;
    let c = 0;
    for (;;) {
      c = await this.count(organizationId).catch(() => c);
      if (c >= expected) return { reached: true, count: c, atMs: Date.now() };
      if (Date.now() > deadline) return { reached: false, count: c, atMs: Date.now() };
      await sleep(100);
    }
  }

  async drop(): Promise<void> {
    for (const t of [`${this.name}_mv`, `${this.name}_queue`, this.name]) {
      await this.ch.command({ query: `DROP TABLE IF EXISTS ${this.q(t)}` }).catch(() => undefined);
    }
  }
}

export function jsonEncoder(org: string, e: ClientEvent): { key: string; value: string } {
  const now = Date.now();
  return {
    key: `${org}/${e.customer_id}`,
    value: JSON.stringify({
      organization_id: org,
      customer_id: e.customer_id,
      event_name: e.event_name,
      idempotency_id: e.idempotency_id,
      time_created_ms: Date.parse(e.time_created),
      received_at_ms: now,
      properties: JSON.stringify(e.properties),
      source: 'api',
    }),
  };
}
