// The delivery worker: at once when an enqueue commits (LISTEN on outbox.ts's WAKE_CHANNEL, one pooled
// connection held while the worker runs), and every `intervalMs` in any case (retries, lost
// notifications, a listener that reconnects), it claims due pending deliveries (FOR UPDATE SKIP LOCKED, so
// several billing instances share the work without taking the same row) by leasing them — next_attempt_at
// moves past the attempt's timeout in the claiming statement, which commits before any HTTP request. A
// billing process killed mid-attempt leaves the lease to expire and the delivery is attempted again
// (at-least-once; receivers dedupe on webhook-id). Each attempt: POST the stored payload, signed with the
// endpoint's secret (and the previous one during a rotation overlap), timeout config.webhooks.timeoutMs.
//   2xx → succeeded. 410 → the endpoint is disabled (disabled_reason) and its pending deliveries abandoned.
//   anything else / timeout / network error → retried after retryScheduleMs[n] ±20 % jitter; when the
//   schedule is exhausted → abandoned. Disabled or deleted endpoint at claim time → abandoned.
import type { PgClient, WebhooksConfig } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { signedHeaders } from './secrets.ts';
import { disableEndpoint } from './store.ts';
import { WAKE_CHANNEL } from './outbox.ts';

const BODY_LIMIT = 1024;

interface Claimed {
  delivery_id: string;
  organization_id: string;
  endpoint_id: string;
  event_id: string;
  attempts: number;
  schedule_base: number;
  body: string;
  event_created_at: Date;
  url: string;
  usable: boolean;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
}

export interface WebhookWorker {
  /** One pass: claim and attempt up to `concurrency` due deliveries; returns how many were attempted. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

const jitter = (ms: number) => Math.round(ms * (0.8 + Math.random() * 0.4));

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < BODY_LIMIT) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, BODY_LIMIT).toString('utf8');
}

export function startWebhookWorker(deps: Deps, cfg: WebhooksConfig = deps.config.webhooks): WebhookWorker {
  const m = deps.metrics;
  // a pass claims at most one delivery per lane, all attempted at once: the lease covers one attempt
  // (timeout) and its bookkeeping; a process killed mid-attempt delays those deliveries by at most this
  const perPass = cfg.concurrency;
  const leaseMs = cfg.timeoutMs + 5_000;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;

  async function claim(limit: number): Promise<Claimed[]> {
    const { rows } = await deps.pool.query<Claimed>(
      `WITH due AS (
         SELECT delivery_id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
          ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED),
       leased AS (
         UPDATE webhook_deliveries d SET next_attempt_at = clock_timestamp() + make_interval(secs => $2::float8 / 1000)
           FROM due WHERE d.delivery_id = due.delivery_id
         RETURNING d.delivery_id, d.organization_id, d.endpoint_id, d.event_id, d.attempts, d.schedule_base)
       SELECT l.*, ev.payload::text AS body, ev.created_at AS event_created_at, e.url,
              (e.enabled AND e.deleted_at IS NULL) AS usable, e.secret, e.previous_secret, e.previous_secret_expires_at
         FROM leased l
         JOIN webhook_events ev ON ev.organization_id = l.organization_id AND ev.event_id = l.event_id
         JOIN webhook_endpoints e ON e.organization_id = l.organization_id AND e.endpoint_id = l.endpoint_id`,
      [limit, leaseMs],
    );
    return rows;
  }

  async function record(
    d: Claimed,
    r: {
      status: 'pending' | 'succeeded' | 'failed' | 'abandoned';
      code: number | null;
      ms: number;
      body: string | null;
      error: string | null;
      at: Date;
      retryInMs: number;
    },
  ) {
    await deps.pool.query(
      `WITH a AS (INSERT INTO webhook_attempts (organization_id, delivery_id, attempt, attempted_at, status_code, response_ms, response_body, error)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING)
       UPDATE webhook_deliveries SET status = $9, attempts = $3, last_attempt_at = $4, last_status_code = $5, last_response_ms = $6,
              last_response_body = $7, last_error = $8, delivered_at = CASE WHEN $9 = 'succeeded' THEN clock_timestamp() ELSE delivered_at END,
              next_attempt_at = clock_timestamp() + make_interval(secs => $10::float8 / 1000)
        WHERE delivery_id = $2 AND status = 'pending'`,
      [d.organization_id, d.delivery_id, d.attempts + 1, r.at, r.code, r.ms, r.body, r.error, r.status, r.retryInMs],
    );
  }

  async function attempt(d: Claimed): Promise<void> {
    if (!d.usable) {
      await deps.pool.query(
        `UPDATE webhook_deliveries SET status = 'abandoned', last_error = coalesce(last_error, 'endpoint disabled or deleted')
          WHERE delivery_id = $1 AND status = 'pending'`,
        [d.delivery_id],
      );
      m.webhookDeliveries.inc({ outcome: 'abandoned' });
      return;
    }
    const at = new Date();
    const secrets = [d.secret];
    if (d.previous_secret && d.previous_secret_expires_at && d.previous_secret_expires_at.getTime() > at.getTime())
      secrets.push(d.previous_secret);
    const started = performance.now();
    let code: number | null = null;
    let body: string | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Meterline-Webhooks/1',
          ...signedHeaders(d.event_id, d.body, secrets, at),
        },
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(cfg.timeoutMs),
      });
      code = res.status;
      body = await readCapped(res).catch(() => null);
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      error = e.name === 'TimeoutError' ? `timeout after ${cfg.timeoutMs} ms` : `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`;
    }
    const ms = Math.round(performance.now() - started);
    if (code !== null && code >= 200 && code < 300) {
      await record(d, { status: 'succeeded', code, ms, body, error, at, retryInMs: 0 });
      m.webhookDeliveries.inc({ outcome: 'succeeded' });
      m.webhookDeliveryLatency.observe((Date.now() - d.event_created_at.getTime()) / 1000);
      return;
    }
    if (code === 410) {
      await record(d, { status: 'failed', code, ms, body, error: 'endpoint answered 410 Gone: disabled', at, retryInMs: 0 });
      await disableEndpoint(deps.pool, d.organization_id, d.endpoint_id, `the endpoint answered 410 Gone at ${at.toISOString()}`);
      m.webhookDeliveries.inc({ outcome: 'gone' });
      return;
    }
    const n = d.attempts + 1 - d.schedule_base; // attempts since the (re)send
    const delay = cfg.retryScheduleMs[n - 1];
    error ??= `HTTP ${code}`;
    if (delay === undefined) {
      await record(d, { status: 'abandoned', code, ms, body, error, at, retryInMs: 0 });
      m.webhookDeliveries.inc({ outcome: 'abandoned' });
    } else {
      await record(d, { status: 'pending', code, ms, body, error, at, retryInMs: jitter(delay) });
      m.webhookDeliveries.inc({ outcome: 'retry' });
    }
  }

  async function runOnce(): Promise<number> {
    const claimed = await claim(perPass);
    let next = 0;
    const lane = async () => {
      while (next < claimed.length) {
        const d = claimed[next++]!;
        try {
          await attempt(d);
        } catch (err) {
          // the lease expires and the delivery is attempted again
          deps.logger.error({ err, delivery: d.delivery_id }, 'webhook delivery bookkeeping failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(cfg.concurrency, claimed.length) }, lane));
    return claimed.length;
  }

  let woken = false;
  let listener: PgClient | null = null;
  let listening = false;
  const wake = () => {
    if (stopped) return;
    if (running)
      woken = true; // the pass in progress goes on at once when it ends
    else if (timer) {
      clearTimeout(timer);
      timer = setTimeout(loop, 0);
    }
  };
  async function listen() {
    if (listening || stopped) return;
    listening = true;
    try {
      const c = await deps.pool.connect();
      const drop = () => {
        if (listener !== c) return;
        listener = null;
        listening = false;
        c.removeAllListeners('notification');
        c.release(true);
      };
      c.on('notification', wake);
      c.on('error', drop);
      await c.query(`LISTEN ${WAKE_CHANNEL}`);
      listener = c;
      if (stopped) drop();
    } catch (err) {
      listening = false;
      deps.logger.debug({ err: (err as Error).message }, 'webhook listener not connected; polling');
    }
  }

  const loop = async () => {
    if (stopped) return;
    timer = null;
    let full = false;
    void listen();
    try {
      running = runOnce();
      full = ((await running) as number) >= perPass; // more may be due: go on at once
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, 'webhook worker pass failed');
    } finally {
      running = null;
    }
    const now = full || woken;
    woken = false;
    if (!stopped) timer = setTimeout(loop, now ? 0 : cfg.intervalMs);
  };
  if (cfg.intervalMs > 0) timer = setTimeout(loop, 0);

  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
      const c = listener;
      listener = null;
      if (c) {
        c.removeAllListeners('notification');
        await c.query(`UNLISTEN ${WAKE_CHANNEL}`).catch(() => undefined);
        c.release();
      }
    },
  };
}
