// Drops old days of the events_by_offset staging table (no TTL on ClickHouse 18.16). A day is dropped
// only when it is older than the retention and every offset window it holds rows of is at least one
// whole window behind the partition's newest stored offset: live recomputes only ever touch the
// newest windows, so a dropped day can never make a recompute see a window partially.
import { sqlNumber, sqlString, type ClickHouseClient, type Logger } from '@meterline/core';
import type { WindowSizes } from './window-sizes.ts';

export class StagingRetention {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ch: ClickHouseClient,
    private readonly logger: Logger,
    private readonly days: number,
    private readonly windows: WindowSizes,
  ) {}

  start(intervalMs = 3_600_000): void {
    if (this.days <= 0) return;
    const tick = () => {
      this.runOnce().catch((err) => this.logger.warn({ err }, 'staging retention failed'));
    };
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
    setTimeout(tick, 60_000).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async runOnce(): Promise<string[]> {
    const cutoff = Number(new Date(Date.now() - this.days * 86_400_000).toISOString().slice(0, 10).replaceAll('-', ''));
    const rs = await this.ch.query({
      query: `SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = 'events_by_offset' AND active AND toUInt32(partition) < ${sqlNumber(cutoff)}`,
      format: 'JSONEachRow',
    });
    const days = (await rs.json<{ partition: string }>()).map((r) => r.partition.replace(/'/g, ''));
    const dropped: string[] = [];
    // each topic's recorded window size (window-sizes.ts); a topic without one (0) always blocks
    const sizes = [...(await this.windows.all())];
    const w =
      sizes.length === 0
        ? 'toUInt64(0)'
        : `transform(kafka_topic, [${sizes.map(([t]) => sqlString(t)).join(', ')}], [${sizes.map(([, s]) => `toUInt64(${sqlNumber(s)})`).join(', ')}], toUInt64(0))`;
    for (const day of days) {
      if (!/^\d{8}$/.test(day)) continue;
      const check = await this.ch.query({
        query: `SELECT count() AS blocking FROM
                  (SELECT kafka_topic, kafka_partition, max(kafka_offset) AS day_max FROM events_by_offset WHERE toYYYYMMDD(ingested_at) = ${day} GROUP BY kafka_topic, kafka_partition) AS d
                  ANY LEFT JOIN
                  (SELECT kafka_topic, kafka_partition, max(kafka_offset) AS newest FROM events_by_offset GROUP BY kafka_topic, kafka_partition) AS n
                  USING (kafka_topic, kafka_partition)
                WHERE ${w} = 0 OR intDiv(day_max, greatest(${w}, toUInt64(1))) + 1 >= intDiv(newest, greatest(${w}, toUInt64(1)))`,
        format: 'JSONEachRow',
      });
      if (Number((await check.json<{ blocking: string }>())[0]?.blocking ?? 1) > 0) continue;
      await this.ch.command({ query: `ALTER TABLE events_by_offset DROP PARTITION ${day}` });
      dropped.push(day);
      this.logger.info({ day }, 'dropped staging day');
    }
    return dropped;
  }
}
