// The aggregator's retried INSERTs must reach the materialized view on a replicated cluster
// (services/aggregator/src/clickhouse-settings.ts). On the real replicated tables, the same raw block is
// inserted into `events` twice — as a retry after an uncertain first attempt would — once through a client
// with the aggregator's settings and once with ClickHouse's defaults, and `events_by_offset` (the view's
// target, what every rollup reads) is counted for each:
//   - aggregator settings: the second copy reaches events_by_offset too (2 × rows); with the default the
//     replicated `events` table drops the identical block and its view part with it (1 × rows).
// The control row shows the hazard is real on this cluster (if ClickHouse ever stops dropping
// identical blocks by default, the control says so instead of passing silently).
// Rows use their own organization and topic name, so no other count of the drill sees them.
// checkWriterReplicaGuard: an instance on the other replica is refused (core's writer-replica.ts).
import { randomBytes } from 'node:crypto';
import { AGGREGATOR_CLICKHOUSE_SETTINGS } from '@meterline/aggregator';
import {
  createClickHouse,
  createRedis,
  ensureWriterReplica,
  sqlString,
  WriterReplicaConflict,
  type ClickHouseConfig,
  type ClickHouseSettings,
} from '@meterline/core';

export interface DedupCheck {
  rows: number;
  /** events_by_offset rows after two identical inserts with the aggregator's settings (want 2 × rows) */
  aggregatorSettings: number;
  /** the same with ClickHouse's defaults (on a replicated table: 1 × rows) */
  defaults: number;
  violations: string[];
}

async function twice(cfg: ClickHouseConfig, settings: ClickHouseSettings | undefined, rows: number): Promise<number> {
  const ch = createClickHouse(cfg, settings ? { settings } : {});
  const org = `dedup_check_${randomBytes(6).toString('hex')}`;
  const topic = `${org}_topic`;
  try {
    const nowS = Math.floor(Date.now() / 1000);
    // every column fixed: the two inserts are byte-identical blocks
    const values = Array.from({ length: rows }, (_, i) => ({
      organization_id: org,
      customer_id: 'c',
      event_name: 'dedup_check',
      idempotency_id: `id_${i}`,
      time_created: nowS,
      time_created_ms: nowS * 1000,
      received_at: nowS,
      received_at_ms: nowS * 1000,
      ingested_at: nowS,
      properties: '{}',
      source: 'dedup_check',
      kafka_topic: topic,
      kafka_partition: 0,
      kafka_offset: i,
    }));
    for (let attempt = 0; attempt < 2; attempt++) await ch.insert({ table: 'events', values, format: 'JSONEachRow' });
    const rs = await ch.query({
      query: `SELECT count() AS c FROM events_by_offset WHERE kafka_topic = ${sqlString(topic)}`,
      format: 'JSONEachRow',
    });
    return Number((await rs.json<{ c: string }>())[0]!.c);
  } finally {
    await ch.close();
  }
}

/** Runs on the writer replica of a replicated cluster (it proves nothing on one plain server). */
export async function checkRetriedInsertsReachTheView(cfg: ClickHouseConfig, rows = 10): Promise<DedupCheck> {
  const aggregatorSettings = await twice(cfg, AGGREGATOR_CLICKHOUSE_SETTINGS, rows);
  const defaults = await twice(cfg, undefined, rows);
  const violations: string[] = [];
  if (aggregatorSettings !== 2 * rows)
    violations.push(
      `dedup_check: a retried raw INSERT with the aggregator's settings left ${aggregatorSettings} rows in events_by_offset, want ${2 * rows}`,
    );
  if (defaults !== rows)
    violations.push(
      `dedup_check: control: with ClickHouse's defaults the replicated events table kept ${defaults} view rows for a block inserted twice, expected ${rows} (block dedup): re-check services/aggregator/src/clickhouse-settings.ts`,
    );
  return { rows, aggregatorSettings, defaults, violations };
}

/**
 * The one-writer-replica guard (core's writer-replica.ts) on the real cluster: once the aggregators have
 * recorded replica 1, an instance pointed at replica 2 is refused; replica 1 is accepted.
 */
export async function checkWriterReplicaGuard(cfg: ClickHouseConfig, urls: readonly string[], redisUrl: string): Promise<string[]> {
  const redis = createRedis(redisUrl, { name: 'cluster-drill-guard' });
  const [writer, other] = urls.map((url) => createClickHouse({ ...cfg, url }));
  const violations: string[] = [];
  try {
    const ok = await ensureWriterReplica(writer!, redis, cfg.database, 'billing');
    if (ok === null) violations.push('writer_replica: replica 1 reports no replicated tables');
    const refused = await ensureWriterReplica(other!, redis, cfg.database, 'billing').then(
      (r) => `accepted as ${r}`,
      (err: unknown) => (err instanceof WriterReplicaConflict ? null : `failed otherwise: ${String(err)}`),
    );
    if (refused !== null) violations.push(`writer_replica: an instance on replica 2 was not refused (${refused})`);
  } finally {
    redis.disconnect();
    await Promise.all([writer, other].map((c) => c?.close()));
  }
  return violations;
}
