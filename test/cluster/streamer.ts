// The cluster drill's ingest client: several concurrent workers post batches with known ids round-robin
// over the gateways (the clients' own list, no proxy: one process fewer on a 2-core machine, and it is
// what the SDK's users can do too). A batch that fails (connection refused/reset, timeout, 5xx, 429) is
// posted again with the SAME body — the same idempotency ids — to the NEXT gateway, until acknowledged
// or the retry deadline passes. So a gateway killed mid-request is retried elsewhere, and only the
// pipeline's deduplication (gateway Redis claims, aggregator claims) keeps it from being counted twice.
//
// The stream is cut into segments (one per drill step): each batch is drawn from the segment current
// when it was created, with that segment's own customers, so every step gets its own sent / acknowledged
// / counted row like `npm run test:faults`, while the stream itself never pauses between steps.
import { type EventSource, GatewayClient, batchBody, type PostResult } from '../../bench/lib/load.ts';
import { sleep } from '../../bench/lib/stats.ts';

export class Segment {
  readonly acked: string[] = [];
  readonly unacked: string[] = [];
  sent = 0;
  retries = 0;
  retriedEvents = 0;
  /** batches acknowledged by a different gateway than the one first tried */
  failovers = 0;
  constructor(
    readonly label: string,
    readonly source: EventSource,
  ) {}
  get customers(): readonly string[] {
    return this.source.customers;
  }
}

export interface StreamerOptions {
  eventsPerSec: number;
  batchSize: number;
  concurrency: number;
  retryDeadlineMs: number;
}

export class RoundRobinStreamer {
  readonly segments: Segment[] = [];
  current: Segment;
  inFlight = 0;
  lastAckAt = 0;
  readonly perGateway: { attempts: number; acked: number; failed: number }[];
  readonly statusCounts: Record<string, number> = {};
  private next = 0;
  private stopped = false;
  private workers: Promise<void>[] = [];
  private readonly clients: GatewayClient[];

  constructor(
    gatewayUrls: readonly string[],
    apiKey: string,
    first: Segment,
    private readonly opts: StreamerOptions,
  ) {
    this.clients = gatewayUrls.map((u) => new GatewayClient(u, apiKey, opts.concurrency * 2));
    this.perGateway = gatewayUrls.map(() => ({ attempts: 0, acked: 0, failed: 0 }));
    this.current = first;
    this.segments.push(first);
  }

  /** Later batches use `s`; batches already created (and their retries) stay in their own segment. */
  switchTo(s: Segment): void {
    this.segments.push(s);
    this.current = s;
  }

  start(): void {
    const perWorkerInterval = (this.opts.batchSize / (this.opts.eventsPerSec / this.opts.concurrency)) * 1000;
    this.workers = Array.from({ length: this.opts.concurrency }, async (_, w) => {
      await sleep((perWorkerInterval / this.opts.concurrency) * w);
      while (!this.stopped) {
        const t0 = Date.now();
        await this.postOne(this.current);
        const wait = perWorkerInterval - (Date.now() - t0);
        if (wait > 0) await sleep(wait);
      }
    });
  }

  private async postOne(seg: Segment): Promise<void> {
    const events = seg.source.next(this.opts.batchSize);
    const ids = events.map((e) => e.idempotency_id);
    seg.sent += ids.length;
    const body = batchBody(events);
    const deadline = Date.now() + this.opts.retryDeadlineMs;
    const first = this.next++ % this.clients.length;
    let g = first;
    let attempts = 0;
    let backoff = 50;
    let last: PostResult | null = null;
    this.inFlight++;
    try {
      for (;;) {
        attempts++;
        this.perGateway[g]!.attempts++;
        last = await this.clients[g]!.post(body, 15_000);
        this.statusCounts[last.status] = (this.statusCounts[last.status] ?? 0) + 1;
        if (last.status === 200 || last.status === 202) break;
        this.perGateway[g]!.failed++;
        const retryable = last.status === 0 || last.status === 429 || last.status >= 500;
        if (!retryable || Date.now() > deadline) break;
        // next gateway at once; back off only when every gateway was tried this round
        g = (g + 1) % this.clients.length;
        if (g === first) {
          await sleep(Math.min(last.retryAfterMs ?? backoff, 2_000));
          backoff = Math.min(backoff * 2, 1_000);
        }
      }
    } finally {
      this.inFlight--;
    }
    if (attempts > 1) {
      seg.retries += attempts - 1;
      seg.retriedEvents += ids.length;
    }
    if (last && (last.status === 200 || last.status === 202)) {
      seg.acked.push(...ids);
      this.perGateway[g]!.acked++;
      if (g !== first) seg.failovers++;
      this.lastAckAt = Date.now();
    } else {
      seg.unacked.push(...ids);
    }
  }

  /** Resolves when at least `min` requests are outstanding (or the timeout passes); returns how many are. */
  async waitForInFlight(min: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight < min && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    return this.inFlight;
  }

  /** Stops issuing new batches and waits until every outstanding batch is acknowledged or given up. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
    for (const c of this.clients) c.close();
  }
}
