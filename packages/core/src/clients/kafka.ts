import { Kafka, logLevel, type Admin, type KafkaConfig as KafkaJsConfig } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConfig } from '../config.ts';

export function createKafka(cfg: KafkaConfig, logger?: Logger, overrides: Partial<KafkaJsConfig> = {}): Kafka {
  return new Kafka({
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 100, retries: 5, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) => {
      if (!logger) return;
      const { message, ...extra } = log;
      const fn = level <= logLevel.ERROR ? 'error' : level === logLevel.WARN ? 'warn' : 'debug';
      logger[fn]({ kafkajs: namespace, ...extra }, message);
    },
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
      replicationFactor: 1,
      configEntries: [{ name: 'min.insync.replicas', value: '1' }],
    })),
  });
}
