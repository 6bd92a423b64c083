// Organizations and API keys. Admin: create an organization (prints its first key), add keys.
// Org-scoped: list keys (prefix only), create, revoke; the organization's Segment shared secret.
// Revoking a key or archiving an organization is announced on Redis (core's publishApiKeysChanged) after
// the change is committed, so every service's ApiKeyCache forgets the key within milliseconds.
import { publishApiKeysChanged } from '@meterline/core';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  ApiKey,
  ApiKeyParams,
  ArchivedOrganization,
  CreateApiKeyBody,
  CreatedOrganization,
  CreateOrganizationBody,
  PageQuery,
  ErrorResponse,
  NewApiKey,
  Organization,
  OrganizationParams,
  Page,
  SegmentSettings,
  SegmentSettingsBody,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { requireAdmin } from '../http/auth.ts';
import { notFound } from '../http/errors.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as store from './store.ts';

/** Announces the change to every service; a Redis failure is logged (caches then expire within their TTL). */
async function announceKeyChange(deps: Deps, change: Parameters<typeof publishApiKeysChanged>[1]): Promise<void> {
  deps.apiKeys.invalidate();
  try {
    await publishApiKeysChanged(deps.redis, change);
  } catch (err) {
    deps.logger.warn(
      { err: (err as Error).message, ...change },
      'could not announce API key change on Redis; other services see it when their cache entries expire',
    );
  }
}

export async function adminRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.addHook('onRequest', requireAdmin(deps.config.billing.adminSecret));
  app.post(
    '/admin/organizations',
    {
      schema: {
        summary: 'Create an organization and its first API key (admin)',
        tags: ['admin'],
        security: [{ adminSecret: [] }],
        body: CreateOrganizationBody,
        response: { 201: CreatedOrganization, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await store.insertOrganization(deps.pool, req.body.name)),
  );

  app.post(
    '/admin/organizations/:organization_id/api_keys',
    {
      schema: {
        summary: 'Create another API key for an organization (admin)',
        tags: ['admin'],
        security: [{ adminSecret: [] }],
        params: OrganizationParams,
        body: CreateApiKeyBody,
        response: { 201: NewApiKey, 404: ErrorResponse },
      },
    },
    async (req, reply) => {
      const { organization_id } = req.params;
      if (!(await store.organizationExists(deps.pool, organization_id))) throw notFound('organization', organization_id);
      return reply.code(201).send(await store.insertApiKey(deps.pool, organization_id, req.body?.name ?? 'default'));
    },
  );

  app.put(
    '/admin/organizations/:organization_id/segment',
    {
      schema: {
        summary: "Set or clear an organization's Segment shared secret (admin)",
        tags: ['admin'],
        security: [{ adminSecret: [] }],
        description: SEGMENT_DESCRIPTION,
        params: OrganizationParams,
        body: SegmentSettingsBody,
        response: { 200: SegmentSettings, 404: ErrorResponse },
      },
    },
    async (req) => {
      const { organization_id } = req.params;
      const r = await store.setSegmentSharedSecret(deps.pool, organization_id, req.body.shared_secret);
      if (!r) throw notFound('organization', organization_id);
      return r;
    },
  );

  app.delete(
    '/admin/organizations/:organization_id',
    {
      schema: {
        summary: 'Archive an organization: all its API keys stop working at once (admin)',
        tags: ['admin'],
        security: [{ adminSecret: [] }],
        params: OrganizationParams,
        response: { 200: ArchivedOrganization, 404: ErrorResponse },
      },
    },
    async (req) => {
      const { organization_id } = req.params;
      const archived = await store.archiveOrganization(deps.pool, organization_id);
      if (!archived) throw notFound('organization', organization_id);
      await announceKeyChange(deps, { organizationId: organization_id, reason: 'organization_archived' });
      return { organization_id, ...archived };
    },
  );
}

export async function keyRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/organization',
    {
      schema: { summary: 'The organization of the calling key', tags: ['organization'], response: { 200: Organization } },
    },
    async (req) => (await store.getOrganization(deps.pool, req.orgId))!,
  );

  app.get(
    '/v1/api_keys',
    {
      schema: { summary: 'List API keys (prefix only)', tags: ['organization'], querystring: PageQuery, response: { 200: Page(ApiKey) } },
    },
    async (req) => {
      const q = pageParams(req.query);
      return pageOf(await store.listApiKeys(deps.pool, req.orgId, q.limit, q.offset), q);
    },
  );

  app.post(
    '/v1/api_keys',
    {
      schema: { summary: 'Create an API key (shown once)', tags: ['organization'], body: CreateApiKeyBody, response: { 201: NewApiKey } },
    },
    async (req, reply) => reply.code(201).send(await store.insertApiKey(deps.pool, req.orgId, req.body?.name ?? 'default')),
  );

  app.delete(
    '/v1/api_keys/:key_id',
    {
      schema: {
        summary: 'Revoke an API key',
        tags: ['organization'],
        params: ApiKeyParams,
        response: { 204: Type.Null(), 404: ErrorResponse },
      },
    },
    async (req, reply) => {
      const { key_id } = req.params;
      if (!(await store.revokeApiKey(deps.pool, req.orgId, key_id))) throw notFound('api key', key_id);
      await announceKeyChange(deps, { organizationId: req.orgId, keyId: key_id, reason: 'revoked' });
      return reply.code(204).send(null);
    },
  );
}

const SEGMENT_DESCRIPTION =
  'The secret configured on the Segment Webhooks destination: when set, the gateway accepts POST /v1/segment only with ' +
  'X-Signature = hex HMAC-SHA1(secret, raw body); null turns the check off. Stored on the organization (organizations.segment_shared_secret); ' +
  'the gateway caches it for up to 30 s per organization, so a change reaches it within 30 s. The secret is never returned.';

/** The calling organization's settings (org API key). */
export async function settingsRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/settings/segment',
    {
      schema: {
        summary: 'Whether Segment webhook signatures are required (the secret is never returned)',
        tags: ['organization'],
        response: { 200: SegmentSettings },
      },
    },
    async (req) => (await store.getSegmentSettings(deps.pool, req.orgId))!,
  );

  app.put(
    '/v1/settings/segment',
    {
      schema: {
        summary: 'Set or clear the Segment shared secret',
        tags: ['organization'],
        description: SEGMENT_DESCRIPTION,
        body: SegmentSettingsBody,
        response: { 200: SegmentSettings, 404: ErrorResponse },
      },
    },
    async (req) => {
      const r = await store.setSegmentSharedSecret(deps.pool, req.orgId, req.body.shared_secret);
      if (!r) throw notFound('organization', req.orgId);
      return r;
    },
  );
}
