// Every /v1 route is scoped to the organization of the API key (X-API-KEY or Authorization: Bearer).
// /admin routes need X-Admin-Secret == config.billing.adminSecret (compared in constant time).
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { apiKeyFromHeaders, type ApiKeyCache } from '@meterline/core';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    orgId: string;
    keyId: string;
  }
}

export function requireApiKey(cache: ApiKeyCache) {
  return async (req: FastifyRequest): Promise<void> => {
    const key = apiKeyFromHeaders(req.headers);
    if (!key) throw new ApiError(401, 'unauthorized', 'missing API key (X-API-KEY header or Authorization: Bearer)');
    const owner = await cache.resolve(key);
    if (!owner) throw new ApiError(401, 'unauthorized', 'invalid or revoked API key');
    req.orgId = owner.organizationId;
    req.keyId = owner.keyId;
  };
}

export function requireAdmin(secret: string) {
  const want = createHash('sha256').update(secret).digest();
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const got = req.headers['x-admin-secret'];
    if (typeof got !== 'string' || got.length === 0) throw new ApiError(401, 'unauthorized', 'missing X-Admin-Secret');
    if (!timingSafeEqual(createHash('sha256').update(got).digest(), want)) throw new ApiError(403, 'forbidden', 'wrong admin secret');
  };
}
