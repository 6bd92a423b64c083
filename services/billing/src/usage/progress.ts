// Has the aggregator counted everything acknowledged up to some moment? Invoices are finalized only
// when it has (invoices/lifecycle.ts), so a stalled or lagging aggregator delays an invoice instead of
// under-billing it. The moment is captured as the events topic's end offsets (every record the gateway
// or billing had acknowledged by then lies below them); "counted" is the aggregator's watermarks
// (redisKeys.aggregatorWatermarks, published after each commit: services/aggregator/src/watermarks.ts)
// having reached them on every partition.
import { createKafka, redisKeys, type KafkaConfig, type Logger, type Redis } from '@meterline/core';
import type { Admin } from 'kafkajs';

export interface UsageProgress {
  /** The events topic's end offsets now (partition -> offset of the next record). */
  endOffsets(): Promise<Record<string, string>>;
  /** Whether every record below `offsets` is in the aggregates (a partition with no watermark yet counts as 0). */
  aggregatedUpTo(offsets: Record<string, string>): Promise<boolean>;
  stop(): Promise<void>;
}

export function kafkaUsageProgress(cfg: KafkaConfig, redis: Redis, logger?: Logger): UsageProgress {
  let admin: Promise<Admin> | null = null;
  const connect = () =>
    (admin ??= (async () => {
      const a = createKafka({ ...cfg, clientId: `${cfg.clientId}-billing-progress` }, logger).admin();
      await a.connect();
      return a;
    })().catch((err) => {
      admin = null;
      throw err;
    }));
  return {
    async endOffsets() {
      const a = await connect();
      const parts = await a.fetchTopicOffsets(cfg.eventsTopic);
      return Object.fromEntries(parts.map((p) => [String(p.partition), p.high]));
    },
    async aggregatedUpTo(offsets) {
      const w = await redis.hgetall(redisKeys.aggregatorWatermarks(cfg.eventsTopic));
      return Object.entries(offsets).every(([p, o]) => BigInt(o) === 0n || (/^\d+$/.test(w[p] ?? '') && BigInt(w[p]!) >= BigInt(o)));
    },
    async stop() {
      if (admin) await admin.then((a) => a.disconnect()).catch(() => undefined);
    },
  };
}
