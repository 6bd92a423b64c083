// startAggregator: builds the aggregator from a Config and optional explicit dependencies (tests pass
// their own clients), starts the consumer, the metric catalog watcher, the backfiller and the HTTP app
// (/healthz, /readyz, /metrics, /v1/debug/*). stop() drains gracefully: the chunk in progress is
// inserted, rolled up and committed before the consumer leaves the group.
import {
  ApiKeyCache,
  dependencyChecks,
  createClickHouse,
  ensureWriterReplica,
  WriterReplicaConflict,
  createKafka,
  createLogger,
  createMetricsRegistry,
  createPostgres,
  createRedis,
  ensureTopics,
  findApiKeyOwner,
  instrumentHttp,
  httpServerOptions,
  opsRoutes,
  type ClickHouseClient,
  type Config,
  type Logger,
  type PgPool,
  type Redis,
} from '@meterline/core';
import { AGGREGATOR_CLICKHOUSE_SETTINGS } from './clickhouse-settings.ts';
import Fastify, { type FastifyInstance } from 'fastify';
import { Partitioners, type Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { Backfiller } from './backfill.ts';
import { MetricCatalog } from './catalog.ts';
import { EventConsumer } from './consumer.ts';
import { debugRoutes } from './debug-api.ts';
import { LagMonitor } from './lag.ts';
import { MetricHealth } from './metric-health.ts';
import { retryUntilDone } from './retry.ts';
import { StagingRetention } from './retention.ts';
import { aggregatorMetrics } from './telemetry.ts';
import { configuredSizeConflict, WindowSizeConflict, WindowSizes } from './window-sizes.ts';

export interface AggregatorDeps {
  ch?: ClickHouseClient;
  pool?: PgPool;
  redis?: Redis;
  kafka?: Kafka;
  logger?: Logger;
  registry?: Registry;
  /** Wait before a backfill reads raw events (default: 3 catalog polls + 2 s). */
  backfillSettleMs?: number;
  /** Backfill slice sizing (backfill.ts; tests use small slices to get many of them). */
  backfillSlices?: { sliceTargetRows?: number; sliceTargetMs?: number; previewSpanS?: number };
}

export interface Aggregator {
  app: FastifyInstance;
  /** The port the HTTP app listens on (useful with port 0). */
  port: number;
  /** Base URL of the HTTP app (like the gateway's and billing's handles). */
  url: string;
  catalog: MetricCatalog;
  backfiller: Backfiller;
  /** Each topic's recorded window size (window-sizes.ts). */
  windows: WindowSizes;
  lag: LagMonitor;
  stop(): Promise<void>;
}

export async function startAggregator(config: Config, deps: AggregatorDeps = {}): Promise<Aggregator> {
  const logger = deps.logger ?? createLogger('aggregator', config.logLevel);
  const registry = deps.registry ?? createMetricsRegistry('aggregator');
  const metrics = aggregatorMetrics(registry);
  const ch = deps.ch ?? createClickHouse(config.clickhouse, { settings: AGGREGATOR_CLICKHOUSE_SETTINGS });
  const pool = deps.pool ?? createPostgres(config.postgresUrl, { max: 5, applicationName: 'meterline-aggregator' });
  const redis = deps.redis ?? createRedis(config.redisUrl, { name: 'meterline-aggregator' });
  const kafka = deps.kafka ?? createKafka(config.kafka, logger);
  let stopping = false;

  // Start-up refusals (a wrong window size or ClickHouse replica): close what this call created, then throw.
  const refuse = async (err: unknown): Promise<never> => {
    if (!deps.ch) await ch.close().catch(() => undefined);
    if (!deps.pool) await pool.end().catch(() => undefined);
    if (!deps.redis) redis.disconnect();
    throw err;
  };
  // A start-up check: retried while ClickHouse/Redis are unavailable, refused on its own conflict error.
  const startupCheck = <T>(fn: () => Promise<T>, isConflict: (err: unknown) => boolean, retrying: string) =>
    retryUntilDone(fn, {
      active: () => true,
      maxBackoffMs: config.aggregator.maxRetryBackoffMs,
      isPermanent: isConflict,
      onRetry: (err) => logger.warn({ err }, retrying),
    }).catch(refuse);

  // One window size per topic (window-sizes.ts): a differently configured instance refuses to start,
  // before it consumes or backfills anything (rows of two sizes would double count).
  const windows = new WindowSizes(ch, redis, config.aggregator.windowSize);
  const topic = config.kafka.eventsTopic;
  const windowSize = await startupCheck(
    () => windows.forTopic(topic),
    (err) => err instanceof WindowSizeConflict,
    'window size of the topic not read, retrying',
  );
  // One writer replica per cluster deployment (core's writer-replica.ts): refuse before consuming anything.
  await startupCheck(
    () => ensureWriterReplica(ch, redis, config.clickhouse.database, 'aggregator'),
    (err) => err instanceof WriterReplicaConflict,
    'writer replica not checked, retrying',
  ).catch((err: unknown) => {
    if (err instanceof WriterReplicaConflict) logger.error({ err: err.message }, 'wrong ClickHouse replica');
    throw err;
  });
  if (windowSize !== config.aggregator.windowSize) {
    const err = configuredSizeConflict(topic, config.aggregator.windowSize, windowSize);
    logger.error({ topic, configured: config.aggregator.windowSize, recorded: windowSize }, err.message);
    await refuse(err);
  }

  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 5 },
  });
  const admin = kafka.admin();
  await retryUntilDone(
    async () => {
      await admin.connect();
      await ensureTopics(admin, config.kafka);
      await producer.connect();
    },
    {
      active: () => !stopping,
      maxBackoffMs: config.aggregator.maxRetryBackoffMs,
      onRetry: (err) => logger.warn({ err }, 'kafka not reachable, retrying'),
    },
  );

  const health = new MetricHealth(ch, logger, metrics.invalidMetrics);
  await retryUntilDone(() => health.load(), {
    active: () => !stopping,
    maxBackoffMs: config.aggregator.maxRetryBackoffMs,
    onRetry: (err) => logger.warn({ err }, 'invalid metric versions not loaded, retrying'),
  });
  const backfiller = new Backfiller({
    ch,
    redis,
    logger,
    windows,
    settleMs: deps.backfillSettleMs ?? config.aggregator.metricPollMs * 3 + 2_000,
    counter: metrics.backfills,
    isStopping: () => stopping,
    health,
    ...deps.backfillSlices,
    telemetry: { slices: metrics.backfillSlices, queue: metrics.backfillQueue, firstSlice: metrics.backfillFirstSliceSeconds },
  });
  // completed backfills are known before the catalog re-announces every version (none is redone)
  await retryUntilDone(() => backfiller.load(), {
    active: () => !stopping,
    maxBackoffMs: config.aggregator.maxRetryBackoffMs,
    onRetry: (err) => logger.warn({ err }, 'backfill progress not loaded, retrying'),
  });
  const catalog = new MetricCatalog(
    pool,
    logger,
    config.aggregator.metricPollMs,
    (m) => backfiller.enqueue(m),
    (m, err) => health.reportInvalidDefinition(m, err),
  );
  await retryUntilDone(() => catalog.refresh(), {
    active: () => !stopping,
    maxBackoffMs: config.aggregator.maxRetryBackoffMs,
    onRetry: (err) => logger.warn({ err }, 'metric catalog not loaded, retrying'),
  });
  catalog.start();

  const lag = new LagMonitor({
    admin,
    groupId: config.aggregator.groupId,
    topic: config.kafka.eventsTopic,
    intervalMs: config.aggregator.lagIntervalMs,
    stallAfterMs: config.aggregator.stallAfterMs,
    metrics,
    logger,
  });
  const consumer = new EventConsumer({ config, kafka, producer, ch, redis, catalog, logger, metrics, health, lag });
  const retention = new StagingRetention(ch, logger, config.aggregator.stagingRetentionDays, windows);
  retention.start();

  const app = Fastify({ ...httpServerOptions(config.http), logger: false });
  instrumentHttp(app, registry);
  const keys = new ApiKeyCache((key) => findApiKeyOwner(pool, key)).followChanges(redis);
  app.addHook('onClose', async () => keys.close());
  await app.register(
    opsRoutes({
      registry,
      isShuttingDown: () => stopping,
      checks: {
        kafka: async () => {
          await admin.describeCluster();
        },
        ...dependencyChecks({ ch, pool, redis }),
        consumer: async () => {
          lag.check();
        },
      },
    }),
  );
  await app.register(debugRoutes({ ch, keys }));
  const url = (await app.listen({ port: config.aggregator.port, host: config.aggregator.host })).replace('[::1]', '127.0.0.1');
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.aggregator.port;

  await consumer.start();
  lag.start();
  logger.info({ port, topic: config.kafka.eventsTopic, groupId: config.aggregator.groupId }, 'aggregator started');

  let stopped: Promise<void> | null = null;
  return {
    app,
    port,
    url,
    catalog,
    backfiller,
    windows,
    lag,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        catalog.stop();
        retention.stop();
        lag.stop();
        await consumer.stop();
        await backfiller.idle().catch(() => undefined);
        await producer.disconnect().catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
        await app.close().catch(() => undefined);
        if (!deps.ch) await ch.close().catch(() => undefined);
        if (!deps.pool) await pool.end().catch(() => undefined);
        if (!deps.redis) redis.disconnect();
      })();
      return stopped;
    },
  };
}
