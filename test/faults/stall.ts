// The aggregator-stall fault: ClickHouse refuses every raw INSERT for longer than the stall threshold
// (`DETACH TABLE events_by_offset` on the drill's private ClickHouse — the materialized view's target
// is gone, so each INSERT into `events` fails and the consumer cannot commit), while the gateway keeps
// acknowledging. The aggregator must say so honestly (services/aggregator/README.md "Honest health"):
// /readyz 503 naming the stalled partitions within AGGREGATOR_STALL_AFTER_MS plus one lag refresh,
// then, after `ATTACH TABLE`, everything acknowledged meanwhile is counted exactly once.
import { sqlIdentifier, type ClickHouseClient, type Config } from '@meterline/core';
import { sleep } from '../../bench/lib/stats.ts';

export interface StallResult {
  /** ms from the detach to the first /readyz 503 naming a stalled partition; null if never seen */
  notReadyAfterMs: number | null;
  /** the consumer check's text of that answer */
  readyzConsumer: string | null;
  /** how long the table stayed detached (ms) */
  blockedMs: number;
}

async function readyz(url: string): Promise<{ status: number; consumer: string | null }> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
    const body = (await res.json().catch(() => null)) as { checks?: Record<string, string> } | null;
    return { status: res.status, consumer: body?.checks?.consumer ?? null };
  } catch {
    return { status: 0, consumer: null };
  }
}

/**
 * Blocks the aggregator's writes until its /readyz says it is stalled (or `maxBlockMs` passes), keeps
 * them blocked for at least `minBlockMs`, then unblocks. Returns when the table is attached again.
 */
export async function stallAggregator(
  ch: ClickHouseClient,
  config: Config,
  aggregatorUrl: string,
  opts: { minBlockMs: number; maxBlockMs: number },
): Promise<StallResult> {
  const table = `${sqlIdentifier(config.clickhouse.database)}.events_by_offset`;
  await ch.command({ query: `DETACH TABLE ${table}` });
  const t0 = Date.now();
  let notReadyAfterMs: number | null = null;
  let readyzConsumer: string | null = null;
  let probeError: unknown = null;
  try {
    while (Date.now() - t0 < opts.maxBlockMs) {
      const r = await readyz(aggregatorUrl);
      if (notReadyAfterMs === null && r.status === 503 && r.consumer?.includes('stalled')) {
        notReadyAfterMs = Date.now() - t0;
        readyzConsumer = r.consumer;
      }
      if (notReadyAfterMs !== null && Date.now() - t0 >= opts.minBlockMs) break;
      await sleep(200);
    }
  } catch (err) {
    probeError = err;
  }
  // always unblock, even when the probe failed: the rest of the drill needs the table
  await attach(ch, table);
  if (probeError) throw probeError;
  return { notReadyAfterMs, readyzConsumer, blockedMs: Date.now() - t0 };
}

async function attach(ch: ClickHouseClient, table: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await ch.command({ query: `ATTACH TABLE ${table}` });
      return;
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(500);
    }
  }
}

/** Waits until the aggregator answers /readyz 200 again; returns the ms it took (null on timeout). */
export async function waitReady(aggregatorUrl: string, timeoutMs: number): Promise<number | null> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if ((await readyz(aggregatorUrl)).status === 200) return Date.now() - t0;
    await sleep(200);
  }
  return null;
}
