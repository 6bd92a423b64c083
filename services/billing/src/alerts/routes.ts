import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  CreateUsageAlertBody,
  ErrorResponse,
  Page,
  PaginationQuery,
  UsageAlert,
  UsageAlertCrossing,
  UsageAlertParams,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function alertRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/usage_alerts',
    {
      schema: {
        summary: 'Create a usage alert: usage.threshold_reached once per usage window when a threshold is reached',
        tags: ['alerts'],
        body: CreateUsageAlertBody,
        response: { 201: UsageAlert, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.createAlert(deps, req.orgId, req.body)),
  );
  app.get(
    '/v1/usage_alerts',
    {
      schema: {
        summary: 'List usage alerts',
        tags: ['alerts'],
        querystring: Type.Object(PaginationQuery, { additionalProperties: false }),
        response: { 200: Page(UsageAlert) },
      },
    },
    async (req) => pageOf(await svc.listAlerts(deps, req.orgId, pageParams(req.query)), req.query),
  );
  app.delete(
    '/v1/usage_alerts/:alert_id',
    {
      schema: {
        summary: 'Archive a usage alert',
        tags: ['alerts'],
        params: UsageAlertParams,
        response: { 200: UsageAlert, 404: ErrorResponse },
      },
    },
    async (req) => svc.archiveAlert(deps, req.orgId, req.params.alert_id),
  );
  app.get(
    '/v1/usage_alerts/:alert_id/crossings',
    {
      schema: {
        summary: 'When each customer reached the threshold, per usage window (at most 1,000, oldest first)',
        tags: ['alerts'],
        params: UsageAlertParams,
        response: { 200: Type.Object({ data: Type.Array(UsageAlertCrossing) }) },
      },
    },
    async (req) => ({ data: await svc.alertCrossings(deps, req.orgId, req.params.alert_id) }),
  );
}
