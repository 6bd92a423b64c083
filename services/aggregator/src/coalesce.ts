// Group commit across partitions (issue #18). kafkajs hands every partition of a fetch to its own
// eachBatch, and each chunk used to make its own three ClickHouse statements (progress read, raw INSERT,
// rollup INSERT). ClickHouse pays a fixed price per statement and far more per new part (~50 ms of a
// core on 18.16 for a 2-row part: files, checksums, thread start-up, then the merges): a 20 events/s
// trickle spread over 6 partitions kept ClickHouse at 1.1–1.3 cores. Chunks processed at the same time
// therefore meet at each of those steps and one combined statement serves them all.
//
// Why this keeps every guarantee: a combined statement is only an optimisation of the statements the
// chunks would have run alone. The combined raw INSERT is one block (each partition's rows still in
// offset order), stored entirely or not at all, so Invariant R holds per partition; a combined rollup
// recomputes each partition's touched keys from their windows' starts exactly as the chunk's own would
// (recomputing a key is idempotent, Invariant A). When a combined statement fails for any reason, every
// participant runs its own statement as before (with its own retries, isolation of refused rows and
// invalid-metric marking), so one partition's poison or bad metric never holds the others. A combined
// statement that failed after ClickHouse committed it leaves rows a replay would also leave (identical
// content, deduplicated by every reader).
//
// A step flushes as soon as every chunk in progress has reached it (or skipped it), else after lingerMs:
// a lone chunk never waits, and a slow chunk delays the others by at most lingerMs per step.

export interface CoalesceOutcome {
  /** The step's name (for metrics and logs). */
  step: string;
  /** How many chunks the flush carried. */
  chunks: number;
  ok: boolean;
  err?: unknown;
}

/** What a ticket needs of a step. */
interface StepSlot {
  expect(): void;
  skip(): void;
}

/** One step (e.g. the raw INSERT) shared by concurrent chunks. */
export class StepCoalescer<T, R> implements StepSlot {
  /** Chunks in progress that have neither submitted to this step nor skipped it. */
  private expected = 0;
  private queue: { item: T; resolve: (r: R | null) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** The current queue has already waited the linger once. */
  private lingered = false;

  constructor(
    readonly step: string,
    /** Runs the combined statement; returns one result per item, or throws. */
    private readonly combine: (items: T[]) => Promise<R[]>,
    private readonly lingerMs: number,
    private readonly onFlush: (o: CoalesceOutcome) => void = () => undefined,
  ) {}

  expect(): void {
    this.expected++;
  }

  skip(): void {
    this.expected--;
    this.maybeFlush();
  }

  /**
   * The combined result for this item, or null: run your own statement (alone in the flush, or the
   * combined statement failed).
   */
  submit(item: T): Promise<R | null> {
    this.expected--;
    return new Promise((resolve) => {
      this.queue.push({ item, resolve });
      this.maybeFlush();
    });
  }

  private maybeFlush(): void {
    if (this.queue.length === 0) return;
    // Everyone in progress has arrived: flush after the current microtasks, so that chunks kafkajs starts
    // in the same turn (their tickets not yet taken when the first one submits) still join.
    if (this.expected <= 0) {
      if (!this.immediate) this.immediate = setImmediate(() => this.flush());
    } else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.lingerMs);
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = null;
    }
    // a chunk that took its ticket since the flush was scheduled is still on its way: wait for it too
    if (this.expected > 0 && this.queue.length > 0 && !this.lingered) {
      this.lingered = true;
      this.timer = setTimeout(() => this.flush(), this.lingerMs);
      return;
    }
    this.lingered = false;
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    if (batch.length === 1) {
      batch[0]!.resolve(null);
      return;
    }
    this.combine(batch.map((b) => b.item)).then(
      (results) => {
        this.onFlush({ step: this.step, chunks: batch.length, ok: true });
        batch.forEach((b, i) => {
          b.resolve(results[i] ?? null);
        });
      },
      (err) => {
        this.onFlush({ step: this.step, chunks: batch.length, ok: false, err });
        for (const b of batch) b.resolve(null);
      },
    );
  }
}

/**
 * A chunk's place at each step: taken when the chunk starts, each step used at most once (submit or
 * skip), and release() (in a finally) skips the steps the chunk never reached, so an aborted chunk
 * does not make the others wait for it.
 */
export class ChunkTicket {
  private readonly pending: Set<StepSlot>;

  constructor(steps: StepSlot[]) {
    this.pending = new Set(steps);
    for (const s of steps) s.expect();
  }

  submit<T, R>(step: StepCoalescer<T, R>, item: T): Promise<R | null> {
    if (!this.pending.delete(step)) return Promise.resolve(null);
    return step.submit(item);
  }

  skip(step: StepSlot): void {
    if (this.pending.delete(step)) step.skip();
  }

  release(): void {
    for (const s of this.pending) s.skip();
    this.pending.clear();
  }
}
