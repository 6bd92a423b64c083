// The ingest pipeline shared by every intake (native API, Segment webhooks, Segment HTTP API):
//   validated events → in-batch dedup → in-flight bound → Redis claims → Kafka (acks=all) → Redis "done".
// Nothing is answered "accepted" before Kafka acknowledged it; any Kafka failure releases our claims and
// fails the whole request with 503 so that the client's retry is accepted.
import { toKafkaMessage, type Logger, type UsageEvent } from '@meterline/core';
import type { Message } from 'kafkajs';
import type { DedupStore } from './dedup.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { ProduceQueue } from './produce-queue.ts';
import type { EventResult, IngestSummary } from '@meterline/contracts';
import type { ValidEvent } from './validation.ts';

// The response types are the wire contract shared with the SDK (@meterline/contracts, packages/contracts/src/ingest.ts).
export type { EventResult, EventStatus, IngestSummary } from '@meterline/contracts';

/** One item of a request after validation: either an event to ingest or an already final result. */
export type PreparedItem = { event: ValidEvent } | { result: Omit<EventResult, 'index'> };

export type UnavailableCause = 'kafka' | 'redis' | 'postgres' | 'overloaded' | 'shutting_down';

export class UnavailableError extends Error {
  constructor(
    readonly cause_: UnavailableCause,
    message: string,
    readonly retryAfterSeconds = 2,
  ) {
    super(message);
  }
}

export class Ingestor {
  private inFlight = 0;

  constructor(
    private readonly deps: {
      dedup: DedupStore;
      queue: ProduceQueue;
      metrics: GatewayMetrics;
      logger: Logger;
      maxInFlightEvents: number;
    },
  ) {}

  get inFlightEvents(): number {
    return this.inFlight;
  }

  async ingest(organizationId: string, source: string, items: PreparedItem[], receivedAtMs: number): Promise<IngestSummary> {
    const { dedup, queue, metrics, logger } = this.deps;
    const results: EventResult[] = new Array(items.length);
    // id → index of its first occurrence in this request (client-supplied ids only)
    const firstById = new Map<string, number>();
    const claimIds: string[] = [];
    const claimIndexes: number[] = [];
    const generated: number[] = [];
    const inBatchDuplicates: Array<[index: number, first: number]> = [];

    items.forEach((item, index) => {
      if ('result' in item) {
        results[index] = { index, ...item.result };
        return;
      }
      const e = item.event;
      if (e.idempotencyIdGenerated) {
        generated.push(index);
        return;
      }
      const first = firstById.get(e.idempotencyId);
      if (first !== undefined) {
        inBatchDuplicates.push([index, first]);
        return;
      }
      firstById.set(e.idempotencyId, index);
      claimIds.push(e.idempotencyId);
      claimIndexes.push(index);
    });

    const unique = claimIds.length + generated.length;
    if (unique > 0) {
      if (this.inFlight + unique > this.deps.maxInFlightEvents) {
        throw new UnavailableError('overloaded', `gateway overloaded: more than ${this.deps.maxInFlightEvents} events in flight`, 1);
      }
      this.inFlight += unique;
      metrics.inFlight.set(this.inFlight);
      try {
        const token = dedup.newToken();
        let outcomes: Awaited<ReturnType<DedupStore['claim']>>;
        try {
          outcomes = await dedup.claim(organizationId, claimIds, token);
        } catch (err) {
          // Some claims may have been written before the failure: release what we can (best effort).
          void dedup.release(organizationId, claimIds, token).catch(() => undefined);
          throw new UnavailableError('redis', `deduplication store unavailable: ${(err as Error).message}`);
        }
        const produceIndexes: number[] = [...generated];
        const claimed: string[] = [];
        outcomes.forEach((outcome, i) => {
          const index = claimIndexes[i]!;
          const id = claimIds[i]!;
          if (outcome === 'claimed') {
            produceIndexes.push(index);
            claimed.push(id);
          } else if (outcome === 'duplicate') results[index] = { index, status: 'duplicate', idempotency_id: id };
          else results[index] = { index, status: 'retry', idempotency_id: id, reason: 'in_flight' };
        });

        if (produceIndexes.length > 0) {
          produceIndexes.sort((a, b) => a - b); // keep the client's order within a customer
          const messages: Message[] = produceIndexes.map((index) => {
            const e = (items[index] as { event: ValidEvent }).event;
            const usage: UsageEvent = {
              organizationId,
              customerId: e.customerId,
              ...(e.entityId !== undefined ? { entityId: e.entityId } : {}),
              eventName: e.eventName,
              idempotencyId: e.idempotencyId,
              timeCreatedMs: e.timeCreatedMs,
              receivedAtMs,
              properties: e.properties,
              source,
            };
            return toKafkaMessage(usage);
          });
          try {
            await queue.send(messages);
          } catch (err) {
            try {
              await dedup.release(organizationId, claimed, token);
            } catch (releaseErr) {
              // The claims expire after the claim TTL; until then retries get status "retry".
              logger.warn({ err: (releaseErr as Error).message }, 'could not release dedup claims');
            }
            throw new UnavailableError('kafka', `event log unavailable: ${(err as Error).message}`);
          }
          try {
            await dedup.commit(organizationId, claimed);
          } catch (err) {
            // The events ARE durable: answer accepted. The pending claims expire; a later retry could be
            // produced again, which the aggregator's (organization, idempotency_id) dedup absorbs.
            metrics.dedupCommitFailures.inc(claimed.length);
            logger.warn({ err: (err as Error).message, events: claimed.length }, 'could not mark events done in Redis');
          }
          for (const index of produceIndexes) {
            results[index] = { index, status: 'accepted', idempotency_id: (items[index] as { event: ValidEvent }).event.idempotencyId };
          }
        }
      } finally {
        this.inFlight -= unique;
        metrics.inFlight.set(this.inFlight);
      }
    }

    for (const [index, first] of inBatchDuplicates) {
      const r = results[first]!;
      results[index] =
        r.status === 'retry'
          ? { index, status: 'retry', idempotency_id: r.idempotency_id, reason: 'in_flight' }
          : { index, status: 'duplicate', idempotency_id: r.idempotency_id, duplicate_of: first };
    }

    const summary: IngestSummary = { accepted: 0, duplicates: 0, rejected: 0, retry: 0, ignored: 0, results };
    for (const r of results) {
      switch (r.status) {
        case 'accepted':
          summary.accepted++;
          break;
        case 'duplicate':
          summary.duplicates++;
          break;
        case 'rejected':
          summary.rejected++;
          break;
        case 'retry':
          summary.retry++;
          break;
        case 'ignored':
          summary.ignored++;
          break;
      }
      const reason =
        r.status === 'rejected'
          ? (r.errors?.[0]?.reason ?? 'invalid')
          : r.status === 'duplicate'
            ? r.duplicate_of !== undefined
              ? 'same_request'
              : 'seen_before'
            : (r.reason ?? 'ok');
      metrics.events.inc({ source, outcome: r.status, reason });
    }
    metrics.batchSize.observe({ source }, items.length);
    return summary;
  }
}

/**
 * HTTP status for a request's summary: 200 all accepted (duplicates and ignored count as success),
 * 207 some accepted and some rejected, 400 none accepted, 503 when any event must be retried.
 */
export function statusOf(s: IngestSummary): number {
  if (s.retry > 0) return 503;
  const ok = s.accepted + s.duplicates + s.ignored;
  if (s.rejected === 0) return 200;
  return ok > 0 ? 207 : 400;
}
