// Subscriptions whose period close failed and that the scheduler has set aside (close.ts, migration
// 0006_close_failures.sql): the error, how often it failed and when it is retried next.
//   GET /v1/subscription_close_failures                      this organization's, by subscription id
//   GET /v1/subscriptions/:subscription_id/close_failure     one subscription's (close_error null when none)
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { ErrorResponse } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import { typed } from '../http/typed.ts';
import * as subs from '../subscriptions/store.ts';
import { listCloseFailures, type CloseFailure } from './close.ts';

const CloseFailureJson = Type.Object({
  subscription_id: Type.String(),
  customer_id: Type.String(),
  close_error: Type.Union([Type.String(), Type.Null()]),
  close_failed_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  close_attempts: Type.Integer(),
  next_retry_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const json = (f: CloseFailure) => ({
  subscription_id: f.subscription_id,
  customer_id: f.customer_id,
  close_error: f.close_error,
  close_failed_at: f.close_failed_at.toISOString(),
  close_attempts: f.close_attempts,
  next_retry_at: f.close_retry_at.toISOString(),
});

export async function closeFailureRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/subscription_close_failures',
    {
      schema: {
        summary: 'Subscriptions whose period close failed, set aside and retried with backoff',
        tags: ['subscriptions'],
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }),
        response: { 200: Type.Object({ data: Type.Array(CloseFailureJson) }) },
      },
    },
    async (req) => ({ data: (await listCloseFailures(deps.pool, req.orgId, null, req.query.limit ?? 100)).map(json) }),
  );
  app.get(
    '/v1/subscriptions/:subscription_id/close_failure',
    {
      schema: {
        summary: "A subscription's failed period close, if any (close_error null when its closes succeed)",
        tags: ['subscriptions'],
        params: Type.Object({ subscription_id: Type.String({ minLength: 1, maxLength: 200 }) }),
        response: { 200: CloseFailureJson, 404: ErrorResponse },
      },
    },
    async (req) => {
      const id = req.params.subscription_id;
      const [f] = await listCloseFailures(deps.pool, req.orgId, id, 1);
      if (f) return json(f);
      const s = await subs.getSubscription(deps.pool, req.orgId, id);
      if (!s) throw notFound('subscription', id);
      return {
        subscription_id: id,
        customer_id: s.customer_id,
        close_error: null,
        close_failed_at: null,
        close_attempts: 0,
        next_retry_at: null,
      };
    },
  );
}
