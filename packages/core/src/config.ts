// The one place where Meterline reads its environment. Every service calls loadConfig() once at start
// and passes the parts it needs to the modules it builds (explicit dependencies, no global reads).
// Every variable is documented in README.md ("Configuration"); defaults match the local stack.

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  /** Topic the gateway writes accepted events to. */
  eventsTopic: string;
  /** Topic where undecodable or invalid records are parked with the reason in headers. */
  deadLetterTopic: string;
  /** Partition count used when Meterline creates the events topic. */
  eventsPartitions: number;
  /** KAFKA_REPLICATION_FACTOR: copies of each topic Meterline creates (1 = the single-node stack). */
  replicationFactor?: number;
  /** KAFKA_MIN_INSYNC_REPLICAS: in-sync copies an acks=all write needs on the topics Meterline creates. */
  minInsyncReplicas?: number;
}

export interface ClickHouseConfig {
  url: string;
  username: string;
  password: string;
  database: string;
  /** CLICKHOUSE_ALLOW_NON_UTC: setup only warns (instead of refusing) when the server's zone is not UTC. */
  allowNonUtcTimezone?: boolean;
  /**
   * CLICKHOUSE_CLUSTER: '' = one server, plain MergeTree tables; a cluster name (remote_servers) = the same
   * migrations create Replicated*MergeTree tables with ON CLUSTER DDL (packages/core/src/setup/cluster.ts).
   */
  cluster?: string;
  /** CLICKHOUSE_REPLICATION_PATH: ZooKeeper/Keeper prefix of the replicated tables' paths (macros allowed). */
  replicationPath?: string;
}

export interface GatewayConfig {
  port: number;
  host: string;
  /** Largest accepted request body (bytes); larger bodies get 413. */
  bodyLimitBytes: number;
  /** Most events in one request. */
  maxBatchEvents: number;
  /** Events may be at most this far in the future (ms). */
  maxFutureMs: number;
  /** Events may be at most this old (ms): the backfill window. */
  backfillWindowMs: number;
  /** How long an idempotency id is remembered (ms). */
  dedupWindowMs: number;
  /** Events waiting for Kafka beyond which new requests get 503 (bounded memory). */
  maxInFlightEvents: number;
  /** Longest wait for Kafka's acknowledgement of one send before the request gets 503 (ms). */
  produceTimeoutMs: number;
  /** Lifetime of a "pending" dedup claim (ms): must exceed produceTimeoutMs plus queueing. */
  dedupClaimTtlMs: number;
}

export interface AggregatorConfig {
  port: number;
  host: string;
  groupId: string;
  /** Rollup window: offsets per (partition, window) row of metric_usage. */
  windowSize: number;
  /** How long a duplicate idempotency id is recognized by the aggregator (ms). */
  dedupWindowMs: number;
  /** How often billable_metrics is polled for new and changed definitions (ms). */
  metricPollMs: number;
  /** Most bytes fetched per partition per fetch (bounds batch size). */
  maxBytesPerPartition: number;
  /** Bytes the broker gathers before it answers a fetch (Kafka fetch.min.bytes). */
  fetchMinBytes: number;
  /** Longest the broker holds a fetch to gather fetchMinBytes (Kafka fetch.max.wait.ms): the trickle's batching delay (ms). */
  fetchLingerMs: number;
  /** Most records processed in one ClickHouse insert (longer batches are split). */
  maxBatchRecords: number;
  /** Days of events_by_offset staging kept (0 = keep forever). */
  stagingRetentionDays: number;
  /** Longest backoff between retries while a dependency is down (ms). */
  maxRetryBackoffMs: number;
  /** Kafka consumer session timeout: how long a dead instance holds its partitions (ms). */
  sessionTimeoutMs: number;
  /** How long a failing step is retried inside a batch before the partition backs off (paused) (ms). */
  inlineRetryMs: number;
  /** How often consumer lag (log end - committed offset) is refreshed (ms). */
  lagIntervalMs: number;
  /** A partition with lag and no committed progress for this long is stalled (ms). */
  stallAfterMs: number;
  /** Longest a partition's batch holds the fetch loop before it commits what it did and yields (ms). */
  batchBudgetMs: number;
}

export interface BillingConfig {
  port: number;
  host: string;
  adminSecret: string;
  /** Oldest ClickHouse usage reading a consuming check may use (ms): the freshness bound F (billing README, "Usage state"). */
  usageMaxAgeMs: number;
  /** Oldest reading a non-consuming read (check without send_event, entitlements, customer_access) is served while it refreshes (ms). */
  usageReadStaleMs: number;
  /** Live (not archived) metric definitions an organization may have; one more is 409 metric_limit_reached. */
  maxMetricsPerOrganization: number;
}

/** Billing's outbound webhook worker (services/billing/src/webhooks/worker.ts). */
export interface WebhooksConfig {
  /** How often the worker looks for due deliveries (ms); 0 disables the worker in this instance. */
  intervalMs: number;
  /** Deliveries in flight at once per billing instance (also the most one pass claims). */
  concurrency: number;
  /** Per-attempt HTTP timeout (ms). */
  timeoutMs: number;
  /** Delays before the 2nd, 3rd, ... attempt (ms, each ±20 % jitter); after the last one fails the delivery is abandoned. */
  retryScheduleMs: number[];
}

/** HTTP server limits shared by every service (see packages/core/src/telemetry/http-server.ts). */
export interface HttpServerConfig {
  /** Longest time to receive a whole request, headers and body (ms); then 408 and the connection closes. */
  requestTimeoutMs: number;
  /** Longest time to receive the request headers (ms); then 408. At most requestTimeoutMs. */
  headersTimeoutMs: number;
}

export interface Config {
  env: string;
  logLevel: string;
  kafka: KafkaConfig;
  clickhouse: ClickHouseConfig;
  redisUrl: string;
  postgresUrl: string;
  gateway: GatewayConfig;
  aggregator: AggregatorConfig;
  billing: BillingConfig;
  http: HttpServerConfig;
  webhooks: WebhooksConfig;
  console: ConsoleConfig;
}

/** The web console (services/console): where it listens and the services it forwards /v1 calls to. */
export interface ConsoleConfig {
  port: number;
  host: string;
  billingUrl: string;
  aggregatorUrl: string;
  gatewayUrl: string;
  /** Longest wait for an upstream answer (ms); then 504. */
  upstreamTimeoutMs: number;
}

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {}

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === '' ? fallback : v;
}

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function loadConfig(env: Env = process.env): Config {
  const host = str(env, 'HOST', '127.0.0.1');
  return {
    env: str(env, 'NODE_ENV', 'development'),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
    kafka: {
      brokers: str(env, 'KAFKA_BROKERS', '127.0.0.1:9092')
        .split(',')
        .map((b) => b.trim())
        .filter(Boolean),
      clientId: str(env, 'KAFKA_CLIENT_ID', 'meterline'),
      eventsTopic: str(env, 'KAFKA_EVENTS_TOPIC', 'meterline.events'),
      deadLetterTopic: str(env, 'KAFKA_DEAD_LETTER_TOPIC', 'meterline.events.dead-letter'),
      eventsPartitions: int(env, 'KAFKA_EVENTS_PARTITIONS', 6, 1),
      ...kafkaReplication(env),
    },
    clickhouse: {
      url: str(env, 'CLICKHOUSE_URL', 'http://127.0.0.1:8123'),
      username: str(env, 'CLICKHOUSE_USER', 'default'),
      password: str(env, 'CLICKHOUSE_PASSWORD', ''),
      database: str(env, 'CLICKHOUSE_DATABASE', 'meterline'),
      allowNonUtcTimezone: allowNonUtc(env),
      ...clickhouseCluster(env),
    },
    redisUrl: str(env, 'REDIS_URL', 'redis://127.0.0.1:6380'),
    postgresUrl: str(env, 'DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/meterline'),
    gateway: {
      port: int(env, 'GATEWAY_PORT', 8080),
      host,
      bodyLimitBytes: int(env, 'GATEWAY_BODY_LIMIT_BYTES', 1024 * 1024, 1),
      maxBatchEvents: int(env, 'GATEWAY_MAX_BATCH_EVENTS', 1000, 1),
      maxFutureMs: int(env, 'GATEWAY_MAX_FUTURE_MS', DAY_MS),
      backfillWindowMs: int(env, 'GATEWAY_BACKFILL_WINDOW_MS', 35 * DAY_MS),
      dedupWindowMs: int(env, 'GATEWAY_DEDUP_WINDOW_MS', 35 * DAY_MS, 1000),
      maxInFlightEvents: int(env, 'GATEWAY_MAX_IN_FLIGHT_EVENTS', 50_000, 1),
      produceTimeoutMs: int(env, 'GATEWAY_PRODUCE_TIMEOUT_MS', 8_000, 100),
      dedupClaimTtlMs: int(env, 'GATEWAY_DEDUP_CLAIM_TTL_MS', 20_000, 1000),
    },
    aggregator: {
      port: int(env, 'AGGREGATOR_PORT', 8081),
      host,
      groupId: str(env, 'AGGREGATOR_GROUP_ID', 'meterline-aggregator'),
      windowSize: int(env, 'AGGREGATOR_WINDOW_SIZE', 5000, 1),
      dedupWindowMs: int(env, 'AGGREGATOR_DEDUP_WINDOW_MS', 35 * DAY_MS, 1000),
      metricPollMs: int(env, 'AGGREGATOR_METRIC_POLL_MS', 1000, 50),
      maxBytesPerPartition: int(env, 'AGGREGATOR_MAX_BYTES_PER_PARTITION', 1024 * 1024, 1024),
      fetchMinBytes: int(env, 'AGGREGATOR_FETCH_MIN_BYTES', 64 * 1024, 1),
      fetchLingerMs: int(env, 'AGGREGATOR_FETCH_LINGER_MS', 500, 10),
      maxBatchRecords: int(env, 'AGGREGATOR_MAX_BATCH_RECORDS', 5000, 1),
      stagingRetentionDays: int(env, 'AGGREGATOR_STAGING_RETENTION_DAYS', 7),
      maxRetryBackoffMs: int(env, 'AGGREGATOR_MAX_RETRY_BACKOFF_MS', 5000, 10),
      sessionTimeoutMs: int(env, 'AGGREGATOR_SESSION_TIMEOUT_MS', 30_000, 6000),
      inlineRetryMs: int(env, 'AGGREGATOR_INLINE_RETRY_MS', 1000, 0),
      lagIntervalMs: int(env, 'AGGREGATOR_LAG_INTERVAL_MS', 5000, 100),
      stallAfterMs: int(env, 'AGGREGATOR_STALL_AFTER_MS', 30_000, 500),
      batchBudgetMs: int(env, 'AGGREGATOR_BATCH_BUDGET_MS', 500, 10),
    },
    billing: {
      port: int(env, 'BILLING_PORT', 8082),
      host,
      adminSecret: str(env, 'ADMIN_SECRET', 'meterline-local-admin-secret'),
      usageMaxAgeMs: int(env, 'BILLING_USAGE_MAX_AGE_MS', 2_000, 0),
      usageReadStaleMs: int(env, 'BILLING_USAGE_READ_STALE_MS', 5_000, 0),
      // every metric is one more rollup per matching event and one more backfill after a change
      maxMetricsPerOrganization: int(env, 'BILLING_MAX_METRICS_PER_ORGANIZATION', 500, 1),
    },
    http: httpServerConfig(env),
    webhooks: webhooksConfig(env),
    console: {
      port: int(env, 'CONSOLE_PORT', 8083),
      host,
      billingUrl: str(env, 'CONSOLE_BILLING_URL', `http://127.0.0.1:${int(env, 'BILLING_PORT', 8082)}`),
      aggregatorUrl: str(env, 'CONSOLE_AGGREGATOR_URL', `http://127.0.0.1:${int(env, 'AGGREGATOR_PORT', 8081)}`),
      gatewayUrl: str(env, 'CONSOLE_GATEWAY_URL', `http://127.0.0.1:${int(env, 'GATEWAY_PORT', 8080)}`),
      upstreamTimeoutMs: int(env, 'CONSOLE_UPSTREAM_TIMEOUT_MS', 15_000, 100),
    },
  };
}

// --- HTTP server limits (request / headers timeouts) -------------------------------------------------
function httpServerConfig(env: Env): HttpServerConfig {
  const requestTimeoutMs = int(env, 'HTTP_REQUEST_TIMEOUT_MS', 10_000, 100);
  const headersTimeoutMs = int(env, 'HTTP_HEADERS_TIMEOUT_MS', Math.min(5_000, requestTimeoutMs), 100);
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(`HTTP_HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not exceed HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs})`);
  }
  return { requestTimeoutMs, headersTimeoutMs };
}

// --- Outbound webhooks (billing) ---------------------------------------------------------------------
// 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h six times: the last attempt ~2.8 days after the first (Svix-like)
const WEBHOOK_RETRY_SCHEDULE = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, ...Array(6).fill(36_000_000)].join(',');
function webhooksConfig(env: Env): WebhooksConfig {
  const schedule = str(env, 'WEBHOOK_RETRY_SCHEDULE_MS', WEBHOOK_RETRY_SCHEDULE)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map(Number);
  if (schedule.some((n) => !Number.isInteger(n) || n < 0))
    throw new ConfigError('WEBHOOK_RETRY_SCHEDULE_MS must be a comma-separated list of non-negative integers (ms)');
  return {
    intervalMs: int(env, 'WEBHOOK_WORKER_INTERVAL_MS', 500, 0),
    concurrency: int(env, 'WEBHOOK_CONCURRENCY', 32, 1),
    timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100),
    retryScheduleMs: schedule,
  };
}

// --- ClickHouse server time zone (packages/core/src/setup/timezone.ts) -------------------------------
function allowNonUtc(env: Env): boolean {
  const v = str(env, 'CLICKHOUSE_ALLOW_NON_UTC', 'false').toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new ConfigError(`CLICKHOUSE_ALLOW_NON_UTC must be true or false, got "${v}"`);
}

// --- Cluster mode (issue #13, infra/local/cluster/README.md) ----------------------------------------
function kafkaReplication(env: Env): { replicationFactor: number; minInsyncReplicas: number } {
  const replicationFactor = int(env, 'KAFKA_REPLICATION_FACTOR', 1, 1);
  const minInsyncReplicas = int(env, 'KAFKA_MIN_INSYNC_REPLICAS', 1, 1);
  // more in-sync copies than copies would refuse every acks=all write
  if (minInsyncReplicas > replicationFactor)
    throw new ConfigError(
      `KAFKA_MIN_INSYNC_REPLICAS (${minInsyncReplicas}) must not exceed KAFKA_REPLICATION_FACTOR (${replicationFactor})`,
    );
  return { replicationFactor, minInsyncReplicas };
}

function clickhouseCluster(env: Env): { cluster: string; replicationPath: string } {
  const cluster = str(env, 'CLICKHOUSE_CLUSTER', '');
  // the name goes into ON CLUSTER unquoted: the identifier rule of sqlIdentifier
  if (cluster !== '' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(cluster))
    throw new ConfigError(`CLICKHOUSE_CLUSTER must be an identifier ([A-Za-z_][A-Za-z0-9_]*), got "${cluster}"`);
  const replicationPath = str(env, 'CLICKHOUSE_REPLICATION_PATH', '/clickhouse/tables/{shard}');
  if (!/^\/[A-Za-z0-9_{}./-]*[A-Za-z0-9_{}]$/.test(replicationPath))
    throw new ConfigError(`CLICKHOUSE_REPLICATION_PATH must be an absolute path without a trailing slash, got "${replicationPath}"`);
  return { cluster, replicationPath };
}
