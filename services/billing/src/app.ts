// Builds the billing service: Fastify app + its dependencies. startBilling(config, deps?) is what
// main.ts and the tests call; any dependency can be injected (tests pass fakes or their own clients).
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  ApiKeyCache,
  dependencyChecks,
  createClickHouse,
  ensureWriterReplica,
  WriterReplicaConflict,
  createLogger,
  createMetricsRegistry,
  createPostgres,
  createRedis,
  findApiKeyOwner,
  httpServerOptions,
  instrumentHttp,
  opsRoutes,
  type Config,
} from '@meterline/core';
import type { Deps } from './deps.ts';
import { CatalogCache } from './cache.ts';
import { requireApiKey } from './http/auth.ts';
import { installErrorHandler } from './http/errors.ts';
import { installInputGuards } from './http/input.ts';
import { installDocs } from './http/docs.ts';
import { installValidators } from './http/validation.ts';
import { adminRoutes, keyRoutes, settingsRoutes } from './orgs/routes.ts';
import { customerRoutes } from './customers/routes.ts';
import { customerSearchRoutes } from './customers/search.ts';
import { featureRoutes } from './features/routes.ts';
import { metricRoutes } from './metrics/routes.ts';
import { planRoutes } from './plans/routes.ts';
import { subscriptionRoutes } from './subscriptions/routes.ts';
import { invoiceAdminRoutes, invoiceRoutes } from './invoices/routes.ts';
import { entitlementRoutes } from './entitlements/routes.ts';
import { promotionRoutes } from './promotions/routes.ts';
import { addOnRoutes } from './addons/routes.ts';
import { entityRoutes } from './entities/routes.ts';
import { invoiceDocumentRoutes } from './invoices/document-routes.ts';
import { closeFailureRoutes } from './invoices/close-failures.ts';
import { creditRoutes } from './credits/routes.ts';
import { couponRoutes } from './coupons/routes.ts';
import { alertRoutes } from './alerts/routes.ts';
import { paymentRoutes } from './payments/routes.ts';
import { startScheduler } from './invoices/scheduler.ts';
import { startWebhookWorker } from './webhooks/worker.ts';
import { webhookRoutes } from './webhooks/routes.ts';
import { clickHouseUsageReader } from './usage/reader.ts';
import { kafkaUsageRecorder } from './usage/recorder.ts';
import { kafkaUsageProgress } from './usage/progress.ts';
import { UsageLedger } from './usage/ledger.ts';
import { UsageReadings } from './usage/readings.ts';
import { billingMetrics } from './telemetry.ts';
import { PROVIDERS } from './payments/provider.ts';
import { referralRoutes } from './referrals/routes.ts';
import { checkoutRoutes } from './checkout/routes.ts';

export interface BillingOptions {
  /** How often due subscriptions are renewed/ended (ms); 0 disables the loop. */
  renewalIntervalMs?: number;
  snapshotTtlMs?: number;
  /** Overrides config.billing.usageMaxAgeMs (BILLING_USAGE_MAX_AGE_MS): the freshness bound F of consuming checks. */
  usageTtlMs?: number;
  /** Overrides config.billing.usageReadStaleMs (BILLING_USAGE_READ_STALE_MS). */
  usageReadStaleMs?: number;
  port?: number;
  /** Overrides config.webhooks (WEBHOOK_*): the delivery worker; intervalMs 0 disables it. */
  webhooks?: Partial<Config['webhooks']>;
}

export interface BillingHandle {
  app: FastifyInstance;
  url: string;
  deps: Deps;
  stop: () => Promise<void>;
}

export function buildDeps(config: Config, partial: Partial<Deps> = {}, opts: BillingOptions = {}): Deps {
  const logger = partial.logger ?? createLogger('billing', config.logLevel);
  const pool = partial.pool ?? createPostgres(config.postgresUrl, { max: 20, applicationName: 'meterline-billing' });
  const redis = partial.redis ?? createRedis(config.redisUrl, { name: 'meterline-billing' });
  const ch = partial.ch ?? createClickHouse(config.clickhouse);
  const registry = partial.registry ?? createMetricsRegistry('billing');
  return {
    registry,
    metrics: partial.metrics ?? billingMetrics(registry),
    config,
    logger,
    pool,
    redis,
    ch,
    usage: partial.usage ?? clickHouseUsageReader(ch),
    recorder: partial.recorder ?? kafkaUsageRecorder(config.kafka, logger),
    progress: partial.progress ?? kafkaUsageProgress(config.kafka, redis, logger),
    ledger: partial.ledger ?? new UsageLedger(redis),
    readings:
      partial.readings ??
      new UsageReadings(opts.usageTtlMs ?? config.billing.usageMaxAgeMs, opts.usageReadStaleMs ?? config.billing.usageReadStaleMs),
    apiKeys:
      partial.apiKeys ??
      new ApiKeyCache((key) => findApiKeyOwner(pool, key)).followChanges(redis, {
        onError: (err) => logger.debug({ err: err.message }, 'api key change subscriber error'),
      }),
    cache:
      partial.cache ??
      new CatalogCache({ snapshotTtlMs: opts.snapshotTtlMs }).followChanges(redis, {
        onError: (err) => logger.debug({ err: err.message }, 'catalog change subscriber error'),
      }),
    now: partial.now ?? (() => new Date()),
    paymentProviders: partial.paymentProviders ?? PROVIDERS,
  };
}

export async function buildBillingApp(deps: Deps): Promise<FastifyInstance> {
  const app = Fastify({
    ...httpServerOptions(deps.config.http),
    loggerInstance: deps.logger as unknown as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
  });
  // bodies validated without type coercion, query strings/params with it (http/validation.ts)
  installValidators(app);
  installErrorHandler(app);
  installInputGuards(app);
  await installDocs(app);
  const registry = deps.registry;
  instrumentHttp(app, registry);
  let shuttingDown = false;
  app.decorate('markShuttingDown', () => {
    shuttingDown = true;
  });
  await app.register(
    opsRoutes({
      registry,
      isShuttingDown: () => shuttingDown,
      checks: dependencyChecks({ pool: deps.pool, redis: deps.redis, ch: deps.ch }),
    }),
  );
  await app.register(async (admin) => {
    await adminRoutes(admin, deps);
    await invoiceAdminRoutes(admin, deps);
  });
  await app.register(async (v1) => {
    v1.addHook('onRequest', requireApiKey(deps.apiKeys));
    await keyRoutes(v1, deps);
    await settingsRoutes(v1, deps);
    await customerRoutes(v1, deps);
    await customerSearchRoutes(v1, deps);
    await featureRoutes(v1, deps);
    await metricRoutes(v1, deps);
    await planRoutes(v1, deps);
    await subscriptionRoutes(v1, deps);
    await invoiceRoutes(v1, deps);
    await invoiceDocumentRoutes(v1, deps);
    await entitlementRoutes(v1, deps);
    await promotionRoutes(v1, deps);
    await addOnRoutes(v1, deps);
    await entityRoutes(v1, deps);
    await closeFailureRoutes(v1, deps);
    await creditRoutes(v1, deps);
    await couponRoutes(v1, deps);
    await webhookRoutes(v1, deps);
    await alertRoutes(v1, deps);
    await paymentRoutes(v1, deps);
    await referralRoutes(v1, deps);
    await checkoutRoutes(v1, deps);
  });
  return app;
}

/** Builds and listens (port 0 = any free port when config.billing.port is 0 or opts.port is given). */
export async function startBilling(config: Config, partial: Partial<Deps> = {}, opts: BillingOptions = {}): Promise<BillingHandle> {
  const deps = buildDeps(config, partial, opts);
  // One writer replica per cluster deployment (core's writer-replica.ts): a billing instance reading
  // another replica could grant past a hard limit, so it refuses to start. Only with CLICKHOUSE_CLUSTER
  // set (a cluster deployment says so); a ClickHouse that cannot be asked now is logged, not fatal
  // (billing serves its catalog without ClickHouse; the aggregators' own check is retried and fatal).
  if (config.clickhouse.cluster) {
    try {
      await ensureWriterReplica(deps.ch, deps.redis, config.clickhouse.database, 'billing');
    } catch (err) {
      if (!(err instanceof WriterReplicaConflict))
        deps.logger.warn({ err }, 'writer replica not checked (ClickHouse or Redis unavailable)');
      else {
        deps.logger.error({ err: err.message }, 'wrong ClickHouse replica');
        if (!partial.redis) deps.redis.disconnect();
        if (!partial.pool) await deps.pool.end().catch(() => undefined);
        if (!partial.ch) await deps.ch.close().catch(() => undefined);
        throw err;
      }
    }
  }
  const app = await buildBillingApp(deps);
  const address = await app.listen({ port: opts.port ?? config.billing.port, host: config.billing.host });
  const url = address.replace('[::1]', '127.0.0.1');
  const scheduler = startScheduler(deps, opts.renewalIntervalMs ?? 30_000);
  const webhooks = startWebhookWorker(deps, { ...config.webhooks, ...opts.webhooks });
  let stopped = false;
  return {
    app,
    url,
    deps,
    async stop() {
      if (stopped) return;
      stopped = true;
      (app as unknown as { markShuttingDown: () => void }).markShuttingDown();
      await scheduler.stop();
      await webhooks.stop();
      await app.close();
      await deps.recorder.stop().catch(() => undefined);
      await deps.progress.stop().catch(() => undefined);
      if (!partial.cache) await deps.cache.close();
      if (!partial.redis) deps.redis.disconnect();
      if (!partial.pool) await deps.pool.end();
      if (!partial.ch) await deps.ch.close();
    },
  };
}
