// The billing kill -9 fault of the pipeline drill: consuming checks (`POST /v1/check {send_event: true}`,
// a hard limit per customer) streamed round-robin to two billing instances while one of them is
// SIGKILLed (alternating) and restarted. Billing is a black box over HTTP; its events go through the same
// topic and aggregator as the gateway's. Reuses the entitlement drill's check streamer and its outcome
// rules (a refused connection executed nothing, a 503 consumed nothing, a cut-off request is unknown).
//
// Verdict per customer, after ClickHouse settled: lost = granted units missing from the events, doubled =
// events beyond granted + indeterminate units (or an idempotency id stored twice), over-limit grants =
// granted units beyond the limit (answers) or counted usage beyond it.
import { type ClickHouseClient, sqlIdentifier, sqlString } from '@meterline/core';
import type { ServiceProcess } from '../../bench/lib/proc.ts';
import { sleep } from '../../bench/lib/stats.ts';
import { waitFor } from '../support/wait.ts';
import { Api, type CheckRecord, CheckStreamer, EVENT, FEATURE, METRIC, PLAN } from './entitlement-drill.ts';

export interface BillingCounts {
  checks: number;
  grantedChecks: number;
  sentUnits: number;
  grantedUnits: number;
  indeterminateUnits: number;
  /** checks answered something other than 200/503/refused/cut-off (a 500, a hang, an unparsable 200) */
  badAnswers: number;
  overLimitGrants: number;
  limitReached: boolean;
}

export class BillingCheckLoad {
  readonly customers: string[];
  streamer: CheckStreamer | null = null;
  private api: Api | null = null;
  private kills = 0;

  constructor(
    private readonly billing: ServiceProcess[],
    private readonly apiKey: string,
    runId: string,
    private readonly o: { limit: number; checksPerSec: number; customers: number },
    /** the drill's set of services it took down itself (not "exited on their own") */
    private readonly held: Set<ServiceProcess>,
  ) {
    this.customers = Array.from({ length: o.customers }, (_, i) => `billing_kill9_${runId}_${i}`);
  }

  /** Catalog (metric, metered feature, plan with a hard limit), customers and subscriptions, through billing's API. */
  async setup(): Promise<void> {
    const api = new Api(this.billing[0]!.url, this.apiKey);
    this.api = api;
    await api.post('/v1/metrics', { metric_id: METRIC, event_name: EVENT, aggregation: 'count' });
    await api.post('/v1/features', { feature_id: FEATURE, type: 'metered', metric_id: METRIC });
    await api.post('/v1/plans', {
      plan_id: PLAN,
      name: 'Drill plan',
      interval: 'month',
      entitlements: [{ feature_id: FEATURE, limit: this.o.limit, limit_type: 'hard', reset_period: 'billing_period' }],
    });
    for (const c of this.customers) {
      await api.post('/v1/customers', { customer_id: c });
      await api.post('/v1/subscriptions', { customer_id: c, plan_id: PLAN });
    }
    // every instance sees the catalog (caches are invalidated over Redis pub/sub)
    for (const b of this.billing) {
      const probe = new Api(b.url, this.apiKey);
      try {
        await waitFor(
          () => probe.call('POST', '/v1/check', { customer_id: this.customers[0], feature_id: FEATURE }),
          (r) => r.status === 200 && r.json.allowed === true,
          { timeoutMs: 30_000, what: `${b.url} to grant a non-consuming check` },
        );
      } finally {
        probe.close();
      }
    }
  }

  start(): void {
    this.streamer = new CheckStreamer(
      this.billing.map((b) => b.url),
      this.apiKey,
      this.customers,
      { checksPerSec: this.o.checksPerSec, maxOutstanding: 128, requestTimeoutMs: 15_000 },
    );
    this.streamer.activeCustomers = this.customers.length;
    this.streamer.start();
  }

  /** kill -9 of the next instance (alternating) while it has a check in flight, then restart it. */
  async inject(): Promise<{ note: string; clearedAt: number }> {
    const s = this.streamer!;
    const i = this.kills++ % this.billing.length;
    const inFlight = await s.waitForInFlight(i, 3_000);
    s.down.add(i);
    this.held.add(this.billing[i]!);
    await this.billing[i]!.kill9();
    await sleep(500);
    await this.billing[i]!.start();
    this.held.delete(this.billing[i]!);
    s.down.delete(i);
    const since = Date.now();
    // cleared: the restarted instance answers a check again
    await waitFor(
      async () => s.lastOkAt[i]!,
      (t) => t > since,
      { timeoutMs: 60_000, intervalMs: 50, what: `billing-${i + 1} to answer a check after its restart` },
    );
    return { note: `billing-${i + 1}: ${inFlight} checks in flight at the kill`, clearedAt: Date.now() };
  }

  /** Granted units answered so far (the freshness probe: all of them must become visible in ClickHouse). */
  grantedUnitsSoFar(): number {
    return this.streamer!.records.filter((r) => r.outcome === 'granted').reduce((a, r) => a + r.units, 0);
  }

  /** Keeps streaming until every customer was denied at its limit (so over-limit grants means something). */
  async finish(exhaustTimeoutMs: number): Promise<string | null> {
    const s = this.streamer!;
    let note: string | null = null;
    try {
      await waitFor(
        async () => s.exhaustedAt.filter((t) => t !== null).length,
        (n) => n === this.customers.length,
        { timeoutMs: exhaustTimeoutMs, intervalMs: 250, what: 'every billing customer to reach its limit' },
      );
    } catch (err) {
      note = (err as Error).message;
    }
    await s.stop();
    this.api?.close();
    return note;
  }

  counts(countedPerCustomer: Map<string, number>): BillingCounts {
    const recs = this.streamer?.records ?? [];
    const units = (f: (r: CheckRecord) => boolean) => recs.filter(f).reduce((a, r) => a + r.units, 0);
    let overLimitGrants = 0;
    for (const [ci, c] of this.customers.entries()) {
      const granted = units((r) => r.customer === ci && r.outcome === 'granted');
      overLimitGrants += Math.max(0, granted - this.o.limit, (countedPerCustomer.get(c) ?? 0) - this.o.limit);
    }
    return {
      checks: recs.length,
      grantedChecks: recs.filter((r) => r.outcome === 'granted').length,
      sentUnits: units(() => true),
      grantedUnits: units((r) => r.outcome === 'granted'),
      indeterminateUnits: units((r) => r.outcome === 'indeterminate'),
      badAnswers: recs.filter((r) => r.outcome === 'server_error' || r.outcome === 'unexpected' || r.outcome === 'timeout').length,
      overLimitGrants,
      limitReached: this.streamer?.exhaustedAt.every((t) => t !== null) ?? false,
    };
  }
}

/** Raw events (FINAL) per customer of the check metric's event. */
export async function checkEventsPerCustomer(
  ch: ClickHouseClient,
  db: string,
  organizationId: string,
  customers: readonly string[],
): Promise<Map<string, number>> {
  const rs = await ch.query({
    query: `SELECT customer_id, count() AS c FROM ${sqlIdentifier(db)}.events FINAL
            WHERE organization_id = ${sqlString(organizationId)} AND event_name = ${sqlString(EVENT)}
              AND customer_id IN (${customers.map(sqlString).join(',')})
            GROUP BY customer_id`,
    format: 'JSONEachRow',
  });
  const m = new Map<string, number>();
  for (const r of await rs.json<{ customer_id: string; c: string | number }>()) m.set(r.customer_id, Number(r.c));
  return m;
}
