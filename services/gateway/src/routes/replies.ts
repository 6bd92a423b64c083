// Replies shared by every ingest route: the error envelope, 503 with Retry-After, a request's summary.
import type { FastifyReply } from 'fastify';
import { statusOf, type IngestSummary, type UnavailableError } from '../ingest.ts';
import type { GatewayMetrics } from '../metrics.ts';

export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export interface Replies {
  /** 503 `<cause>_unavailable` (or `overloaded`) with Retry-After, counted in gateway_unavailable_total. */
  unavailable(reply: FastifyReply, err: UnavailableError): FastifyReply;
  /** A request's per-event results: 200 / 207 / 400, or 503 with Retry-After: 1 when any must be retried. */
  summary(reply: FastifyReply, summary: IngestSummary): FastifyReply;
  /** 413: more events (or Segment messages) than GATEWAY_MAX_BATCH_EVENTS. */
  batchTooLarge(reply: FastifyReply, n: number): FastifyReply;
}

export function createReplies(opts: { metrics: GatewayMetrics; maxBatchEvents: number }): Replies {
  return {
    unavailable(reply, err) {
      opts.metrics.unavailable.inc({ reason: err.cause_ });
      return reply
        .code(503)
        .header('retry-after', String(err.retryAfterSeconds))
        .send(errorBody(`${err.cause_}_unavailable`.replace('overloaded_unavailable', 'overloaded'), err.message));
    },
    summary(reply, summary) {
      const status = statusOf(summary);
      if (status === 503) reply.header('retry-after', '1');
      return reply.code(status).send(summary);
    },
    batchTooLarge(reply, n) {
      return reply.code(413).send(errorBody('batch_too_large', `a request may carry at most ${opts.maxBatchEvents} events, got ${n}`));
    },
  };
}
