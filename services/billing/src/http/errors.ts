// One error shape for every 4xx/5xx: { error: { code, message, details? } }.
import type { FastifyError, FastifyInstance } from 'fastify';
import { postgresFailureKind } from '@meterline/core';

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

/** The schema of every error response (`{ error: { code, message, details? } }`), from @meterline/contracts. */
export { ErrorResponse } from '@meterline/contracts';

type ValidationItem = { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> };

/** The field a validation error is about, as a JSON pointer without the leading slash (`entitlements/0/limit`). */
export function validationField(v: ValidationItem): string {
  const child =
    v.keyword === 'additionalProperties' ? v.params.additionalProperty : v.keyword === 'required' ? v.params.missingProperty : undefined;
  const path = typeof child === 'string' ? `${v.instancePath}/${child}` : v.instancePath;
  return path.replace(/^\//, '');
}

/** `body/start_date must be …`; unknown fields: `body: unknown field "x"; did you mean "y"?`. */
export function validationMessage(where: string, v: ValidationItem): string {
  const sep = v.keyword === 'additionalProperties' ? ':' : '';
  return `${where}${v.instancePath}${sep} ${v.message ?? 'is invalid'}`.trim();
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      return reply
        .code(err.statusCode)
        .send({ error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const where = fe.validationContext ?? 'request';
      const first = fe.validation[0];
      const more = fe.validation.length > 1 ? ` (and ${fe.validation.length - 1} more: see details)` : '';
      return reply.code(400).send({
        error: {
          code: 'validation_error',
          message: first ? `${validationMessage(where, first)}${more}` : `${where} is invalid`,
          details: fe.validation.map((v) => ({
            field: validationField(v),
            reason: v.keyword === 'additionalProperties' ? 'unknown_field' : v.keyword,
            path: v.instancePath,
            message: v.message,
            params: v.params,
          })),
        },
      });
    }
    const pg = pgErrorResponse(err);
    if (pg) {
      // validation should have caught it first: log so the gap gets closed, but answer the client's fault as 4xx
      req.log.warn({ err, sqlstate: (err as { code?: string }).code }, 'postgres rejected client input that validation let through');
      return reply.code(pg.status).send({ error: { code: pg.code, message: pg.message } });
    }
    const down = dependencyFailure(err);
    if (down) {
      req.log.warn({ err: (err as Error).message, dependency: down }, 'a dependency is unavailable');
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({
          error: {
            code: 'dependency_unavailable',
            message: `${down} is unavailable; nothing was changed, retry`,
            details: { dependency: down },
          },
        });
    }
    const status = fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const code =
      status === 415
        ? 'unsupported_media_type'
        : status === 413
          ? 'payload_too_large'
          : status >= 500
            ? 'internal_error'
            : 'invalid_request';
    return reply.code(status).send({ error: { code, message: status >= 500 ? 'internal error' : fe.message } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { code: 'route_not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } }),
  );
}

/**
 * Defense in depth for Postgres errors that reach the error handler: SQLSTATE class 22 (data
 * exception: 22001 too long, 22003 out of range, 22P02 invalid text representation, 22021 bad UTF-8
 * byte sequence, 22P05 untranslatable character, 22007/22008 bad date-time, ...) means the request
 * carried a value Postgres cannot store: 400. 23505 unique violation: 409. 23503 foreign key: 400.
 * 23514 check violation: 400. Everything else stays 500. Classified with core's postgresFailureKind (as the
 * gateway does); the input guards (input.ts) and the schemas should catch these first.
 */
export function pgErrorResponse(err: unknown): { status: number; code: string; message: string } | null {
  if (postgresFailureKind(err) !== 'data') return null;
  const code = (err as { code: string }).code;
  if (code.startsWith('22')) return { status: 400, code: 'validation_error', message: `a value cannot be stored (SQLSTATE ${code})` };
  if (code === '23505') return { status: 409, code: 'conflict', message: 'already exists' };
  if (code === '23503') return { status: 400, code: 'invalid_request', message: 'references something that does not exist' };
  if (code === '23514') return { status: 400, code: 'invalid_request', message: 'violates a constraint of the data model' };
  return null;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
const REDIS_DOWN = /Stream isn't writeable|enableOfflineQueue|Connection is closed|Reached the max retries per request/;
const POSTGRES_DOWN = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/;

/**
 * Which backing service an unexpected error says is unavailable (answered 503, Retry-After: 1), or null
 * for anything else (a bug: 500). Only errors whose shape names the dependency count: ioredis connection
 * states, kafkajs errors, Postgres connection/availability SQLSTATEs (classes 08, 53, 57, 58) and pool
 * timeouts, and socket error codes (e.g. ClickHouse's HTTP client: not attributed to one service).
 */
export function dependencyFailure(err: unknown): 'redis' | 'kafka' | 'postgres' | 'a backing service' | null {
  const e = err as { name?: unknown; message?: unknown; code?: unknown; severity?: unknown; cause?: unknown } | null;
  if (!e || typeof e !== 'object') return null;
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (name === 'MaxRetriesPerRequestError' || REDIS_DOWN.test(message)) return 'redis';
  if (name.startsWith('KafkaJS')) return 'kafka';
  if (typeof e.severity === 'string' && typeof e.code === 'string' && ['08', '53', '57', '58'].includes(e.code.slice(0, 2)))
    return 'postgres';
  if (POSTGRES_DOWN.test(message)) return 'postgres';
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return 'a backing service';
  if (e.cause && e.cause !== err) return dependencyFailure(e.cause);
  return null;
}
