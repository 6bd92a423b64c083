import type { FastifyInstance } from 'fastify';
import { AGGREGATIONS, MAX_GROUP_BY } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ERROR_SCHEMA, notFound } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import { ID } from '../customers/routes.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

const PROP = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const FILTER = {
  oneOf: [
    { type: 'object', additionalProperties: false, required: ['property', 'operator', 'value'], properties: { property: PROP, operator: { const: 'equals' }, value: { type: 'string', maxLength: 1024 } } },
    { type: 'object', additionalProperties: false, required: ['property', 'operator', 'values'], properties: { property: PROP, operator: { enum: ['in', 'not_in'] }, values: { type: 'array', items: { type: 'string', maxLength: 1024 }, minItems: 1, maxItems: 1000 } } },
    { type: 'object', additionalProperties: false, required: ['property', 'operator', 'value'], properties: { property: PROP, operator: { enum: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'] }, value: { type: 'number', minimum: -1e15, maximum: 1e15 } } },
  ],
} as const;
const FIELDS = {
  name: { type: ['string', 'null'], maxLength: 500 },
  event_name: { type: 'string', minLength: 1, maxLength: 200 },
  aggregation: { type: 'string', enum: [...AGGREGATIONS] },
  property: { anyOf: [PROP, { type: 'null' }] },
  filters: { type: 'array', items: FILTER, maxItems: 20 },
  group_by: { type: 'array', items: PROP, maxItems: MAX_GROUP_BY },
} as const;
const METRIC = {
  type: 'object',
  properties: {
    metric_id: { type: 'string' }, version: { type: 'integer' }, name: { type: ['string', 'null'] }, event_name: { type: 'string' }, aggregation: { type: 'string' },
    property: { type: ['string', 'null'] }, filters: { type: 'array', items: { type: 'object', additionalProperties: true } }, group_by: { type: 'array', items: { type: 'string' } },
    created_at: { type: 'string' }, updated_at: { type: 'string' }, archived_at: { type: ['string', 'null'] },
  },
} as const;
const params = { type: 'object', properties: { metric_id: { type: 'string' } } } as const;

export async function metricRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.post('/v1/metrics', {
    schema: {
      summary: 'Create a billable metric', tags: ['metrics'],
      body: { type: 'object', additionalProperties: false, required: ['metric_id', 'event_name', 'aggregation'], properties: { metric_id: ID, ...FIELDS } },
      response: { 201: METRIC, 200: METRIC, 409: ERROR_SCHEMA },
    },
  }, async (req, reply) => {
    const r = await svc.createMetric(deps, req.orgId, req.body as store.MetricInput);
    return reply.code(r.created ? 201 : 200).send(r.metric);
  });
  app.get('/v1/metrics', {
    schema: { summary: 'List billable metrics', tags: ['metrics'], querystring: { type: 'object', additionalProperties: false, properties: { ...PAGINATION_QUERY, include_archived: { type: 'boolean', default: false } } }, response: { 200: listResponse(METRIC) } },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number; include_archived: boolean };
    return pageOf((await store.listMetrics(deps.pool, req.orgId, q)).map(store.metricJson), q);
  });
  app.get('/v1/metrics/:metric_id', { schema: { summary: 'Get a billable metric', tags: ['metrics'], params, response: { 200: METRIC, 404: ERROR_SCHEMA } } }, async (req) => {
    const id = (req.params as { metric_id: string }).metric_id;
    const row = await store.getMetric(deps.pool, req.orgId, id);
    if (!row) throw notFound('metric', id);
    return store.metricJson(row);
  });
  app.patch('/v1/metrics/:metric_id', {
    schema: { summary: 'Update a metric (a definition change bumps version: the aggregator recomputes)', tags: ['metrics'], params, body: { type: 'object', additionalProperties: false, minProperties: 1, properties: FIELDS }, response: { 200: METRIC, 404: ERROR_SCHEMA } },
  }, async (req) => svc.updateMetric(deps, req.orgId, (req.params as { metric_id: string }).metric_id, req.body as never));
  app.delete('/v1/metrics/:metric_id', { schema: { summary: 'Archive a metric', tags: ['metrics'], params, response: { 200: METRIC, 404: ERROR_SCHEMA } } }, async (req) =>
    svc.archiveMetric(deps, req.orgId, (req.params as { metric_id: string }).metric_id));
}
