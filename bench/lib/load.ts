// HTTP load generator for the gateway: keep-alive connections to 127.0.0.1 only, bounded in events and
// time. Closed loop (N concurrent clients, each posts its next batch when the previous one is answered)
// for maximum throughput; open loop (fixed events/s) for "half the maximum rate" phases.
import http from 'node:http';
import { nowMs, sleep } from './stats.ts';

export interface ClientEvent {
  event_name: string;
  customer_id: string;
  idempotency_id: string;
  time_created: string;
  properties: Record<string, string | number | boolean>;
}

/** Builds the JSON body of one batch. Ids are [A-Za-z0-9_.-] so a template is safe and cheap. */
export function batchBody(events: readonly ClientEvent[]): string {
  return JSON.stringify({ batch: events });
}

export class EventSource {
  private seq = 0;
  constructor(
    readonly runId: string,
    readonly eventName: string,
    readonly customers: readonly string[],
  ) {}

  get produced(): number {
    return this.seq;
  }

  next(n: number, timeMs = Date.now()): ClientEvent[] {
    const time = new Date(timeMs).toISOString();
    const out: ClientEvent[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const s = this.seq++;
      out[i] = {
        event_name: this.eventName,
        customer_id: this.customers[s % this.customers.length]!,
        idempotency_id: `${this.runId}-${s}`,
        time_created: time,
        properties: { tokens: (s % 10) + 1, region: 'eu' },
      };
    }
    return out;
  }
}

export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') throw new Error(`load generator only targets loopback, not ${host}`);
}

export interface PostResult {
  status: number; // 0 = connection error
  retryAfterMs: number | null;
  latencyMs: number;
  body: string;
}

export class GatewayClient {
  readonly agent: http.Agent;
  private readonly target: URL;

  constructor(
    baseUrl: string,
    private readonly apiKey: string,
    maxSockets: number,
    private readonly path = '/v1/events',
  ) {
    assertLoopback(baseUrl);
    this.target = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
  }

  post(body: string, timeoutMs = 30_000): Promise<PostResult> {
    const t0 = nowMs();
    return new Promise((resolve) => {
      const req = http.request(
        {
          host: this.target.hostname,
          port: this.target.port,
          path: this.path,
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-api-key': this.apiKey },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const ra = res.headers['retry-after'];
            const retryAfterMs = ra !== undefined && Number.isFinite(Number(ra)) ? Number(ra) * 1000 : null;
            resolve({ status: res.statusCode ?? 0, retryAfterMs, latencyMs: nowMs() - t0, body: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', () => resolve({ status: 0, retryAfterMs: null, latencyMs: nowMs() - t0, body: '' }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => resolve({ status: 0, retryAfterMs: null, latencyMs: nowMs() - t0, body: String(err) }));
      req.end(body);
    });
  }

  /**
   * Posts one batch until it is acknowledged (200), retrying with the SAME body (same idempotency ids)
   * on 503/429/5xx/connection errors, honouring Retry-After, until the deadline. Returns the final result
   * and how many attempts it took.
   */
  async postUntilAccepted(
    body: string,
    deadlineMs: number,
    onAttempt?: (r: PostResult) => void,
  ): Promise<{ result: PostResult; attempts: number }> {
    let attempts = 0;
    let backoff = 50;
    for (;;) {
      const result = await this.post(body);
      attempts++;
      onAttempt?.(result);
      if (result.status === 200 || result.status === 202) return { result, attempts };
      const retryable = result.status === 0 || result.status === 429 || result.status >= 500;
      if (!retryable || Date.now() > deadlineMs) return { result, attempts };
      await sleep(Math.min(result.retryAfterMs ?? backoff, 2_000));
      backoff = Math.min(backoff * 2, 1_000);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface LoadResult {
  batchSize: number;
  concurrency: number;
  requests: number;
  acceptedEvents: number;
  rejectedRequests: number;
  statusCounts: Record<string, number>;
  elapsedMs: number;
  eventsPerSec: number;
  requestLatency: number[];
  firstPostAt: number; // epoch ms
  lastAckAt: number; // epoch ms
}

/**
 * Closed loop: `concurrency` clients post batches of `batchSize` until `maxEvents` were sent or
 * `durationMs` passed. With `retry`, a batch is retried (same ids) until accepted.
 */
export async function closedLoop(opts: {
  client: GatewayClient;
  source: EventSource;
  batchSize: number;
  concurrency: number;
  durationMs: number;
  maxEvents: number;
  retry?: boolean;
  onAck?: (events: ClientEvent[], ackAt: number) => void;
}): Promise<LoadResult> {
  const { client, source, batchSize, concurrency } = opts;
  const statusCounts: Record<string, number> = {};
  const latencies: number[] = [];
  let requests = 0;
  let accepted = 0;
  let rejected = 0;
  let issued = 0;
  const t0 = nowMs();
  const firstPostAt = Date.now();
  let lastAckAt = firstPostAt;
  const stopAt = t0 + opts.durationMs;
  const worker = async () => {
    while (issued < opts.maxEvents && nowMs() < stopAt) {
      const n = Math.min(batchSize, opts.maxEvents - issued);
      issued += n;
      const events = source.next(n);
      const body = batchBody(events);
      const count = (r: PostResult) => {
        requests++;
        statusCounts[r.status] = (statusCounts[r.status] ?? 0) + 1;
        if (r.status === 200 || r.status === 202) latencies.push(r.latencyMs);
      };
      const r = opts.retry
        ? (await client.postUntilAccepted(body, Date.now() + 120_000, count)).result
        : await client.post(body).then((x) => {
            count(x);
            return x;
          });
      if (r.status === 200 || r.status === 202) {
        accepted += n;
        lastAckAt = Date.now();
        opts.onAck?.(events, lastAckAt);
      } else rejected++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = nowMs() - t0;
  return {
    batchSize,
    concurrency,
    requests,
    acceptedEvents: accepted,
    rejectedRequests: rejected,
    statusCounts,
    elapsedMs,
    eventsPerSec: accepted / (elapsedMs / 1000),
    requestLatency: latencies,
    firstPostAt,
    lastAckAt,
  };
}

/**
 * Open loop at a fixed rate: every tick posts the events due since the last tick (in batches of
 * batchSize), at most `maxInFlight` requests outstanding. Runs until `stop()` resolves or durationMs.
 */
export async function openLoop(opts: {
  client: GatewayClient;
  source: EventSource;
  eventsPerSec: number;
  batchSize: number;
  durationMs: number;
  maxInFlight?: number;
  shouldStop?: () => boolean;
}): Promise<{ sent: number; accepted: number; failedRequests: number; elapsedMs: number; achievedEventsPerSec: number }> {
  const { client, source, batchSize } = opts;
  const maxInFlight = opts.maxInFlight ?? 16;
  const t0 = nowMs();
  let sent = 0;
  let accepted = 0;
  let failed = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  while (nowMs() - t0 < opts.durationMs && !(opts.shouldStop?.() ?? false)) {
    const due = Math.floor(((nowMs() - t0) / 1000) * opts.eventsPerSec);
    while (sent + batchSize <= due && inFlight < maxInFlight) {
      const events = source.next(batchSize);
      sent += batchSize;
      inFlight++;
      const p: Promise<void> = client.post(batchBody(events)).then((r) => {
        inFlight--;
        if (r.status === 200 || r.status === 202) accepted += events.length;
        else failed++;
        pending.delete(p);
      });
      pending.add(p);
    }
    await sleep(5);
  }
  await Promise.all(pending);
  const elapsedMs = nowMs() - t0;
  return { sent, accepted, failedRequests: failed, elapsedMs, achievedEventsPerSec: accepted / (elapsedMs / 1000) };
}
