// The ingest API as ONE encapsulated Fastify plugin: everything its routes share is declared here once —
// the API-key authentication (onRequest), the body path (preParsing + the one content-type parser,
// body.ts), the error handler and the reply helpers. The routes themselves are in events.ts (native API)
// and segment.ts (Segment webhooks and HTTP API). Ops routes (/healthz, /readyz, /metrics) live outside
// this plugin (app.ts), so none of this applies to them.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayConfig, Logger, PgPool } from '@meterline/core';
import { apiKeyOf, type SegmentSecretCache } from '../auth.ts';
import { BodyError, contentEncodingOf, decodeBody, utf8Text } from '../body.ts';
import { UnavailableError, type Ingestor } from '../ingest.ts';
import type { GatewayMetrics } from '../metrics.ts';
import { eventsRoutes } from './events.ts';
import { createReplies, errorBody, type Replies } from './replies.ts';
import { segmentRoutes } from './segment.ts';

declare module 'fastify' {
  interface FastifyRequest {
    organizationId?: string;
    rawBody?: Buffer;
  }
}

export interface IngestApiDeps {
  cfg: GatewayConfig;
  /** Resolves an API key to its organization (null: unknown or revoked); throws when it cannot tell. */
  keys: { resolve(key: string): Promise<{ organizationId: string } | null> };
  secrets: SegmentSecretCache;
  pg: PgPool;
  ingestor: Ingestor;
  metrics: GatewayMetrics;
  logger: Logger;
  isShuttingDown: () => boolean;
}

/** What the route modules get: the plugin's dependencies and its reply helpers. */
export interface IngestContext extends IngestApiDeps {
  replies: Replies;
}

export function ingestApi(deps: IngestApiDeps) {
  const { cfg, keys, logger } = deps;
  const replies = createReplies({ metrics: deps.metrics, maxBatchEvents: cfg.maxBatchEvents });

  return async function ingestApiPlugin(app: FastifyInstance): Promise<void> {
    // Authentication for every ingest route (before the body is read).
    app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      if (deps.isShuttingDown()) return replies.unavailable(reply, new UnavailableError('shutting_down', 'gateway is shutting down', 1));
      const key = apiKeyOf(req.headers);
      if (!key)
        return reply
          .code(401)
          .send(errorBody('missing_api_key', 'send an API key as X-API-KEY, Authorization: Bearer, or Basic auth user'));
      let owner: { organizationId: string } | null;
      try {
        owner = await keys.resolve(key);
      } catch (err) {
        return replies.unavailable(reply, new UnavailableError('postgres', `cannot verify API key: ${(err as Error).message}`));
      }
      if (!owner) return reply.code(401).send(errorBody('invalid_api_key', 'unknown or revoked API key'));
      req.organizationId = owner.organizationId;
    });

    // One body path for every ingest route (body.ts): Content-Encoding gzip/deflate/br decoded with the
    // decoded size limited (413), UTF-8 required (400), parsed as JSON whatever the Content-Type.
    app.addHook('preParsing', async (req, _reply, payload) => {
      const encoding = contentEncodingOf(req.headers['content-encoding']);
      if (encoding === null) {
        throw new BodyError(
          415,
          'unsupported_encoding',
          `Content-Encoding ${String(req.headers['content-encoding'])} is not supported (gzip, deflate, br or none)`,
        );
      }
      return encoding === 'identity' ? payload : decodeBody(payload, encoding, cfg.bodyLimitBytes);
    });
    // The decoded bytes are kept (Segment signatures are computed over the JSON Segment sent, i.e. the
    // decoded body). Plain JSON.parse: a `__proto__` key becomes an own property (JSON.parse never sets
    // a prototype) and the event or message holding it is rejected on its own (validation.ts
    // forbiddenKeyPath), instead of the whole batch.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser(
      '*',
      { parseAs: 'buffer' },
      (req: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
        req.rawBody = body;
        let text: string;
        try {
          text = utf8Text(body);
        } catch (err) {
          return done(err as Error);
        }
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (err) {
          return done(new BodyError(400, 'invalid_request', `the body is not valid JSON: ${(err as Error).message}`));
        }
        done(null, value);
      },
    );

    app.setErrorHandler((err: FastifyError | (Error & { statusCode?: number; code?: string }), _req, reply) => {
      if (err instanceof UnavailableError) return replies.unavailable(reply, err);
      if (err instanceof BodyError) return reply.code(err.statusCode).send(errorBody(err.errorCode, err.message));
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return reply.code(413).send(errorBody('body_too_large', `request body exceeds ${cfg.bodyLimitBytes} bytes`));
      }
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
        const code = err.statusCode === 415 ? 'unsupported_media_type' : 'invalid_request';
        return reply.code(err.statusCode).send(errorBody(code, err.message));
      }
      logger.error({ err }, 'unhandled error');
      return reply.code(500).send(errorBody('internal', 'internal error'));
    });

    const ctx: IngestContext = { ...deps, replies };
    await app.register(eventsRoutes, ctx);
    await app.register(segmentRoutes, ctx);
  };
}
