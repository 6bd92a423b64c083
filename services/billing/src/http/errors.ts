// One error shape for every 4xx/5xx: { error: { code, message, details? } }.
import type { FastifyError, FastifyInstance } from 'fastify';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound = (what: string, id: string) => new ApiError(404, 'not_found', `${what} "${id}" not found`);
export const conflict = (message: string, details?: unknown) => new ApiError(409, 'conflict', message, details);
export const badRequest = (message: string, details?: unknown) => new ApiError(400, 'invalid_request', message, details);

export const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
      required: ['code', 'message'],
    },
  },
} as const;

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).send({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      return reply.code(400).send({
        error: {
          code: 'validation_error',
          message: `${fe.validationContext ?? 'request'}${fe.validation[0]?.instancePath ?? ''} ${fe.validation[0]?.message ?? 'is invalid'}`.trim(),
          details: fe.validation.map((v) => ({ path: v.instancePath, message: v.message, params: v.params })),
        },
      });
    }
    const status = fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const code = status === 415 ? 'unsupported_media_type' : status === 413 ? 'payload_too_large' : status >= 500 ? 'internal_error' : 'invalid_request';
    return reply.code(status).send({ error: { code, message: status >= 500 ? 'internal error' : fe.message } });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: { code: 'route_not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } }));
}

/** Maps Postgres constraint errors raised inside a store call to 409/400. */
export function mapPgError(err: unknown): never {
  const e = err as { code?: string; detail?: string; constraint?: string };
  if (e.code === '23505') throw conflict(`already exists${e.detail ? `: ${e.detail}` : ''}`);
  if (e.code === '23503') throw badRequest(`references something that does not exist${e.detail ? `: ${e.detail}` : ''}`);
  throw err;
}
