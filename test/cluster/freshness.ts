// Freshness probes: one probe customer per Kafka partition (picked with the gateway's own partitioner,
// so every partition — and hence every aggregator's share — is watched), each sent one event every
// `intervalMs` through the gateways (round-robin, failing over like the streamer). A poller asks every
// ClickHouse replica which probe ids it has; freshness of a probe = first seen in any replica − gateway
// acknowledgement. After a fault is repaired, "fresh again" = every partition has a probe acknowledged
// after the repair that is visible, and the drill reports how long after the repair that was.
import { Partitioners } from 'kafkajs';
import { sqlIdentifier, sqlString, type ClickHouseClient } from '@meterline/core';
import { GatewayClient, batchBody } from '../../bench/lib/load.ts';
import { sleep } from '../../bench/lib/stats.ts';

export interface Probe {
  id: string;
  customer: string;
  ackAt: number;
  /** per replica: first poll that saw it */
  seenAt: (number | null)[];
}

/** Customer ids that the gateway's partitioner (key `${org}/${customer}`) spreads one per partition. */
export function probeCustomers(organizationId: string, partitions: number, prefix: string): string[] {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: 0,
    replicas: [0],
    isr: [0],
    offlineReplicas: [],
  }));
  const out: (string | null)[] = new Array(partitions).fill(null);
  for (let i = 0; out.includes(null) && i < 10_000; i++) {
    const c = `${prefix}${i}`;
    const p = partitioner({ topic: 't', partitionMetadata, message: { key: `${organizationId}/${c}`, value: null } });
    if (out[p] === null) out[p] = c;
  }
  if (out.includes(null)) throw new Error('could not find a probe customer for every partition');
  return out as string[];
}

export class FreshnessProbe {
  readonly probes: Probe[] = [];
  readonly unacked: string[] = [];
  sent = 0;
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly clients: GatewayClient[];
  private seq = 0;
  private rr = 0;

  constructor(
    gatewayUrls: readonly string[],
    apiKey: string,
    readonly customers: readonly string[],
    private readonly o: {
      runId: string;
      eventName: string;
      organizationId: string;
      database: string;
      replicas: readonly ClickHouseClient[];
      intervalMs: number;
    },
  ) {
    this.clients = gatewayUrls.map((u) => new GatewayClient(u, apiKey, customers.length * 2));
  }

  start(): void {
    this.loops = this.customers.map(async (customer, ci) => {
      await sleep((this.o.intervalMs / this.customers.length) * ci);
      while (!this.stopped) {
        const t0 = Date.now();
        await this.sendOne(customer);
        const wait = this.o.intervalMs - (Date.now() - t0);
        if (wait > 0) await sleep(wait);
      }
    });
    // one poller per replica: a replica that hangs (starting, overloaded) must not delay the other's view
    for (let r = 0; r < this.o.replicas.length; r++) this.loops.push(this.pollLoop(r));
  }

  private async sendOne(customer: string): Promise<void> {
    const id = `${this.o.runId}-probe-${this.seq++}`;
    const body = batchBody([
      {
        event_name: this.o.eventName,
        customer_id: customer,
        idempotency_id: id,
        time_created: new Date().toISOString(),
        properties: { probe: true },
      },
    ]);
    this.sent++;
    const deadline = Date.now() + 120_000;
    let g = this.rr++ % this.clients.length;
    for (let attempt = 0; ; attempt++) {
      const r = await this.clients[g]!.post(body, 10_000);
      if (r.status === 200 || r.status === 202) {
        this.probes.push({ id, customer, ackAt: Date.now(), seenAt: this.o.replicas.map(() => null) });
        return;
      }
      if (Date.now() > deadline || (r.status >= 400 && r.status < 500 && r.status !== 429)) {
        this.unacked.push(id);
        return;
      }
      g = (g + 1) % this.clients.length;
      if (attempt % this.clients.length === this.clients.length - 1) await sleep(200);
    }
  }

  private async pollLoop(r: number): Promise<void> {
    while (!this.stopped) {
      await this.pollReplica(r);
      await sleep(250);
    }
  }

  /** One round on every replica. */
  async pollOnce(): Promise<void> {
    await Promise.all(this.o.replicas.map((_, r) => this.pollReplica(r)));
  }

  /** Asks replica `r` which of the probes not yet seen there it now has. */
  private async pollReplica(r: number): Promise<void> {
    const ch = this.o.replicas[r]!;
    const pending = this.probes.filter((p) => p.seenAt[r] === null);
    if (!pending.length) return;
    const now = Date.now();
    try {
      const rs = await ch.query({
        query: `SELECT DISTINCT idempotency_id FROM ${sqlIdentifier(this.o.database)}.events
                WHERE organization_id = ${sqlString(this.o.organizationId)}
                  AND customer_id IN (${this.customers.map(sqlString).join(',')})
                  AND idempotency_id IN (${pending.map((p) => sqlString(p.id)).join(',')})`,
        format: 'JSONEachRow',
        clickhouse_settings: { max_execution_time: 5 },
        abort_signal: AbortSignal.timeout(5_000),
      });
      const seen = new Set((await rs.json<{ idempotency_id: string }>()).map((x) => x.idempotency_id));
      for (const p of pending) if (seen.has(p.id)) p.seenAt[r] = now;
    } catch {
      /* that replica is down or busy: the other one may answer */
    }
  }

  /** Visible in any replica. */
  static visibleAt(p: Probe): number | null {
    const ts = p.seenAt.filter((t): t is number => t !== null);
    return ts.length ? Math.min(...ts) : null;
  }

  /**
   * After a repair at `since`: when every partition's probe customer had a probe acknowledged after
   * `since` that is visible (null if not yet), and the freshness of those probes.
   */
  recovery(since: number): { freshAt: number | null; worstFreshnessMs: number | null } {
    let freshAt = 0;
    let worst = 0;
    for (const c of this.customers) {
      const p = this.probes.find((x) => x.customer === c && x.ackAt >= since && FreshnessProbe.visibleAt(x) !== null);
      if (!p) return { freshAt: null, worstFreshnessMs: null };
      const v = FreshnessProbe.visibleAt(p)!;
      freshAt = Math.max(freshAt, v);
      worst = Math.max(worst, v - p.ackAt);
    }
    return { freshAt, worstFreshnessMs: worst };
  }

  /** Largest (visible − acknowledged) of probes acknowledged in [from, to); unseen ones count until `now`. */
  maxStalenessMs(from: number, to: number, now = Date.now()): number | null {
    let worst: number | null = null;
    for (const p of this.probes) {
      if (p.ackAt < from || p.ackAt >= to) continue;
      const v = FreshnessProbe.visibleAt(p) ?? now;
      worst = Math.max(worst ?? 0, v - p.ackAt);
    }
    return worst;
  }

  /** Freshness percentiles of probes acknowledged in [from, to) that are visible. */
  freshnessSamples(from: number, to: number): number[] {
    const out: number[] = [];
    for (const p of this.probes) {
      if (p.ackAt < from || p.ackAt >= to) continue;
      const v = FreshnessProbe.visibleAt(p);
      if (v !== null) out.push(v - p.ackAt);
    }
    return out;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    for (const c of this.clients) c.close();
  }
}
