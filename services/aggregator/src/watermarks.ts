// Usage watermarks: after a chunk is committed, the aggregator publishes the partition's committed
// offset (last counted record + 1) to one Redis hash per topic, `redisKeys.aggregatorWatermarks(topic)`,
// field = partition, value = offset. Meaning, the one billing relies on (services/billing/README.md,
// "Usage state"): every record of that partition below the offset is in ClickHouse's aggregates
// (stored and rolled up) or dead-lettered. Steps 5-7 of the chunk pipeline make that true before the
// commit, so publishing after the commit can only lag the truth, never run ahead of it.
//   - Monotonic: a Lua max, so an older owner's late publish (rebalance, replay) never moves it back.
//   - Best effort: a failed publish is logged and counted, never retried inline and never blocks the
//     partition. A watermark that lags only makes billing count its own recent grants twice
//     (conservative: it may deny near a limit, it never grants past one).
import { redisKeys, type Logger, type Redis } from '@meterline/core';
import type { Counter } from 'prom-client';

const ADVANCE = `
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end
return 0
`;

export class WatermarkPublisher {
  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
    private readonly failures?: Counter<string>,
  ) {
    redis.defineCommand('mlAdvanceWatermark', { numberOfKeys: 1, lua: ADVANCE });
  }

  /** Publishes "partition committed up to `nextOffset`" without waiting (commands keep their order per connection). */
  publish(topic: string, partition: number, nextOffset: string): void {
    const run = (this.redis as unknown as Record<string, (...a: string[]) => Promise<number>>)['mlAdvanceWatermark']!;
    run.call(this.redis, redisKeys.aggregatorWatermarks(topic), String(partition), nextOffset).catch((err: Error) => {
      this.failures?.inc();
      this.logger.warn({ err: err.message, topic, partition }, 'publishing the usage watermark failed');
    });
  }
}
