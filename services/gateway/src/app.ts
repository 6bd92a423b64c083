// The ingest gateway's wiring: its dependencies, the Fastify instance, the ops routes, the ingest plugin
// (routes/ingest-api.ts) and start/stop. startGateway() is for main.ts and tests.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Admin, Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import {
  ApiKeyCache,
  createKafka,
  dependencyChecks,
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
import { SegmentSecretCache } from './auth.ts';
import { DedupStore } from './dedup.ts';
import { Ingestor } from './ingest.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { KafkaUnavailableError, ProduceQueue } from './produce-queue.ts';
import { ingestApi } from './routes/ingest-api.ts';

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
  const kafka =
    deps.kafka ??
    createKafka(
      config.kafka,
      logger,
      {
        connectionTimeout: 2_000,
        requestTimeout: Math.min(5_000, cfg.produceTimeoutMs),
        retry: { initialRetryTime: 100, retries: 3, maxRetryTime: 1_000 },
      },
      {
        // The idempotent producer's retries are bounded on purpose (and the producer replaced after any
        // failure), so kafkajs' warning about it is dropped; kafkajs' errors are warnings: the gateway
        // reports the outcome (503, metrics) itself.
        dropIdempotentRetryWarning: true,
        errorsAsWarnings: true,
      },
    );
  // Readiness uses its own client without retries, so a probe answers within its 2 s budget.
  const probeKafka = createKafka(config.kafka, undefined, { connectionTimeout: 1_500, requestTimeout: 1_500, retry: { retries: 0 } });

  const registry = deps.registry ?? createMetricsRegistry('gateway');
  const metrics = createGatewayMetrics(registry);
  const queue = new ProduceQueue(kafka, {
    topic: config.kafka.eventsTopic,
    timeoutMs: cfg.produceTimeoutMs,
    idempotent: deps.idempotentProducer ?? true,
    producers: 3, // each idempotent; see produce-queue.ts for why a pool and when a second send starts
    // Per-send message cap: kafkajs groups a send's messages by partition with an array copy per message
    // (quadratic in messages per partition), so sends of a few thousand cost more CPU per event than two
    // half-size sends on two producers (docs/benchmarks.md, "Gateway profile").
    maxBatchMessages: 2_000,
    logger,
    onSend: ({ seconds, messages, ok }) => {
      metrics.produceSeconds.observe({ ok: String(ok) }, seconds);
      if (ok) metrics.produceBatchMessages.observe(messages);
    },
  });
  const dedup = new DedupStore(redis, { claimTtlMs: cfg.dedupClaimTtlMs, windowMs: cfg.dedupWindowMs });
  const ingestor = new Ingestor({ dedup, queue, metrics, logger, maxInFlightEvents: cfg.maxInFlightEvents });
  // Revocations reach this cache through Redis pub/sub within milliseconds (core ApiKeyCache).
  const keys = new ApiKeyCache((key) => findApiKeyOwner(pg, key)).followChanges(redis, {
    onError: (err) => logger.debug({ err: err.message }, 'api key change subscriber error'),
  });
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

  await app.register(
    opsRoutes({
      registry,
      isShuttingDown: () => shuttingDown,
      checks: {
        ...dependencyChecks({ redis }),
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
    }),
  );

  // The ingest routes: one encapsulated plugin with their auth hook, body path, error handler and replies.
  await app.register(ingestApi({ cfg, keys, secrets, pg, ingestor, metrics, logger, isShuttingDown: () => shuttingDown }));

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
