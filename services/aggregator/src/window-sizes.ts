// The offset window size W of each events topic is a durable property of the deployment
// (services/aggregator/README.md "One window size per topic"). metric_usage rows are keyed by
// window_id = intDiv(offset, W): rows of two window sizes over the same topic cover overlapping offset
// ranges under DIFFERENT keys, so ReplacingMergeTree keeps both and every reader adds them up (a
// double count). So W is decided once per topic — atomically in Redis (SET NX), recorded durably in
// ClickHouse next to the rows it describes (aggregator_window_sizes) — and every writer of rollup
// rows for a topic (live rollups, backfills, the recompute command, staging retention) uses the
// recorded value. An aggregator configured with another AGGREGATOR_WINDOW_SIZE refuses to start.
import { redisKeys, sqlString, toClickHouseEpochSeconds, type ClickHouseClient, type Redis } from '@meterline/core';

export const WINDOW_SIZES_TABLE = 'aggregator_window_sizes';

/** Two different window sizes for one topic (configured vs recorded, or recorded twice). */
export class WindowSizeConflict extends Error {
  override readonly name = 'WindowSizeConflict';
}

export class WindowSizes {
  private readonly decided = new Map<string, number>();

  /** `proposed`: the window size recorded for a topic that has none yet (the configured one). */
  constructor(
    private readonly ch: ClickHouseClient,
    private readonly redis: Redis,
    readonly proposed: number,
  ) {}

  private async recorded(topic: string): Promise<number[]> {
    const rs = await this.ch.query({
      query: `SELECT DISTINCT window_size AS w FROM ${WINDOW_SIZES_TABLE} WHERE kafka_topic = ${sqlString(topic)}`,
      format: 'JSONEachRow',
    });
    return (await rs.json<{ w: string | number }>()).map((r) => Number(r.w)).sort((a, b) => a - b);
  }

  /**
   * The window size of `topic`: the recorded one, or — none recorded yet — the first one proposed by
   * any instance (Redis SET NX decides among concurrent first starts), then recorded in ClickHouse.
   * Throws WindowSizeConflict when ClickHouse and Redis disagree or ClickHouse holds two sizes.
   */
  async forTopic(topic: string): Promise<number> {
    const cached = this.decided.get(topic);
    if (cached !== undefined) return cached;
    const key = redisKeys.aggregatorWindowSize(topic);
    const inClickHouse = await this.recorded(topic);
    if (inClickHouse.length > 1)
      throw new WindowSizeConflict(
        `topic ${JSON.stringify(topic)} has rollups recorded with window sizes ${inClickHouse.join(' and ')} in ${WINDOW_SIZES_TABLE}: its metric_usage rows may double count; recompute them with one size`,
      );
    // ClickHouse is authoritative when it has a record (it lives with the rows); Redis only decides the
    // first one. Restoring it into Redis (NX) keeps a flushed Redis from letting another size win.
    const candidate = inClickHouse[0] ?? this.proposed;
    await this.redis.set(key, String(candidate), 'NX');
    const inRedis = Number(await this.redis.get(key));
    if (inClickHouse[0] !== undefined) {
      if (inRedis !== inClickHouse[0])
        throw new WindowSizeConflict(
          `topic ${JSON.stringify(topic)}: window size ${inClickHouse[0]} recorded in ClickHouse (${WINDOW_SIZES_TABLE}) but ${inRedis} in Redis (${key})`,
        );
    } else {
      if (!Number.isSafeInteger(inRedis) || inRedis < 1) throw new WindowSizeConflict(`invalid window size in Redis ${key}: ${inRedis}`);
      await this.ch.insert({
        table: WINDOW_SIZES_TABLE,
        values: [{ kafka_topic: topic, window_size: inRedis, recorded_at: toClickHouseEpochSeconds(Date.now()) }],
        format: 'JSONEachRow',
      });
    }
    this.decided.set(topic, inRedis);
    return inRedis;
  }

  /** Every recorded topic and its window size (topics with two sizes are left out: never safe). */
  async all(): Promise<Map<string, number>> {
    const rs = await this.ch.query({
      query: `SELECT kafka_topic, groupUniqArray(window_size) AS ws FROM ${WINDOW_SIZES_TABLE} GROUP BY kafka_topic`,
      format: 'JSONEachRow',
    });
    const out = new Map<string, number>();
    for (const r of await rs.json<{ kafka_topic: string; ws: (string | number)[] }>())
      if (r.ws.length === 1) out.set(r.kafka_topic, Number(r.ws[0]));
    return out;
  }
}

/** The refusal of an instance whose AGGREGATOR_WINDOW_SIZE differs from its topic's recorded size. */
export function configuredSizeConflict(topic: string, configured: number, recorded: number): WindowSizeConflict {
  return new WindowSizeConflict(
    `AGGREGATOR_WINDOW_SIZE=${configured} but topic ${JSON.stringify(topic)} is aggregated with window size ${recorded} ` +
      `(recorded in ClickHouse ${WINDOW_SIZES_TABLE} and Redis ${redisKeys.aggregatorWindowSize(topic)}): rollup rows of two ` +
      `window sizes would double count. Start with AGGREGATOR_WINDOW_SIZE=${recorded} (services/aggregator/README.md "One window size per topic").`,
  );
}
