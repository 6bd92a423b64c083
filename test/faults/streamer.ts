// The drill's client: streams events with known ids to the gateway at a steady rate from a few
// concurrent clients; a batch that fails (503, connection reset, timeout) is retried with the SAME
// body, hence the same idempotency ids, until it is acknowledged or the retry deadline passes.
import { type EventSource, GatewayClient, batchBody, type PostResult } from '../../bench/lib/load.ts';
import { sleep } from '../../bench/lib/stats.ts';

export class Streamer {
  readonly acked: string[] = [];
  readonly unacked: string[] = [];
  sent = 0;
  attempts = 0;
  retries = 0;
  /** Events whose batch failed at least once and was posted again with the same ids. */
  retriedEvents = 0;
  inFlight = 0;
  lastAckAt = 0;
  /** The last id of the most recently acknowledged batch (a freshness probe: acknowledged at lastAckAt). */
  lastAckedId: string | null = null;
  readonly statusCounts: Record<string, number> = {};
  private stopped = false;
  private workers: Promise<void>[] = [];
  private readonly client: GatewayClient;

  constructor(
    gatewayUrl: string,
    apiKey: string,
    readonly source: EventSource,
    private readonly opts: { eventsPerSec: number; batchSize: number; concurrency: number; retryDeadlineMs: number },
  ) {
    this.client = new GatewayClient(gatewayUrl, apiKey, opts.concurrency * 2);
  }

  start(): void {
    const perWorkerInterval = (this.opts.batchSize / (this.opts.eventsPerSec / this.opts.concurrency)) * 1000;
    this.workers = Array.from({ length: this.opts.concurrency }, async (_, w) => {
      await sleep((perWorkerInterval / this.opts.concurrency) * w);
      while (!this.stopped) {
        const t0 = Date.now();
        const events = this.source.next(this.opts.batchSize);
        const ids = events.map((e) => e.idempotency_id);
        this.sent += ids.length;
        const body = batchBody(events);
        let batchAttempts = 0;
        this.inFlight++;
        const { result } = await this.client.postUntilAccepted(body, Date.now() + this.opts.retryDeadlineMs, (r: PostResult) => {
          this.attempts++;
          if (++batchAttempts > 1) this.retries++;
          this.statusCounts[r.status] = (this.statusCounts[r.status] ?? 0) + 1;
        });
        this.inFlight--;
        if (batchAttempts > 1) this.retriedEvents += ids.length;
        if (result.status === 200 || result.status === 202) {
          this.acked.push(...ids);
          this.lastAckAt = Date.now();
          this.lastAckedId = ids[ids.length - 1] ?? null;
        } else {
          this.unacked.push(...ids);
        }
        const wait = perWorkerInterval - (Date.now() - t0);
        if (wait > 0) await sleep(wait);
      }
    });
  }

  /** Stops issuing new batches and waits until every outstanding batch is acknowledged or given up. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
    this.client.close();
  }

  /** Resolves once a batch is acknowledged after `sinceMs` (the pipeline accepts again). */
  async waitForAckAfter(sinceMs: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.lastAckAt <= sinceMs) {
      if (Date.now() > deadline) throw new Error(`no event acknowledged within ${timeoutMs} ms after the fault`);
      await sleep(50);
    }
  }

  /** The id of a batch acknowledged after `sinceMs`: the freshness probe of a recovery. */
  async ackedIdAfter(sinceMs: number, timeoutMs: number): Promise<{ id: string; ackedAt: number }> {
    await this.waitForAckAfter(sinceMs, timeoutMs);
    return { id: this.lastAckedId!, ackedAt: this.lastAckAt };
  }

  /** Resolves when at least `min` requests are outstanding (or the timeout passes); returns how many are. */
  async waitForInFlight(min: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight < min && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    return this.inFlight;
  }
}
