// The group commit of concurrent chunks (coalesce.ts): when a step flushes, who shares a statement,
// and that every failure hands each chunk back to its own path.
import { describe, expect, it } from 'vitest';
import { ChunkTicket, type CoalesceOutcome, StepCoalescer } from '../src/coalesce.ts';

function recorder(fail = false) {
  const calls: number[][] = [];
  const outcomes: CoalesceOutcome[] = [];
  const step = new StepCoalescer<number, string>(
    'raw',
    async (items) => {
      calls.push(items);
      if (fail) throw new Error('refused');
      return items.map((i) => `r${i}`);
    },
    50,
    (o) => outcomes.push(o),
  );
  return { step, calls, outcomes };
}

describe('StepCoalescer', () => {
  it('a lone chunk runs its own statement at once (null), the combiner is never called', async () => {
    const { step, calls } = recorder();
    const t = new ChunkTicket([step]);
    const started = Date.now();
    expect(await t.submit(step, 1)).toBeNull();
    expect(Date.now() - started).toBeLessThan(40);
    expect(calls).toEqual([]);
  });

  it('flushes as soon as every chunk in progress has arrived, each gets its own result', async () => {
    const { step, calls, outcomes } = recorder();
    const tickets = [1, 2, 3].map(() => new ChunkTicket([step]));
    const started = Date.now();
    const results = await Promise.all(tickets.map((t, i) => t.submit(step, i + 1)));
    expect(Date.now() - started).toBeLessThan(40); // did not wait for the linger
    expect(results).toEqual(['r1', 'r2', 'r3']);
    expect(calls).toEqual([[1, 2, 3]]);
    expect(outcomes).toEqual([{ step: 'raw', chunks: 3, ok: true }]);
  });

  it('waits at most the linger for a chunk still on its way, then goes without it', async () => {
    const { step, calls } = recorder();
    const a = new ChunkTicket([step]);
    const b = new ChunkTicket([step]);
    const c = new ChunkTicket([step]); // never arrives while the others wait
    const started = Date.now();
    const [ra, rb] = await Promise.all([a.submit(step, 1), b.submit(step, 2)]);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(500);
    expect([ra, rb]).toEqual(['r1', 'r2']);
    // c arrives alone later: nobody else in progress, its own statement
    expect(await c.submit(step, 3)).toBeNull();
    expect(calls).toEqual([[1, 2]]);
  });

  it('a chunk that skips the step or is released (aborted) does not hold the others', async () => {
    const { step, calls } = recorder();
    const a = new ChunkTicket([step]);
    const b = new ChunkTicket([step]);
    const c = new ChunkTicket([step]);
    const d = new ChunkTicket([step]);
    const started = Date.now();
    const pa = a.submit(step, 1);
    const pb = b.submit(step, 2);
    c.skip(step);
    d.release();
    expect(await Promise.all([pa, pb])).toEqual(['r1', 'r2']);
    expect(Date.now() - started).toBeLessThan(40);
    expect(calls).toEqual([[1, 2]]);
    // a step is used once per ticket: a second submit is the chunk's own path, and skip after use is a no-op
    expect(await a.submit(step, 9)).toBeNull();
    a.skip(step);
    a.release();
    expect(calls).toEqual([[1, 2]]);
  });

  it('a failed combined statement hands every chunk back to its own path (null), reported as fallback', async () => {
    const { step, calls, outcomes } = recorder(true);
    const tickets = [1, 2].map(() => new ChunkTicket([step]));
    const results = await Promise.all(tickets.map((t, i) => t.submit(step, i + 1)));
    expect(results).toEqual([null, null]);
    expect(calls).toEqual([[1, 2]]);
    expect(outcomes.map((o) => [o.chunks, o.ok])).toEqual([[2, false]]);
  });

  it('chunks arriving while a combined statement runs form the next one', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const calls: number[][] = [];
    const step = new StepCoalescer<number, number>(
      'rollup',
      async (items) => {
        calls.push(items);
        if (calls.length === 1) await gate;
        return items.map((i) => i * 10);
      },
      20,
    );
    const together = (items: number[]) => {
      const tickets = items.map(() => new ChunkTicket([step]));
      return tickets.map((t, i) => t.submit(step, items[i]!));
    };
    const first = together([1, 2]);
    await new Promise((r) => setTimeout(r, 5));
    const second = together([3, 4]);
    expect(await Promise.all(second)).toEqual([30, 40]);
    release();
    expect(await Promise.all(first)).toEqual([10, 20]);
    expect(calls).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});
