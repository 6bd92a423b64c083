import type { ApiKeyCache, ClickHouseClient, Config, Logger, PgPool, Redis } from '@meterline/core';
import type { UsageReader } from './usage/reader.ts';
import type { UsageRecorder } from './usage/recorder.ts';
import type { UsageLedger } from './usage/ledger.ts';
import type { CatalogCache } from './cache.ts';

/** Everything the routes and services use, built once by startBilling (tests may inject parts). */
export interface Deps {
  config: Config;
  logger: Logger;
  pool: PgPool;
  redis: Redis;
  ch: ClickHouseClient;
  usage: UsageReader;
  recorder: UsageRecorder;
  ledger: UsageLedger;
  apiKeys: ApiKeyCache;
  cache: CatalogCache;
  now: () => Date;
}
