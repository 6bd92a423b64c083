// Organizations and API keys. Admin: create an organization (prints its first key), add keys.
// Org-scoped: list keys (prefix only), create, revoke.
// Revoking a key or archiving an organization is announced on Redis (core's publishApiKeysChanged) after
// the change is committed, so every service's ApiKeyCache forgets the key within milliseconds.
import { publishApiKeysChanged } from '@meterline/core';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { requireAdmin } from '../http/auth.ts';
import { ERROR_SCHEMA, notFound } from '../http/errors.ts';
import { PAGINATION_QUERY, listResponse, pageOf } from '../http/pagination.ts';
import * as store from './store.ts';

const KEY = { type: 'object', properties: { key_id: { type: 'string' }, name: { type: 'string' }, prefix: { type: 'string' }, created_at: { type: 'string' }, revoked_at: { type: ['string', 'null'] } } };
const NEW_KEY = { type: 'object', properties: { ...KEY.properties, api_key: { type: 'string', description: 'shown once' } } };

/** Announces the change to every service; a Redis failure is logged (caches then expire within their TTL). */
async function announceKeyChange(deps: Deps, change: Parameters<typeof publishApiKeysChanged>[1]): Promise<void> {
  deps.apiKeys.invalidate();
  try {
    await publishApiKeysChanged(deps.redis, change);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, ...change }, 'could not announce API key change on Redis; other services see it when their cache entries expire');
  }
}

export async function adminRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.addHook('onRequest', requireAdmin(deps.config.billing.adminSecret));
  app.post('/admin/organizations', {
    schema: {
      summary: 'Create an organization and its first API key (admin)', tags: ['admin'], security: [{ adminSecret: [] }],
      body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } },
      response: { 201: { type: 'object', properties: { organization_id: { type: 'string' }, name: { type: 'string' }, api_key: { type: 'string' }, key_id: { type: 'string' }, prefix: { type: 'string' } } }, 401: ERROR_SCHEMA, 403: ERROR_SCHEMA },
    },
  }, async (req, reply) => reply.code(201).send(await store.insertOrganization(deps.pool, (req.body as { name: string }).name)));

  app.post('/admin/organizations/:organization_id/api_keys', {
    schema: {
      summary: 'Create another API key for an organization (admin)', tags: ['admin'], security: [{ adminSecret: [] }],
      params: { type: 'object', properties: { organization_id: { type: 'string' } } },
      body: { type: 'object', additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } },
      response: { 201: NEW_KEY, 404: ERROR_SCHEMA },
    },
  }, async (req, reply) => {
    const { organization_id } = req.params as { organization_id: string };
    if (!(await store.organizationExists(deps.pool, organization_id))) throw notFound('organization', organization_id);
    return reply.code(201).send(await store.insertApiKey(deps.pool, organization_id, (req.body as { name?: string } | undefined)?.name ?? 'default'));
  });

  app.delete('/admin/organizations/:organization_id', {
    schema: {
      summary: 'Archive an organization: all its API keys stop working at once (admin)', tags: ['admin'], security: [{ adminSecret: [] }],
      params: { type: 'object', properties: { organization_id: { type: 'string' } } },
      response: { 200: { type: 'object', properties: { organization_id: { type: 'string' }, archived_at: { type: 'string' } } }, 404: ERROR_SCHEMA },
    },
  }, async (req) => {
    const { organization_id } = req.params as { organization_id: string };
    const archived = await store.archiveOrganization(deps.pool, organization_id);
    if (!archived) throw notFound('organization', organization_id);
    await announceKeyChange(deps, { organizationId: organization_id, reason: 'organization_archived' });
    return { organization_id, ...archived };
  });
}

export async function keyRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  app.get('/v1/organization', {
    schema: { summary: 'The organization of the calling key', tags: ['organization'], response: { 200: { type: 'object', properties: { organization_id: { type: 'string' }, name: { type: 'string' }, created_at: { type: 'string' } } } } },
  }, async (req) => store.getOrganization(deps.pool, req.orgId));

  app.get('/v1/api_keys', {
    schema: { summary: 'List API keys (prefix only)', tags: ['organization'], querystring: { type: 'object', additionalProperties: false, properties: PAGINATION_QUERY }, response: { 200: listResponse(KEY) } },
  }, async (req) => {
    const q = req.query as { limit: number; offset: number };
    return pageOf(await store.listApiKeys(deps.pool, req.orgId, q.limit, q.offset), q);
  });

  app.post('/v1/api_keys', {
    schema: { summary: 'Create an API key (shown once)', tags: ['organization'], body: { type: 'object', additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } }, response: { 201: NEW_KEY } },
  }, async (req, reply) => reply.code(201).send(await store.insertApiKey(deps.pool, req.orgId, (req.body as { name?: string } | undefined)?.name ?? 'default')));

  app.delete('/v1/api_keys/:key_id', {
    schema: { summary: 'Revoke an API key', tags: ['organization'], params: { type: 'object', properties: { key_id: { type: 'string' } } }, response: { 204: { type: 'null' }, 404: ERROR_SCHEMA } },
  }, async (req, reply) => {
    const { key_id } = req.params as { key_id: string };
    if (!(await store.revokeApiKey(deps.pool, req.orgId, key_id))) throw notFound('api key', key_id);
    await announceKeyChange(deps, { organizationId: req.orgId, keyId: key_id, reason: 'revoked' });
    return reply.code(204).send();
  });
}
