// Recomputes metric rollups from the raw events table (services/aggregator/README.md "Exact quantities"):
// rows written before the exact decimal columns (ClickHouse migration 0005) hold decimals derived from
// their Float64 sums; this rewrites them from the events' exact decimal text. Idempotent, safe while the
// aggregator runs (a live row with more events wins under FINAL). Usage:
//   node --import tsx services/aggregator/src/recompute.ts [organization_id ...]
// (no argument: every active metric of every organization). Each topic's rows use its recorded window size.
import { createClickHouse, createPostgres, createRedis, loadConfig, loadMetricDefinitions } from '@meterline/core';
import { AGGREGATOR_CLICKHOUSE_SETTINGS } from './clickhouse-settings.ts';
import { recomputeFromEvents } from './backfill.ts';
import { WindowSizes } from './window-sizes.ts';

const config = loadConfig();
const orgs = new Set(process.argv.slice(2));
const pool = createPostgres(config.postgresUrl, { max: 1 });
const ch = createClickHouse(config.clickhouse, { settings: AGGREGATOR_CLICKHOUSE_SETTINGS });
const redis = createRedis(config.redisUrl, { name: 'meterline-recompute' });
// each topic's recorded window size (window-sizes.ts); AGGREGATOR_WINDOW_SIZE only for a topic without one
const windows = new WindowSizes(ch, redis, config.aggregator.windowSize);
try {
  const metrics = (await loadMetricDefinitions(pool, null, {})).filter(
    (m) => !m.archivedAt && (orgs.size === 0 || orgs.has(m.organizationId)),
  );
  let done = 0;
  for (const m of metrics) {
    const started = Date.now();
    await recomputeFromEvents(ch, m, windows);
    done++;
    console.log(`${m.organizationId}/${m.metricId} v${m.version}: recomputed in ${Date.now() - started} ms (${done}/${metrics.length})`);
  }
  console.log(`recomputed ${done} metric versions`);
} finally {
  await ch.close();
  await pool.end();
  redis.disconnect();
}
