// The poison-record fault: records the gateway would never produce, written straight to the events topic
// (one per partition, between the streamer's good events) — bytes that are not Avro, a truncated Avro
// record, an empty value, valid Avro whose text is not Unicode (lone surrogate: ClickHouse refuses such
// JSON), an oversized record (a 300 KiB property value) — plus valid-but-unusual events that MUST be
// counted (a denormal float, a 1,024-character property of surrogate pairs). The aggregator must
// dead-letter each poison record with a reason (services/aggregator/README.md "No record blocks a
// partition"), count the unusual ones exactly once, and keep counting the good stream without a stall.
import { randomBytes } from 'node:crypto';
import {
  createKafka,
  encodeEvent,
  eventKey,
  sqlIdentifier,
  sqlString,
  type ClickHouseClient,
  type Config,
  type UsageEvent,
} from '@meterline/core';
import type { Producer } from 'kafkajs';

export interface PoisonRecord {
  label: string;
  partition: number;
  offset: string;
  /** The Avro-valid poison's idempotency id (must never be counted), null for undecodable bytes. */
  idempotencyId: string | null;
}

export interface PoisonBatch {
  poison: PoisonRecord[];
  /** Valid events produced directly: each must be counted exactly once (like an acknowledged event). */
  mustCount: string[];
}

export class PoisonInjector {
  private producer: Producer | null = null;
  private seq = 0;

  constructor(
    private readonly config: Config,
    private readonly organizationId: string,
    private readonly eventName: string,
    /** the kind's customers: the valid-but-unusual events count for them */
    private readonly customers: readonly string[],
    private readonly runId: string,
  ) {}

  private async connected(): Promise<Producer> {
    if (!this.producer) {
      const p = createKafka(this.config.kafka).producer({ allowAutoTopicCreation: false });
      await p.connect();
      this.producer = p;
    }
    return this.producer;
  }

  private event(extra: Partial<UsageEvent>): UsageEvent {
    const n = this.seq++;
    return {
      organizationId: this.organizationId,
      customerId: this.customers[n % this.customers.length]!,
      eventName: this.eventName,
      idempotencyId: `${this.runId}-direct-${n}`,
      timeCreatedMs: Date.now(),
      receivedAtMs: Date.now(),
      properties: { tokens: 1, region: 'eu' },
      source: 'api',
      ...extra,
    };
  }

  /** One injection: every poison kind once, spread over the partitions, plus the must-count events. */
  async inject(): Promise<PoisonBatch> {
    const partitions = this.config.kafka.eventsPartitions;
    const lone = this.event({ properties: { note: `lone ${'\ud800'} surrogate` } });
    const big = this.event({ properties: { blob: 'x'.repeat(300 * 1024) } });
    const truncatedSource = encodeEvent(this.event({}));
    const truncatedId = `${this.runId}-direct-${this.seq - 1}`;
    const denormal = this.event({ properties: { tokens: 5e-324, region: 'eu' } });
    const pairs = this.event({ properties: { note: '\u{1F600}'.repeat(512), tokens: 2 } });
    const records: { label: string; value: Buffer | null; key: string; idempotencyId: string | null }[] = [
      { label: 'not_avro', value: randomBytes(64), key: 'poison', idempotencyId: null },
      {
        label: 'truncated_avro',
        value: truncatedSource.subarray(0, Math.floor(truncatedSource.length / 2)),
        key: 'poison',
        idempotencyId: truncatedId,
      },
      { label: 'empty_value', value: null, key: 'poison', idempotencyId: null },
      { label: 'lone_surrogate', value: encodeEvent(lone), key: eventKey(lone), idempotencyId: lone.idempotencyId },
      { label: 'oversized_300KiB', value: encodeEvent(big), key: eventKey(big), idempotencyId: big.idempotencyId },
    ];
    const valid = [denormal, pairs];
    const producer = await this.connected();
    const poison: PoisonRecord[] = [];
    // one send per record: its partition and offset are exactly known (the dead letter names them)
    for (const [i, r] of records.entries()) {
      const partition = (this.seq + i) % partitions;
      const [meta] = await producer.send({
        topic: this.config.kafka.eventsTopic,
        acks: -1,
        messages: [{ key: r.key, value: r.value, partition }],
      });
      poison.push({ label: r.label, partition, offset: String(meta!.baseOffset), idempotencyId: r.idempotencyId });
    }
    await producer.send({
      topic: this.config.kafka.eventsTopic,
      acks: -1,
      messages: valid.map((e, i) => ({ key: eventKey(e), value: encodeEvent(e), partition: (this.seq + i) % partitions })),
    });
    return { poison, mustCount: valid.map((e) => e.idempotencyId) };
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = null;
  }
}

export interface PoisonVerdict {
  expected: number;
  deadLettered: number;
  /** "label@partition:offset" of poison records without a dead letter */
  missing: string[];
  /** poison records whose idempotency id reached the events table */
  counted: number;
  reasons: Record<string, string>;
}

/** Each poison record has its dead_letters row (by topic, partition, offset) and none is in `events`. */
export async function verifyPoison(
  ch: ClickHouseClient,
  config: Config,
  organizationId: string,
  poison: readonly PoisonRecord[],
): Promise<PoisonVerdict> {
  const db = sqlIdentifier(config.clickhouse.database);
  const topic = sqlString(config.kafka.eventsTopic);
  const rs = await ch.query({
    query: `SELECT kafka_partition AS p, toString(kafka_offset) AS o, any(reason) AS reason FROM ${db}.dead_letters
            WHERE kafka_topic = ${topic} GROUP BY kafka_partition, kafka_offset`,
    format: 'JSONEachRow',
  });
  const dead = new Map<string, string>();
  for (const r of await rs.json<{ p: number | string; o: string; reason: string }>()) dead.set(`${Number(r.p)}:${r.o}`, r.reason);
  const missing: string[] = [];
  const reasons: Record<string, string> = {};
  for (const p of poison) {
    const reason = dead.get(`${p.partition}:${p.offset}`);
    if (reason === undefined) missing.push(`${p.label}@${p.partition}:${p.offset}`);
    else reasons[p.label] = reason;
  }
  const ids = poison.map((p) => p.idempotencyId).filter((x): x is string => x !== null);
  let counted = 0;
  if (ids.length) {
    const c = await ch.query({
      query: `SELECT count() AS c FROM ${db}.events WHERE organization_id = ${sqlString(organizationId)}
              AND idempotency_id IN (${ids.map(sqlString).join(',')})`,
      format: 'JSONEachRow',
    });
    counted = Number((await c.json<{ c: string | number }>())[0]?.c ?? 0);
  }
  return { expected: poison.length, deadLettered: poison.length - missing.length, missing, counted, reasons };
}
