import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { ERROR_SCHEMA } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import { MAX_QUANTITY } from '../money.ts';
import * as svc from './service.ts';

const ENTITLEMENT = {
  type: 'object',
  properties: {
    customer_id: { type: 'string' }, feature_id: { type: 'string' }, feature_type: { type: 'string' }, is_granted: { type: 'boolean' },
    access_denied_reason: { type: ['string', 'null'], enum: ['no_active_subscription', 'feature_not_in_plan', 'usage_limit_exceeded', 'requested_usage_exceeds_limit', null] },
    usage_limit: { type: ['number', 'null'] }, limit_type: { type: ['string', 'null'] }, has_unlimited_usage: { type: 'boolean' }, current_usage: { type: ['number', 'null'] },
    requested_usage: { type: 'number' }, remaining: { type: ['number', 'null'] }, included_usage: { type: ['number', 'null'] }, reset_period: { type: ['string', 'null'] },
    usage_period_start: { type: ['string', 'null'] }, usage_period_end: { type: ['string', 'null'] }, subscription_id: { type: ['string', 'null'] },
  },
} as const;
const PROPS = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'], maxLength: 1024 }, propertyNames: { minLength: 1, maxLength: 128 }, maxProperties: 50 } as const;

export async function entitlementRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.get('/v1/customers/:customer_id/entitlements', {
    schema: {
      summary: 'All entitlements of a customer (Stigg-style)', tags: ['entitlements'],
      params: { type: 'object', properties: { customer_id: { type: 'string' } } },
      querystring: { type: 'object', additionalProperties: false, properties: PAGINATION_QUERY },
      response: { 200: listResponse(ENTITLEMENT), 404: ERROR_SCHEMA },
    },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number };
    const all = await svc.allEntitlements(deps, req.orgId, (req.params as { customer_id: string }).customer_id);
    return pageOf(all.slice(q.offset, q.offset + q.limit + 1), q);
  });

  app.get('/v1/customers/:customer_id/entitlements/:feature_id', {
    schema: {
      summary: 'One entitlement of a customer (Stigg-style)', tags: ['entitlements'],
      params: { type: 'object', properties: { customer_id: { type: 'string' }, feature_id: { type: 'string' } } },
      querystring: { type: 'object', additionalProperties: false, properties: { requested_usage: { type: 'number', minimum: 0, maximum: MAX_QUANTITY, default: 1 } } },
      response: { 200: ENTITLEMENT, 404: ERROR_SCHEMA },
    },
  }, async (req) => {
    const p = req.params as { customer_id: string; feature_id: string };
    return svc.entitlement(deps, req.orgId, p.customer_id, p.feature_id, (req.query as { requested_usage: number }).requested_usage);
  });

  app.get('/v1/customer_access', {
    schema: {
      summary: 'May this customer use a feature / send this event? (Lotus-style)', tags: ['entitlements'],
      querystring: {
        type: 'object', additionalProperties: false, required: ['customer_id'],
        properties: { customer_id: { type: 'string' }, feature_name: { type: 'string' }, event_name: { type: 'string' }, event_limit_type: { type: 'string', enum: ['free', 'total'], default: 'total' } },
      },
      response: { 200: { type: 'object', additionalProperties: true, properties: { customer_id: { type: 'string' }, access: { type: 'boolean' }, access_denied_reason: { type: ['string', 'null'] } } }, 400: ERROR_SCHEMA, 404: ERROR_SCHEMA },
    },
  }, async (req) => svc.customerAccess(deps, req.orgId, req.query as never));

  app.post('/v1/check', {
    schema: {
      summary: 'Check access; with send_event, atomically consume required_balance (Autumn-style)', tags: ['entitlements'],
      body: {
        type: 'object', additionalProperties: false, required: ['customer_id', 'feature_id'],
        properties: { customer_id: { type: 'string' }, feature_id: { type: 'string' }, required_balance: { type: 'number', exclusiveMinimum: 0, maximum: MAX_QUANTITY, default: 1 }, send_event: { type: 'boolean', default: false }, properties: PROPS },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            allowed: { type: 'boolean' }, customer_id: { type: 'string' }, feature_id: { type: 'string' }, required_balance: { type: 'number' }, balance: { type: ['number', 'null'] },
            usage: { type: ['number', 'null'] }, included_usage: { type: ['number', 'null'] }, unlimited: { type: 'boolean' }, event_recorded: { type: 'boolean' }, events_recorded: { type: 'integer' }, entitlement: ENTITLEMENT,
          },
        },
        400: ERROR_SCHEMA, 404: ERROR_SCHEMA, 503: ERROR_SCHEMA,
      },
    },
  }, async (req) => svc.check(deps, req.orgId, req.body as never));

  app.post('/v1/usage', {
    schema: {
      summary: 'report_usage / set_usage: record usage with DELTA or SET behaviour', tags: ['usage'],
      body: {
        type: 'object', additionalProperties: false, required: ['customer_id', 'feature_id', 'value'],
        properties: { customer_id: { type: 'string' }, feature_id: { type: 'string' }, value: { type: 'number', minimum: -MAX_QUANTITY, maximum: MAX_QUANTITY }, update_behavior: { type: 'string', enum: ['delta', 'set'], default: 'delta' }, properties: PROPS },
      },
      response: { 200: { type: 'object', additionalProperties: true }, 400: ERROR_SCHEMA, 404: ERROR_SCHEMA, 503: ERROR_SCHEMA },
    },
  }, async (req) => svc.reportUsage(deps, req.orgId, req.body as never));

  app.get('/v1/usage', {
    schema: {
      summary: 'Usage of a customer for a feature or metric over a range, optionally per hour/day', tags: ['usage'],
      querystring: {
        type: 'object', additionalProperties: false, required: ['customer_id', 'from', 'to'],
        properties: {
          customer_id: { type: 'string' }, feature_id: { type: 'string' }, metric_id: { type: 'string' }, from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' },
          window: { type: 'string', enum: ['hour', 'day'] }, group_by: { type: 'boolean', default: false }, ...PAGINATION_QUERY,
        },
      },
      response: { 200: { type: 'object', additionalProperties: true }, 400: ERROR_SCHEMA, 404: ERROR_SCHEMA },
    },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number } & Parameters<typeof svc.usageSeries>[2];
    const r = await svc.usageSeries(deps, req.orgId, q);
    return { ...r, ...pageOf(r.data.slice(q.offset, q.offset + q.limit + 1), q) };
  });
}
