import { Kafka, logLevel, type Admin, type KafkaConfig as KafkaJsConfig } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConfig } from '../config.ts';

/** kafkajs' warning that the idempotent producer's retries are bounded (it wants Number.MAX_SAFE_INTEGER). */
export const IDEMPOTENT_RETRY_WARNING = 'Limiting retries for the idempotent producer';

export interface KafkaLogOptions {
  /** Drop kafkajs' idempotent-producer retry warning: for producers that bound retries on purpose
   *  (and replace the producer after any failure, like the gateway's). */
  dropIdempotentRetryWarning?: boolean;
  /** Log kafkajs' errors as warnings: for callers that report the outcome (503, metrics) themselves. */
  errorsAsWarnings?: boolean;
}

/** The one kafkajs → pino bridge (no logger: kafkajs logs nothing). */
export function kafkaLogCreator(logger?: Logger, opts: KafkaLogOptions = {}): NonNullable<KafkaJsConfig['logCreator']> {
  return () =>
    ({ namespace, level, log }) => {
      if (!logger) return;
      const { message, ...extra } = log;
      if (opts.dropIdempotentRetryWarning && message.startsWith(IDEMPOTENT_RETRY_WARNING)) return;
      const fn = level <= logLevel.ERROR ? (opts.errorsAsWarnings ? 'warn' : 'error') : level === logLevel.WARN ? 'warn' : 'debug';
      logger[fn]({ kafkajs: namespace, ...extra }, message);
    };
}

export function createKafka(cfg: KafkaConfig, logger?: Logger, overrides: Partial<KafkaJsConfig> = {}, log: KafkaLogOptions = {}): Kafka {
  return new Kafka({
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 100, retries: 5, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger, log),
    ...overrides,
  });
}

/** Creates the events and dead-letter topics if they do not exist (idempotent). */
export async function ensureTopics(admin: Admin, cfg: KafkaConfig): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const wanted = [
    { topic: cfg.eventsTopic, numPartitions: cfg.eventsPartitions },
    { topic: cfg.deadLetterTopic, numPartitions: 1 },
  ].filter((t) => !existing.has(t.topic));
  if (wanted.length === 0) return;
  await admin.createTopics({
    waitForLeaders: true,
    topics: wanted.map((t) => ({
      ...t,
      // 1/1 on the single-node stack; 3/2 on a cluster (KAFKA_REPLICATION_FACTOR, KAFKA_MIN_INSYNC_REPLICAS)
      replicationFactor: cfg.replicationFactor ?? 1,
      configEntries: [{ name: 'min.insync.replicas', value: String(cfg.minInsyncReplicas ?? 1) }],
    })),
  });
}
