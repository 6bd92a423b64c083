import type { FastifyInstance } from 'fastify';
import {
  CreateWebhookEndpointBody,
  ErrorResponse,
  ListWebhookDeliveriesQuery,
  Page,
  PaginationQuery,
  RotateWebhookSecretBody,
  UpdateWebhookEndpointBody,
  WebhookDelivery,
  WebhookDeliveryParams,
  WebhookEndpoint,
  WebhookEndpointParams,
  WebhookEndpointWithSecret,
} from '@meterline/contracts';
import { Type } from '@sinclair/typebox';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './endpoints.ts';
import * as store from './store.ts';

export async function webhookRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  const tags = ['webhooks'];
  app.post(
    '/v1/webhook_endpoints',
    {
      schema: {
        summary: 'Create a webhook endpoint (the signing secret is in this answer only)',
        tags,
        body: CreateWebhookEndpointBody,
        response: { 201: WebhookEndpointWithSecret, 409: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.createEndpoint(deps, req.orgId, req.body)),
  );
  app.get(
    '/v1/webhook_endpoints',
    {
      schema: {
        summary: 'List webhook endpoints',
        tags,
        querystring: Type.Object(PaginationQuery),
        response: { 200: Page(WebhookEndpoint) },
      },
    },
    async (req) => {
      const p = pageParams(req.query);
      return pageOf(
        (await store.listEndpoints(deps.pool, req.orgId, p.limit, p.offset)).map((r) => store.endpointJson(r)),
        req.query,
      );
    },
  );
  app.get(
    '/v1/webhook_endpoints/:endpoint_id',
    {
      schema: {
        summary: 'A webhook endpoint',
        tags,
        params: WebhookEndpointParams,
        response: { 200: WebhookEndpoint, 404: ErrorResponse },
      },
    },
    async (req) => store.endpointJson(await svc.requireEndpoint(deps, req.orgId, req.params.endpoint_id)),
  );
  app.patch(
    '/v1/webhook_endpoints/:endpoint_id',
    {
      schema: {
        summary: 'Update a webhook endpoint (enabled: false abandons its pending deliveries)',
        tags,
        params: WebhookEndpointParams,
        body: UpdateWebhookEndpointBody,
        response: { 200: WebhookEndpoint, 404: ErrorResponse },
      },
    },
    async (req) => svc.updateEndpoint(deps, req.orgId, req.params.endpoint_id, req.body),
  );
  app.delete(
    '/v1/webhook_endpoints/:endpoint_id',
    {
      schema: {
        summary: 'Delete a webhook endpoint (its pending deliveries are abandoned)',
        tags,
        params: WebhookEndpointParams,
        response: { 200: WebhookEndpoint, 404: ErrorResponse },
      },
    },
    async (req) => svc.deleteEndpoint(deps, req.orgId, req.params.endpoint_id),
  );
  app.post(
    '/v1/webhook_endpoints/:endpoint_id/rotate_secret',
    {
      schema: {
        summary: 'New signing secret (answered once); the old one also signs for overlap_seconds (default 86400)',
        tags,
        params: WebhookEndpointParams,
        body: RotateWebhookSecretBody,
        response: { 200: WebhookEndpointWithSecret, 404: ErrorResponse },
      },
    },
    async (req) => svc.rotateSecret(deps, req.orgId, req.params.endpoint_id, req.body.overlap_seconds ?? 86_400),
  );
  app.get(
    '/v1/webhook_endpoints/:endpoint_id/deliveries',
    {
      schema: {
        summary: 'The delivery log of an endpoint, newest first, with every attempt',
        tags,
        params: WebhookEndpointParams,
        querystring: ListWebhookDeliveriesQuery,
        response: { 200: Page(WebhookDelivery), 404: ErrorResponse },
      },
    },
    async (req) => {
      await svc.requireEndpoint(deps, req.orgId, req.params.endpoint_id);
      const q = req.query;
      return pageOf(
        (await store.listDeliveries(deps.pool, req.orgId, req.params.endpoint_id, { ...q, ...pageParams(q) })).map(store.deliveryJson),
        q,
      );
    },
  );
  app.post(
    '/v1/webhook_deliveries/:delivery_id/resend',
    {
      schema: {
        summary: 'Send a delivery again now (same webhook-id; the retry schedule restarts)',
        tags,
        params: WebhookDeliveryParams,
        response: { 200: WebhookDelivery, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req) => svc.resend(deps, req.orgId, req.params.delivery_id),
  );
}
