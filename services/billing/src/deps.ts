import type { ApiKeyCache, ClickHouseClient, Config, Logger, PgPool, Redis } from '@meterline/core';
import type { UsageReader } from './usage/reader.ts';
import type { UsageRecorder } from './usage/recorder.ts';
import type { UsageProgress } from './usage/progress.ts';
import type { UsageLedger } from './usage/ledger.ts';
import type { UsageReadings } from './usage/readings.ts';
import type { CatalogCache } from './cache.ts';
import type { Registry } from 'prom-client';
import type { BillingMetrics } from './telemetry.ts';
import type { PaymentProvider } from './payments/provider.ts';

/** Everything the routes and services use, built once by startBilling (tests may inject parts). */
export interface Deps {
  config: Config;
  logger: Logger;
  pool: PgPool;
  redis: Redis;
  ch: ClickHouseClient;
  usage: UsageReader;
  recorder: UsageRecorder;
  /** Whether the aggregator has counted what was acknowledged up to a moment (invoice finalization waits for it). */
  progress: UsageProgress;
  ledger: UsageLedger;
  /** ClickHouse usage readings for checks, at most `maxAgeMs` old (usage/readings.ts). */
  readings: UsageReadings;
  apiKeys: ApiKeyCache;
  cache: CatalogCache;
  now: () => Date;
  registry: Registry;
  metrics: BillingMetrics;
  /** Payment providers by name for attach/checkout and the billing portal (default payments/provider.ts PROVIDERS; tests add fakes). */
  paymentProviders?: Record<string, PaymentProvider>;
}
