// The ingest gateway: Fastify app, its dependencies, and startGateway() for main.ts and tests.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { logLevel, type Admin, type Kafka, type KafkaConfig } from 'kafkajs';
import type { Registry } from 'prom-client';
import {
  ApiKeyCache,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createPostgres,
  createRedis,
  ensureTopics,
  findApiKeyOwner,
  httpServerOptions,
  instrumentHttp,
  opsRoutes,
  type Config,
  type Logger,
  type PgPool,
  type Redis,
} from '@meterline/core';
import { apiKeyOf, postgresFailureKind, SegmentSecretCache, upsertCustomer } from './auth.ts';
import { BodyError, contentEncodingOf, decodeBody, utf8Text } from './body.ts';
import { DedupStore } from './dedup.ts';
import { Ingestor, statusOf, UnavailableError, type IngestSummary, type PreparedItem } from './ingest.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { KafkaUnavailableError, ProduceQueue } from './produce-queue.ts';
import { mapSegmentMessage, segmentMessagesOfBody, verifySegmentSignature, type CustomerUpsert, type SegmentType } from './segment.ts';
import { eventsOfBody, validateEvent } from './validation.ts';

export interface GatewayDeps {
  logger?: Logger;
  /** Clients passed in are not closed by stop(); clients the gateway creates are. */
  redis?: Redis;
  pg?: PgPool;
  kafka?: Kafka;
  registry?: Registry;
  /** Use kafkajs' idempotent producer (default true). */
  idempotentProducer?: boolean;
  /** Create the events topic at start if missing (default true; failures are logged, not fatal). */
  ensureTopics?: boolean;
}

export interface Gateway {
  app: FastifyInstance;
  url: string;
  /** Graceful: stops accepting, drains in-flight requests and Kafka sends, closes owned clients. */
  stop: () => Promise<void>;
  metrics: GatewayMetrics;
  ingestor: Ingestor;
}

declare module 'fastify' {
  interface FastifyRequest {
    organizationId?: string;
    rawBody?: Buffer;
  }
}

/** kafkajs logs into pino; the warning about bounded retries of the idempotent producer is expected
 *  (we bound them on purpose and replace the producer after any failure), so it is dropped. */
function kafkaLogCreator(logger: Logger): KafkaConfig['logCreator'] {
  return () => ({ namespace, level, log }) => {
    const { message, ...extra } = log;
    if (message.startsWith('Limiting retries for the idempotent producer')) return;
    // kafkajs' own errors are logged as warnings: the gateway reports the outcome (503, metrics) itself.
    const fn = level <= logLevel.WARN ? 'warn' : 'debug';
    logger[fn]({ kafkajs: namespace, ...extra }, message);
  };
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export async function buildGateway(config: Config, deps: GatewayDeps = {}) {
  const cfg = config.gateway;
  const logger = deps.logger ?? createLogger('gateway', config.logLevel);
  const owned: Array<() => Promise<unknown>> = [];

  const redis = deps.redis ?? createRedis(config.redisUrl, { name: 'meterline-gateway' });
  if (!deps.redis) owned.push(() => redis.quit().catch(() => redis.disconnect()));
  redis.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis error'));
  const pg = deps.pg ?? createPostgres(config.postgresUrl, { applicationName: 'meterline-gateway' });
  if (!deps.pg) owned.push(() => pg.end());
  pg.on('error', (err: Error) => logger.warn({ err: err.message }, 'postgres pool error'));
  const kafka = deps.kafka ?? createKafka(config.kafka, logger, {
    connectionTimeout: 2_000,
    requestTimeout: Math.min(5_000, cfg.produceTimeoutMs),
    retry: { initialRetryTime: 100, retries: 3, maxRetryTime: 1_000 },
    logCreator: kafkaLogCreator(logger),
  });
  // Readiness uses its own client without retries, so a probe answers within its 2 s budget.
  const probeKafka = createKafka(config.kafka, undefined, { connectionTimeout: 1_500, requestTimeout: 1_500, retry: { retries: 0 } });

  const registry = deps.registry ?? createMetricsRegistry('gateway');
  const metrics = createGatewayMetrics(registry);
  const queue = new ProduceQueue(kafka, {
    topic: config.kafka.eventsTopic,
    timeoutMs: cfg.produceTimeoutMs,
    idempotent: deps.idempotentProducer ?? true,
    logger,
    onSend: ({ seconds, messages, ok }) => {
      metrics.produceSeconds.observe({ ok: String(ok) }, seconds);
      if (ok) metrics.produceBatchMessages.observe(messages);
    },
  });
  const dedup = new DedupStore(redis, { claimTtlMs: cfg.dedupClaimTtlMs, windowMs: cfg.dedupWindowMs });
  const ingestor = new Ingestor({ dedup, queue, metrics, logger, maxInFlightEvents: cfg.maxInFlightEvents });
  // Revocations reach this cache through Redis pub/sub within milliseconds (core ApiKeyCache).
  const keys = new ApiKeyCache((key) => findApiKeyOwner(pg, key))
    .followChanges(redis, { onError: (err) => logger.debug({ err: err.message }, 'api key change subscriber error') });
  owned.unshift(() => keys.close());
  const secrets = new SegmentSecretCache(pg);
  let shuttingDown = false;

  const app = Fastify({
    ...httpServerOptions(config.http), // request/headers timeouts: 408, no request holds a connection
    bodyLimit: cfg.bodyLimitBytes,
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  instrumentHttp(app, registry);

  // While stopping, every response closes its connection, so that draining does not wait for idle
  // keep-alive sockets (Fastify's keepAliveTimeout is 72 s).
  app.addHook('onSend', async (_req, reply, payload) => {
    if (shuttingDown) reply.header('connection', 'close');
    return payload;
  });

  // One body path for every ingest route (body.ts): Content-Encoding gzip/deflate/br decoded with the
  // decoded size limited (413), UTF-8 required (400), parsed as JSON whatever the Content-Type.
  app.addHook('preParsing', async (req, _reply, payload) => {
    const encoding = contentEncodingOf(req.headers['content-encoding']);
    if (encoding === null) {
      throw new BodyError(415, 'unsupported_encoding', `Content-Encoding ${String(req.headers['content-encoding'])} is not supported (gzip, deflate, br or none)`);
    }
    return encoding === 'identity' ? payload : decodeBody(payload, encoding, cfg.bodyLimitBytes);
  });
  // The decoded bytes are kept (Segment signatures are computed over the JSON Segment sent, i.e. the
  // decoded body).
  const defaultJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void) => {
    req.rawBody = body;
    let text: string;
    try {
      text = utf8Text(body);
    } catch (err) {
      return done(err as Error);
    }
    defaultJson(req, text, done);
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof UnavailableError) return sendUnavailable(reply, err);
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

  function sendUnavailable(reply: FastifyReply, err: UnavailableError) {
    metrics.unavailable.inc({ reason: err.cause_ });
    return reply.code(503).header('retry-after', String(err.retryAfterSeconds)).send(errorBody(`${err.cause_}_unavailable`.replace('overloaded_unavailable', 'overloaded'), err.message));
  }

  await app.register(opsRoutes({
    registry,
    isShuttingDown: () => shuttingDown,
    checks: {
      redis: async () => { await redis.ping(); },
      kafka: async () => {
        const admin = probeKafka.admin();
        try {
          await admin.connect();
          const meta = await admin.fetchTopicMetadata({ topics: [config.kafka.eventsTopic] });
          if (!meta.topics[0]?.partitions.every((p) => p.leader >= 0)) throw new Error('events topic has no leader');
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
    },
  }));

  // Authentication for every ingest route (before the body is read).
  async function authenticate(req: FastifyRequest, reply: FastifyReply) {
    if (shuttingDown) return sendUnavailable(reply, new UnavailableError('shutting_down', 'gateway is shutting down', 1));
    const key = apiKeyOf(req.headers);
    if (!key) return reply.code(401).send(errorBody('missing_api_key', 'send an API key as X-API-KEY, Authorization: Bearer, or Basic auth user'));
    let owner;
    try {
      owner = await keys.resolve(key);
    } catch (err) {
      return sendUnavailable(reply, new UnavailableError('postgres', `cannot verify API key: ${(err as Error).message}`));
    }
    if (!owner) return reply.code(401).send(errorBody('invalid_api_key', 'unknown or revoked API key'));
    req.organizationId = owner.organizationId;
  }

  function reply(replyObj: FastifyReply, summary: IngestSummary) {
    const status = statusOf(summary);
    if (status === 503) replyObj.header('retry-after', '1');
    return replyObj.code(status).send(summary);
  }

  function tooLarge(n: number) {
    return errorBody('batch_too_large', `a request may carry at most ${cfg.maxBatchEvents} events, got ${n}`);
  }

  // --- Native API ---------------------------------------------------------------------------------
  const eventsHandler = async (req: FastifyRequest, res: FastifyReply) => {
    const parsed = eventsOfBody(req.body);
    if ('error' in parsed) return res.code(400).send(errorBody('invalid_body', parsed.error));
    const { events } = parsed;
    if (events.length === 0) return res.code(400).send(errorBody('empty_batch', 'the request contains no events'));
    if (events.length > cfg.maxBatchEvents) return res.code(413).send(tooLarge(events.length));
    const now = Date.now();
    const items: PreparedItem[] = events.map((raw) => {
      const v = validateEvent(raw, now, cfg);
      return v.ok ? { event: v.event } : { result: { status: 'rejected', errors: v.errors } };
    });
    return reply(res, await ingestor.ingest(req.organizationId!, 'api', items, now));
  };
  app.post('/v1/events', { onRequest: authenticate }, eventsHandler);
  app.post('/api/track', { onRequest: authenticate }, eventsHandler);

  // --- Segment ------------------------------------------------------------------------------------
  const segmentHandler = (impliedType: SegmentType | undefined, verifySignature: boolean) =>
    async (req: FastifyRequest, res: FastifyReply) => {
      const org = req.organizationId!;
      if (verifySignature) {
        let secret: string | null;
        try {
          secret = await secrets.secretOf(org);
        } catch (err) {
          throw new UnavailableError('postgres', `cannot load Segment settings: ${(err as Error).message}`);
        }
        const sig = req.headers['x-signature'];
        if (secret !== null && !verifySegmentSignature(req.rawBody ?? Buffer.alloc(0), secret, typeof sig === 'string' ? sig : undefined)) {
          return res.code(401).send(errorBody('invalid_signature', 'X-Signature does not match the HMAC-SHA1 of the body'));
        }
      }
      const parsed = segmentMessagesOfBody(req.body);
      if ('error' in parsed) return res.code(400).send(errorBody('invalid_body', parsed.error));
      const { messages } = parsed;
      if (messages.length === 0) return res.code(400).send(errorBody('empty_batch', 'the request contains no messages'));
      if (messages.length > cfg.maxBatchEvents) return res.code(413).send(tooLarge(messages.length));
      const now = Date.now();
      const upserts: Array<{ index: number; customer: CustomerUpsert }> = [];
      const items: PreparedItem[] = messages.map((msg, index) => {
        const m = mapSegmentMessage(msg, now, cfg, impliedType);
        switch (m.kind) {
          case 'event':
            return m.result.ok ? { event: m.result.event } : { result: { status: 'rejected', errors: m.result.errors } };
          case 'identify':
            upserts.push({ index, customer: m.customer });
            return { result: { status: 'accepted', customer_id: m.customer.customerId } };
          case 'ignored':
            return { result: { status: 'ignored', reason: `${m.type} is not metered` } };
          case 'rejected':
            return { result: { status: 'rejected', errors: m.errors } };
        }
      });
      // Customers first: if Postgres is down, nothing of this request has been produced yet (503).
      // A value Postgres refuses (SQLSTATE class 22/23) rejects that message only: the sender's data,
      // not a reason to retry.
      for (const { index, customer } of upserts) {
        try {
          await upsertCustomer(pg, org, customer);
        } catch (err) {
          const kind = postgresFailureKind(err);
          if (kind === 'unavailable') throw new UnavailableError('postgres', `cannot update customers: ${(err as Error).message}`);
          if (kind === 'internal') throw err;
          const code = (err as { code?: string }).code;
          items[index] = { result: { status: 'rejected', errors: [{ field: 'traits', reason: 'invalid_value', message: `the customer's traits were refused by the database (SQLSTATE ${code})` }] } };
        }
      }
      return reply(res, await ingestor.ingest(org, 'segment', items, now));
    };
  app.post('/v1/segment', { onRequest: authenticate }, segmentHandler(undefined, true));
  app.post('/v1/batch', { onRequest: authenticate }, segmentHandler(undefined, false));
  for (const t of ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const) {
    app.post(`/v1/${t}`, { onRequest: authenticate }, segmentHandler(t, false));
  }

  async function close(): Promise<void> {
    shuttingDown = true;
    await app.close(); // waits for in-flight requests (and so their Kafka acks)
    await queue.close();
    for (const f of owned) await f().catch(() => undefined);
  }

  async function prepare(): Promise<void> {
    if (deps.ensureTopics !== false) {
      let admin: Admin | null = null;
      try {
        admin = kafka.admin();
        await admin.connect();
        await ensureTopics(admin, config.kafka);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'could not ensure Kafka topics at start (will answer 503 until Kafka is back)');
      } finally {
        await admin?.disconnect().catch(() => undefined);
      }
    }
    await queue.connect().catch((err: unknown) => {
      logger.warn({ err: err instanceof KafkaUnavailableError ? err.message : String(err) }, 'Kafka producer not connected at start');
    });
  }

  return { app, close, prepare, metrics, ingestor, logger };
}

/** Builds and starts the gateway on config.gateway.host/port (port 0: a free port). */
export async function startGateway(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const gw = await buildGateway(config, deps);
  await gw.prepare();
  const address = await gw.app.listen({ host: config.gateway.host, port: config.gateway.port });
  const url = address.replace('[::1]', 'localhost');
  gw.logger.info({ url }, 'gateway listening');
  let stopping: Promise<void> | null = null;
  return {
    app: gw.app,
    url,
    metrics: gw.metrics,
    ingestor: gw.ingestor,
    stop: () => (stopping ??= gw.close()),
  };
}
