// Background batching: enqueue() never waits for the network; a bounded buffer is flushed when it
// reaches `flushAt` events, every `flushIntervalMs`, on flush() and on close().
import { MeterlineError } from './errors.ts';
import { eventErrorsOf, summarize, toWireEvent, type WireEvent } from './ingest.ts';
import type { EventResult, IngestResponse, UsageEventInput } from './types.ts';

export interface QueueOptions {
  /** Events buffered at most; enqueue() throws `queue_full` beyond. Default 10,000. */
  maxQueueSize: number;
  /** Flush in the background once this many events wait. Default 100. */
  flushAt: number;
  /** Flush in the background this often (ms) while events wait; 0 disables the timer. Default 1,000. */
  flushIntervalMs: number;
  /**
   * Called for failures of background flushes (size/interval): rejected events (`events_rejected`) and
   * requests that failed after all retries (their events are put back at the front of the queue, same
   * ids, as far as it has room; `details.dropped` counts the rest). Default: console.warn.
   */
  onError: (err: MeterlineError) => void;
}

export class EventQueue {
  private buf: WireEvent[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private scheduled = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  private readonly send: (events: WireEvent[]) => Promise<EventResult[]>;
  private readonly opts: QueueOptions;

  // No parameter properties: the sources stay runnable under plain type stripping (Node 22.6+, Deno, Bun).
  constructor(send: (events: WireEvent[]) => Promise<EventResult[]>, opts: QueueOptions) {
    this.send = send;
    this.opts = opts;
  }

  get size(): number {
    return this.buf.length;
  }

  /** Buffers one event (id assigned now) and returns its idempotency id. */
  enqueue(event: UsageEventInput): string {
    if (this.closed) throw new MeterlineError('the client is closed', { status: 0, code: 'closed' });
    if (this.buf.length >= this.opts.maxQueueSize) {
      throw new MeterlineError(`event queue full (${this.opts.maxQueueSize} events)`, { status: 0, code: 'queue_full' });
    }
    const wire = toWireEvent(event);
    this.buf.push(wire);
    if (this.buf.length >= this.opts.flushAt) this.background();
    else this.startTimer();
    return wire.idempotency_id;
  }

  /**
   * Sends everything buffered now (after any flush under way) and returns its results (index = order
   * in this flush). Throws MeterlineError if a request failed after all retries; the unsent events
   * are back in the queue with their ids.
   */
  flush(): Promise<IngestResponse> {
    const p = this.tail.then(() => this.drain());
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Stops the timer, refuses new events and flushes what is buffered. */
  async close(): Promise<IngestResponse> {
    this.closed = true;
    this.stopTimer();
    return this.flush();
  }

  private background(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const p = this.tail.then(async () => {
      this.scheduled = false;
      const r = await this.drain();
      if (r.rejected > 0) {
        this.opts.onError(
          new MeterlineError(`${r.rejected} queued event(s) rejected`, {
            status: r.accepted + r.duplicates + r.ignored > 0 ? 207 : 400,
            code: 'events_rejected',
            results: r.results,
            eventErrors: eventErrorsOf(r.results),
          }),
        );
      }
    });
    this.tail = p.catch((err: unknown) => {
      this.opts.onError(
        err instanceof MeterlineError ? err : new MeterlineError(String(err), { status: 0, code: 'internal_error', cause: err }),
      );
    });
  }

  private async drain(): Promise<IngestResponse> {
    const batch = this.buf.splice(0);
    if (this.buf.length === 0) this.stopTimer();
    if (batch.length === 0) return summarize([]);
    try {
      return summarize(await this.send(batch));
    } catch (err) {
      if (err instanceof MeterlineError) {
        const unsent = batch.filter((_, i) => err.results?.[i]?.status === 'retry' || !err.results);
        if (this.closed) throw err;
        const room = Math.max(0, this.opts.maxQueueSize - this.buf.length);
        const keep = unsent.slice(0, room);
        this.buf.unshift(...keep);
        if (this.buf.length) this.startTimer();
        const dropped = unsent.length - keep.length;
        if (dropped > 0) {
          throw new MeterlineError(`${err.message}; ${dropped} event(s) dropped (queue full)`, {
            status: err.status,
            code: err.code,
            details: { dropped },
            cause: err,
            ...(err.results ? { results: err.results } : {}),
          });
        }
      }
      throw err;
    }
  }

  private startTimer(): void {
    if (this.timer || this.closed || this.opts.flushIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.buf.length) this.background();
    }, this.opts.flushIntervalMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
