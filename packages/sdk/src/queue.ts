// Background batching for enqueue(): a queue that never hurts the caller.
//
// - enqueue() never waits for the network and never throws for capacity: the queue holds at most
//   `maxQueueSize` events COUNTING THE ONES IN FLIGHT (queued + inFlight <= maxQueueSize at every instant,
//   so memory is bounded even while a request hangs). When full, `overflow` decides which event goes:
//   the oldest queued one (default) or the new one. Every drop is counted (stats().dropped) and
//   reported through onError (code `events_dropped`, with the dropped events' idempotency ids).
// - One request at a time (≤ maxBatchEvents events), started when `flushAt` events wait, every
//   `flushIntervalMs`, on flush() and on close().
// - A request that fails after its retries (network error, timeout, 5xx, 429) puts its events back at
//   the front of the queue with the same idempotency ids (the gateway dedupes a resend). They always
//   fit: they were counted in the bound while in flight. Background sends then pause until the next
//   interval tick. Other failures (401, 403, 413, …: a resend cannot help) count as `failed`.
// - close({ timeoutMs }) sends what is left until the deadline, aborts what is in flight at the deadline
//   and reports every event it held (queued or in flight when it was called) as either a result or
//   `undelivered`.
//
// Accounting: every event handed to the queue ends up in exactly one of sent, rejected, dropped,
// failed, queued, inFlight, or (after close) the close report's `undelivered` (counted in failed).
import { MeterlineError } from './errors.ts';
import type { Logger } from './http.ts';
import { eventErrorsOf, summarize, type WireEvent } from './ingest.ts';
import type { EventResult, IngestResponse } from './types.ts';

/** What enqueue() does when the queue (queued + in flight) holds `maxQueueSize` events. */
export type OverflowPolicy = 'drop_oldest' | 'drop_newest';

export interface QueueOptions {
  /** Hard bound on events held: queued + in flight. Default 10,000. */
  maxQueueSize: number;
  /** Flush in the background once this many events wait. Default 100. */
  flushAt: number;
  /** Flush in the background this often (ms) while events wait; 0 disables the timer. Default 1,000. */
  flushIntervalMs: number;
  /** When full: drop the oldest queued event (default) or the new one. */
  overflow: OverflowPolicy;
  /** Events per request (one request in flight at a time). */
  maxBatchEvents: number;
  /**
   * Background problems: `events_dropped` (details `{ dropped, reason, idempotency_ids }`), `events_rejected`
   * (eventErrors), and requests that failed after all retries (details `{ requeued | failed, idempotency_ids }`).
   */
  onError: (err: MeterlineError) => void;
  logger: Logger;
}

/** Counters of the enqueue() queue since the client was created (see README "Background queue"). */
export interface QueueStats {
  /** Events waiting to be sent. */
  queued: number;
  /** Events in the request under way (still held: counted against maxQueueSize). */
  inFlight: number;
  /** Events the gateway answered `accepted`, `duplicate` or `ignored` (delivered; nothing to resend). */
  sent: number;
  /** Events the gateway rejected (invalid; reported through onError with their errors). */
  rejected: number;
  /** Events discarded by the SDK: overflow (`queue_full`), enqueued after close (`closed`), beforeSend threw. */
  dropped: number;
  /** Events given up on: a request failed in a way a resend cannot fix (401, 413, …), or close() could not deliver them. */
  failed: number;
  /** Times an event went back into the queue after a failed request (one event can count several times). */
  requeued: number;
  /** Events beforeSend returned null for (never queued; not part of the other counters). */
  filtered: number;
}

/** An event close() could not deliver. */
export interface UndeliveredEvent {
  idempotency_id: string;
  /** `close_timeout` (deadline reached: never sent, or its request aborted), or the failure's code (`network_error`, `timeout`, `kafka_unavailable`, `unauthorized`, …). */
  reason: string;
  /** The failure's message, when there was one. */
  message?: string;
}

/**
 * close()'s answer. Covers exactly the events the queue held when close() was called (queued or in
 * flight, including a background request under way): each is either in `results` (the gateway's
 * answer: accepted, duplicate, ignored or rejected; `index` = position in this report) or in
 * `undelivered`. Events dropped earlier are not in it (each was reported through onError with its id);
 * `dropped` and `stats` give the totals.
 */
export interface CloseReport extends IngestResponse {
  /** Events not delivered, with why; resend them yourself if they matter (same idempotency ids are safe). */
  undelivered: UndeliveredEvent[];
  /** Events dropped since the client was created (= stats.dropped). */
  dropped: number;
  /** Whether the deadline was reached (something was aborted or never sent). */
  timedOut: boolean;
  /** The final counters. */
  stats: QueueStats;
}

export interface CloseOptions {
  /** How long close() may take to send what is queued and in flight. Default 30,000 ms. */
  timeoutMs?: number;
}

type Send = (events: WireEvent[], signal: AbortSignal) => Promise<EventResult[]>;

interface Collector {
  results: EventResult[];
  undelivered: UndeliveredEvent[];
  errors: MeterlineError[];
}

/** A FIFO with O(1) shift (drop_oldest on a full queue runs on every enqueue). */
class Deque<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T; // release it
    if (this.head >= 1024 && this.head * 2 >= this.items.length) this.compact();
    return item;
  }

  /** Removes and returns the first n items (all when n is undefined). */
  take(n?: number): T[] {
    const end = n === undefined ? this.items.length : Math.min(this.items.length, this.head + n);
    const out = this.items.slice(this.head, end);
    this.head = end;
    this.compact();
    return out;
  }

  /** Puts items back at the front, in order. */
  unshift(items: T[]): void {
    this.compact();
    this.items = items.concat(this.items);
  }

  private compact(): void {
    if (this.head === 0) return;
    this.items = this.head >= this.items.length ? [] : this.items.slice(this.head);
    this.head = 0;
  }
}

const newCollector = (): Collector => ({ results: [], undelivered: [], errors: [] });
const FINAL = new Set(['accepted', 'duplicate', 'ignored', 'rejected']);

export class EventQueue {
  private buf = new Deque<WireEvent>();
  private current: WireEvent[] | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private scheduled = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private closing: Collector | undefined;
  private closeResult: Promise<CloseReport> | undefined;
  private sealed = false;
  private pauseUntil = 0;
  private readonly abort = new AbortController();
  private pendingDrops = new Map<string, string[]>();
  private readonly counts = { sent: 0, rejected: 0, dropped: 0, failed: 0, requeued: 0, filtered: 0 };

  private readonly send: Send;
  private readonly opts: QueueOptions;

  // No parameter properties: the sources stay runnable under plain type stripping (Node 22.6+, Deno, Bun).
  constructor(send: Send, opts: QueueOptions) {
    this.send = send;
    this.opts = opts;
  }

  get inFlight(): number {
    return this.current?.length ?? 0;
  }

  stats(): QueueStats {
    return { queued: this.buf.length, inFlight: this.inFlight, ...this.counts };
  }

  /** Counts an event beforeSend discarded. */
  countFiltered(): void {
    this.counts.filtered++;
  }

  /** Drops an event before it is queued (counted and reported like overflow drops). */
  reject(id: string, reason: string): void {
    this.drop(id, reason);
  }

  /** Queues one normalized event (id assigned). Never throws; returns its idempotency id. */
  enqueue(wire: WireEvent): string {
    if (this.closed) {
      this.drop(wire.idempotency_id, 'closed');
      return wire.idempotency_id;
    }
    if (this.buf.length + this.inFlight >= this.opts.maxQueueSize) {
      if (this.opts.overflow === 'drop_oldest' && this.buf.length > 0) {
        this.drop(this.buf.shift()!.idempotency_id, 'queue_full');
      } else {
        this.drop(wire.idempotency_id, 'queue_full');
        return wire.idempotency_id;
      }
    }
    this.buf.push(wire);
    if (this.buf.length >= this.opts.flushAt && Date.now() >= this.pauseUntil) this.background();
    else this.startTimer();
    return wire.idempotency_id;
  }

  /**
   * Sends everything queued now (after any send under way) and returns its results (index = order in
   * this flush). Throws MeterlineError if a request failed after all retries; its events are back in
   * the queue with their ids.
   */
  flush(): Promise<IngestResponse> {
    return this.exclusive(async () => {
      const c = newCollector();
      await this.drain(c, true);
      if (c.errors.length > 0 && !this.closing) throw c.errors[0]!;
      return summarize(c.results);
    });
  }

  /** Stops background sending, drops later enqueues and delivers what is held until the deadline. */
  close(opts: CloseOptions = {}): Promise<CloseReport> {
    this.closeResult ??= this.doClose(opts.timeoutMs ?? 30_000);
    return this.closeResult;
  }

  private async doClose(timeoutMs: number): Promise<CloseReport> {
    this.closed = true;
    this.stopTimer();
    const c = newCollector();
    this.closing = c; // a request under way now reports to close()
    let timedOut = false;
    let grace: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timedOut = true;
        this.abort.abort(new Error(`close() deadline of ${timeoutMs} ms`));
        // A fetch that ignores its signal must not hold close() up: give it a moment, then stop waiting.
        grace = setTimeout(resolve, 250);
      }, timeoutMs);
      void this.exclusive(() => this.drain(c, true))
        .catch(() => undefined) // nothing is lost: what was held is reported below
        .finally(() => {
          clearTimeout(t);
          resolve();
        });
    });
    await deadline;
    if (grace) clearTimeout(grace);
    this.sealed = true; // late answers change nothing any more
    const left = [...(this.current ?? []), ...this.buf.take()];
    this.current = undefined;
    this.undeliver(c, left, 'close_timeout', 'close() deadline reached');
    this.reportDrops();
    this.closing = undefined;
    return { ...summarize(c.results), undelivered: c.undelivered, dropped: this.counts.dropped, timedOut, stats: this.stats() };
  }

  /** Runs fn after everything queued before it: one drain at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => undefined);
    return p;
  }

  private background(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    this.exclusive(async () => {
      this.scheduled = false;
      const c = newCollector();
      await this.drain(c, false);
      this.report(c);
    }).catch((err: unknown) => this.opts.logger.error?.(`[meterline] background send: ${String(err)}`));
  }

  /** Sends batches until the queue is empty (or, in the background, until a request fails). */
  private async drain(c: Collector, untilEmpty: boolean): Promise<void> {
    while (this.buf.length > 0 && !this.sealed) {
      if (!untilEmpty && !this.closing && Date.now() < this.pauseUntil) return;
      const batch = this.buf.take(this.opts.maxBatchEvents);
      this.current = batch;
      if (this.buf.length === 0) this.stopTimer();
      let results: EventResult[] | undefined;
      let error: unknown;
      try {
        results = await this.send(batch, this.abort.signal);
      } catch (err) {
        error = err;
      }
      if (this.sealed) return; // close() gave up waiting and already reported this batch
      this.current = undefined;
      const into = this.closing ?? c;
      if (results) {
        this.settle(into, batch, results);
        continue;
      }
      const stop = this.failed(into, batch, error);
      if (stop) return;
    }
  }

  private settle(c: Collector, batch: WireEvent[], results: (EventResult | undefined)[]): WireEvent[] {
    const unsent: WireEvent[] = [];
    batch.forEach((e, i) => {
      const r = results[i];
      if (!r || !FINAL.has(r.status)) {
        unsent.push(e);
        return;
      }
      if (r.status === 'rejected') this.counts.rejected++;
      else this.counts.sent++;
      const out: EventResult = { ...r, index: c.results.length };
      delete out.duplicate_of;
      if (out.idempotency_id === undefined) out.idempotency_id = e.idempotency_id;
      c.results.push(out);
    });
    return unsent;
  }

  /** A request failed for good; returns whether the drain should stop. */
  private failed(c: Collector, batch: WireEvent[], error: unknown): boolean {
    const err =
      error instanceof MeterlineError
        ? error
        : new MeterlineError(`enqueue: ${String((error as Error)?.message ?? error)}`, { status: 0, code: 'internal_error', cause: error });
    const unsent = this.settle(c, batch, err.results ?? []);
    const ids = unsent.map((e) => e.idempotency_id);
    const resendable = err.status === 0 || err.status >= 500 || err.status === 429;
    if (this.closing) {
      const aborted = this.abort.signal.aborted;
      this.undeliver(c, unsent, aborted ? 'close_timeout' : err.code, err.message);
      // Retryable failures (the ingest URL is down) would fail for the rest too: report them at once.
      if (resendable || aborted) {
        this.undeliver(c, this.buf.take(), aborted ? 'close_timeout' : err.code, err.message);
        return true;
      }
      return false;
    }
    if (resendable) {
      // Back at the front, same ids. They fit: they were counted in the bound while in flight.
      const room = Math.max(0, this.opts.maxQueueSize - this.buf.length);
      const keep = unsent.slice(0, room);
      for (const e of unsent.slice(room)) this.drop(e.idempotency_id, 'queue_full');
      this.buf.unshift(keep);
      this.counts.requeued += keep.length;
      this.pauseUntil = Date.now() + Math.max(this.opts.flushIntervalMs, 0) / 2; // the next timer tick resumes
      if (this.buf.length) this.startTimer();
      c.errors.push(
        new MeterlineError(`${err.message}; ${keep.length} event(s) back in the queue`, {
          status: err.status,
          code: err.code,
          details: { requeued: keep.length, idempotency_ids: ids },
          cause: err,
          ...(err.causeCode !== undefined ? { causeCode: err.causeCode } : {}),
          ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
        }),
      );
      return true;
    }
    this.counts.failed += unsent.length;
    c.errors.push(
      new MeterlineError(`${err.message}; ${unsent.length} event(s) given up (a resend cannot succeed)`, {
        status: err.status,
        code: err.code,
        details: { failed: unsent.length, idempotency_ids: ids, server: err.details },
        cause: err,
      }),
    );
    return false;
  }

  private undeliver(c: Collector, events: WireEvent[], reason: string, message: string): void {
    this.counts.failed += events.length;
    for (const e of events) c.undelivered.push({ idempotency_id: e.idempotency_id, reason, message });
  }

  /** Background outcome through onError: rejections and failed requests. */
  private report(c: Collector): void {
    const rejected = c.results.filter((r) => r.status === 'rejected').length;
    if (rejected > 0) {
      this.safeOnError(
        new MeterlineError(`${rejected} queued event(s) rejected`, {
          status: rejected < c.results.length ? 207 : 400,
          code: 'events_rejected',
          results: c.results,
          eventErrors: eventErrorsOf(c.results),
        }),
      );
    }
    for (const e of c.errors) {
      this.opts.logger.error?.(`[meterline] ${e.message}`);
      this.safeOnError(e);
    }
  }

  private drop(id: string, reason: string): void {
    this.counts.dropped++;
    let ids = this.pendingDrops.get(reason);
    if (!ids) {
      ids = [];
      this.pendingDrops.set(reason, ids);
      if (this.pendingDrops.size === 1) queueMicrotask(() => this.reportDrops());
    }
    ids.push(id);
  }

  /** One onError per reason for every drop since the last report (drops in one loop → one call). */
  private reportDrops(): void {
    if (this.pendingDrops.size === 0) return;
    const drops = this.pendingDrops;
    this.pendingDrops = new Map();
    for (const [reason, ids] of drops) {
      const why =
        reason === 'queue_full'
          ? `queue full: ${this.opts.maxQueueSize} events queued or in flight, overflow ${this.opts.overflow}`
          : reason === 'closed'
            ? 'enqueued after close()'
            : reason;
      const err = new MeterlineError(`${ids.length} event(s) dropped (${why})`, {
        status: 0,
        code: 'events_dropped',
        details: { dropped: ids.length, reason, idempotency_ids: ids },
      });
      this.opts.logger.warn?.(`[meterline] ${err.message}`);
      this.safeOnError(err);
    }
  }

  private safeOnError(err: MeterlineError): void {
    try {
      this.opts.onError(err);
    } catch {
      // the caller's handler must not break the queue
    }
  }

  private startTimer(): void {
    if (this.timer || this.closed || this.opts.flushIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.buf.length && Date.now() >= this.pauseUntil) this.background();
    }, this.opts.flushIntervalMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
