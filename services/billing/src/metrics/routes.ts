import type { FastifyInstance } from 'fastify';
import {
  CreateMetricBody,
  ErrorResponse,
  ListArchivableQuery,
  Metric,
  MetricParams,
  MetricVersion,
  MetricWithVersions,
  Page,
  PageQuery,
  UpdateMetricBody,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';
import * as store from './store.ts';

export async function metricRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/metrics',
    {
      schema: {
        summary: 'Create a billable metric',
        tags: ['metrics'],
        body: CreateMetricBody,
        response: { 201: Metric, 200: Metric, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      // the service fills these the same way (normalize); its input type wants them present
      const r = await svc.createMetric(deps, req.orgId, { name: null, property: null, filters: [], group_by: [], ...req.body });
      return reply.code(r.created ? 201 : 200).send(r.metric);
    },
  );
  app.get(
    '/v1/metrics',
    {
      schema: { summary: 'List billable metrics', tags: ['metrics'], querystring: ListArchivableQuery, response: { 200: Page(Metric) } },
    },
    async (req) => {
      const q = req.query;
      return pageOf(
        (await store.listMetrics(deps.pool, req.orgId, { ...pageParams(q), include_archived: q.include_archived ?? false })).map(
          store.metricJson,
        ),
        q,
      );
    },
  );
  app.get(
    '/v1/metrics/:metric_id',
    {
      schema: {
        summary: 'Get a billable metric and its version history (oldest first, at most 100 versions)',
        tags: ['metrics'],
        params: MetricParams,
        response: { 200: MetricWithVersions, 404: ErrorResponse },
      },
    },
    async (req) => {
      const id = req.params.metric_id;
      const [row, versions] = await Promise.all([
        store.getMetric(deps.pool, req.orgId, id),
        store.listMetricVersions(deps.pool, req.orgId, id, { limit: 99, offset: 0 }),
      ]);
      if (!row) throw notFound('metric', id);
      return { ...store.metricJson(row), versions: versions.map(store.metricVersionJson) };
    },
  );
  app.get(
    '/v1/metrics/:metric_id/versions',
    {
      schema: {
        summary: "A metric's definition versions, oldest first: what each version aggregated, valid_from / superseded_at",
        tags: ['metrics'],
        params: MetricParams,
        querystring: PageQuery,
        response: { 200: Page(MetricVersion), 404: ErrorResponse },
      },
    },
    async (req) => {
      const id = req.params.metric_id;
      const q = req.query;
      const [row, versions] = await Promise.all([
        store.getMetric(deps.pool, req.orgId, id),
        store.listMetricVersions(deps.pool, req.orgId, id, pageParams(q)),
      ]);
      if (!row) throw notFound('metric', id);
      return pageOf(versions.map(store.metricVersionJson), q);
    },
  );
  app.patch(
    '/v1/metrics/:metric_id',
    {
      schema: {
        summary: 'Update a metric (a definition change bumps version: the aggregator recomputes)',
        tags: ['metrics'],
        params: MetricParams,
        body: UpdateMetricBody,
        response: { 200: Metric, 404: ErrorResponse },
      },
    },
    async (req) => svc.updateMetric(deps, req.orgId, req.params.metric_id, req.body),
  );
  app.delete(
    '/v1/metrics/:metric_id',
    { schema: { summary: 'Archive a metric', tags: ['metrics'], params: MetricParams, response: { 200: Metric, 404: ErrorResponse } } },
    async (req) => svc.archiveMetric(deps, req.orgId, req.params.metric_id),
  );
}
