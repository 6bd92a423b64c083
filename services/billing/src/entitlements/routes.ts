import type { FastifyInstance } from 'fastify';
import {
  CheckBody,
  CheckResult,
  CustomerAccessQuery,
  CustomerAccessResult,
  CustomerParams,
  Entitlement,
  EntitlementParams,
  EntitlementQuery,
  PageQuery,
  ErrorResponse,
  Page,
  ReportUsageBody,
  ReportUsageResult,
  UsageQuery,
  UsageSeries,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function entitlementRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/customers/:customer_id/entitlements',
    {
      schema: {
        summary: 'All entitlements of a customer (Stigg-style)',
        tags: ['entitlements'],
        params: CustomerParams,
        querystring: PageQuery,
        response: { 200: Page(Entitlement), 404: ErrorResponse },
      },
    },
    async (req) => {
      const q = pageParams(req.query);
      const all = await svc.allEntitlements(deps, req.orgId, req.params.customer_id);
      return pageOf(all.slice(q.offset, q.offset + q.limit + 1), q);
    },
  );

  app.get(
    '/v1/customers/:customer_id/entitlements/:feature_id',
    {
      schema: {
        summary: 'One entitlement of a customer (Stigg-style)',
        tags: ['entitlements'],
        params: EntitlementParams,
        querystring: EntitlementQuery,
        response: { 200: Entitlement, 404: ErrorResponse },
      },
    },
    async (req) => svc.entitlement(deps, req.orgId, req.params.customer_id, req.params.feature_id, req.query.requested_usage),
  );

  app.get(
    '/v1/customer_access',
    {
      schema: {
        summary: 'May this customer use a feature / send this event? (Lotus-style)',
        tags: ['entitlements'],
        querystring: CustomerAccessQuery,
        response: { 200: CustomerAccessResult, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (req) => svc.customerAccess(deps, req.orgId, req.query),
  );

  app.post(
    '/v1/check',
    {
      schema: {
        summary: 'Check access; with send_event, atomically consume required_balance (Autumn-style)',
        tags: ['entitlements'],
        body: CheckBody,
        response: { 200: CheckResult, 400: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (req) => svc.check(deps, req.orgId, req.body),
  );

  app.post(
    '/v1/usage',
    {
      schema: {
        summary: 'report_usage / set_usage: record usage with DELTA or SET behaviour',
        tags: ['usage'],
        body: ReportUsageBody,
        response: { 200: ReportUsageResult, 400: ErrorResponse, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (req) => svc.reportUsage(deps, req.orgId, req.body),
  );

  app.get(
    '/v1/usage',
    {
      schema: {
        summary: 'Usage of a customer for a feature or metric over a range, optionally per hour/day',
        tags: ['usage'],
        querystring: UsageQuery,
        response: { 200: UsageSeries, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageParams(q);
      const r = await svc.usageSeries(deps, req.orgId, q);
      return { ...r, ...pageOf(r.data.slice(page.offset, page.offset + page.limit + 1), page) };
    },
  );
}
