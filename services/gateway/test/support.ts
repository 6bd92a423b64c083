// Test helpers for the gateway: a topic reader that decodes every record, and an HTTP helper.
import { decodeEvent, type UsageEvent } from '@meterline/core';
import type { Consumer, Kafka } from 'kafkajs';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';

export interface Consumed extends UsageEvent {
  key: string;
  partition: number;
}

/** Reads the whole topic from the beginning into memory (decoded with the published schema). */
export class TopicReader {
  readonly records: Consumed[] = [];
  readonly undecodable: Buffer[] = [];
  private consumer: Consumer;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
  ) {
    this.consumer = kafka.consumer({ groupId: uniqueId('g_gateway_test'), sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ message, partition }) => {
        try {
          this.records.push({ ...decodeEvent(message.value!), key: message.key!.toString(), partition });
        } catch {
          this.undecodable.push(message.value!);
        }
      },
    });
  }

  of(organizationId: string): Consumed[] {
    return this.records.filter((r) => r.organizationId === organizationId);
  }

  /** Waits until a record with this idempotency id of this organization has been read. */
  async waitForId(organizationId: string, idempotencyId: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => this.of(organizationId).some((r) => r.idempotencyId === idempotencyId), Boolean, {
      timeoutMs,
      what: `event ${idempotencyId} in the topic`,
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
  }
}

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Counts of each idempotency id among an organization's records. */
export function idCounts(records: Consumed[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.idempotencyId] = (counts[r.idempotencyId] ?? 0) + 1;
  return counts;
}
