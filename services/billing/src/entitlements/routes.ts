import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  CheckBody,
  CheckResult,
  CustomerAccessQuery,
  CustomerAccessResult,
  CustomerParams,
  Entitlement,
  EntitlementParams,
  EntitlementQuery,
  IDEMPOTENCY_KEY_MAX_LENGTH,
  ID_PATTERN,
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
import { ApiError } from '../http/errors.ts';
import { IdempotencyStore, requestFingerprint, type IdempotencyOptions } from '../usage/idempotency.ts';
import { idempotentEventIds } from '../usage/recorder.ts';
import { resolveFeatureRef } from './feature-ref.ts';
import { csvHeaders, wantsCsv } from '../exports/csv.ts';
import { usageCsv, usageCsvFileName } from '../exports/usage.ts';

const KEY_RE = new RegExp(ID_PATTERN);

/**
 * The request's idempotency key: the body's `idempotency_key` or the `Idempotency-Key` header (same
 * rules); both given and different → 400.
 */
function idempotencyKeyOf(bodyKey: string | undefined, header: string | string[] | undefined): string | undefined {
  if (header === undefined) return bodyKey;
  const h = Array.isArray(header) ? header.join(', ') : header;
  if (h.length < 1 || h.length > IDEMPOTENCY_KEY_MAX_LENGTH || !KEY_RE.test(h))
    throw new ApiError(
      400,
      'validation_error',
      `headers/idempotency-key must be 1..${IDEMPOTENCY_KEY_MAX_LENGTH} characters of A-Z a-z 0-9 _ . : @ -`,
      [{ path: '/headers/idempotency-key' }],
    );
  if (bodyKey !== undefined && bodyKey !== h)
    throw new ApiError(400, 'invalid_request', 'the Idempotency-Key header and body/idempotency_key differ; send one, or the same in both');
  return h;
}

export async function entitlementRoutes(
  instance: FastifyInstance,
  deps: Deps,
  opts: { idempotency?: IdempotencyOptions } = {},
): Promise<void> {
  const app = typed(instance);
  const idem = new IdempotencyStore(deps.redis, { logger: deps.logger, ...opts.idempotency });

  /** Executes once per (organization, key); replays the stored first answer; 409 on reuse / in progress. */
  async function once<T>(
    reply: FastifyReply,
    orgId: string,
    key: string,
    route: string,
    body: Record<string, unknown>,
    exec: (eventId: (i: number) => string) => Promise<T>,
  ): Promise<T> {
    const r = await idem.run(orgId, key, requestFingerprint(route, body), () => exec(idempotentEventIds(orgId, key)));
    switch (r.kind) {
      case 'executed':
        return r.body;
      case 'replayed':
        reply.header('idempotent-replayed', 'true');
        return r.body;
      case 'reused':
        throw new ApiError(
          409,
          'idempotency_key_reused',
          `idempotency_key "${key}" was already used with a different request; use a new key for a new request`,
          { idempotency_key: key },
        );
      case 'in_progress':
        reply.header('retry-after', '1');
        throw new ApiError(409, 'idempotency_key_in_progress', `a request with idempotency_key "${key}" is still executing; retry`, {
          idempotency_key: key,
        });
    }
  }

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
    async (req) => {
      const q = req.query;
      if (q.feature_name === undefined) return svc.customerAccess(deps, req.orgId, q);
      // a name or an id (entitlements/feature-ref.ts); the answer echoes what was asked
      const id = await resolveFeatureRef(deps, req.orgId, q.feature_name, 'feature_name');
      const r = await svc.customerAccess(deps, req.orgId, { ...q, feature_name: id });
      return { ...r, feature_name: q.feature_name };
    },
  );

  app.post(
    '/v1/check',
    {
      schema: {
        summary: 'Check access; with send_event, atomically consume required_balance (Autumn-style)',
        tags: ['entitlements'],
        body: CheckBody,
        response: { 200: CheckResult, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (req, reply) => {
      // feature_id may be a feature's name (entitlements/feature-ref.ts): resolved before the idempotency fingerprint
      req.body.feature_id = await resolveFeatureRef(deps, req.orgId, req.body.feature_id, 'feature_id');
      const key = idempotencyKeyOf(req.body.idempotency_key, req.headers['idempotency-key']);
      // only a consuming check needs it; a pure check is safe to repeat and ignores the key
      if (key === undefined || !req.body.send_event) return svc.check(deps, req.orgId, req.body);
      return once(reply, req.orgId, key, 'POST /v1/check', req.body, (eventId) => svc.check(deps, req.orgId, req.body, { eventId }));
    },
  );

  app.post(
    '/v1/usage',
    {
      schema: {
        summary: 'report_usage / set_usage: record usage with DELTA or SET behaviour',
        tags: ['usage'],
        body: ReportUsageBody,
        response: { 200: ReportUsageResult, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (req, reply) => {
      const key = idempotencyKeyOf(req.body.idempotency_key, req.headers['idempotency-key']);
      if (key === undefined) return svc.reportUsage(deps, req.orgId, req.body);
      return once(reply, req.orgId, key, 'POST /v1/usage', req.body, (eventId) => svc.reportUsage(deps, req.orgId, req.body, { eventId }));
    },
  );

  app.get(
    '/v1/usage',
    {
      schema: {
        summary:
          'Usage of a customer for a feature or metric over a range, optionally per hour/day/month in a time zone (format=csv or Accept: text/csv: the whole series as CSV)',
        tags: ['usage'],
        querystring: UsageQuery,
        response: { 200: UsageSeries, 400: ErrorResponse, 404: ErrorResponse },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const page = pageParams(q);
      const r = await svc.usageSeries(deps, req.orgId, q);
      if (wantsCsv(req, q.format)) return csvHeaders(reply, usageCsvFileName(r)).send(usageCsv(r) as never);
      return { ...r, ...pageOf(r.data.slice(page.offset, page.offset + page.limit + 1), page) };
    },
  );
}
