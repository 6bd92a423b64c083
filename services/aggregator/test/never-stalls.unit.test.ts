// Unit tests (fakes only) of the pieces that keep a partition moving: error classification, the
// isolation of refused rows, bounded retries, and the lag/stall monitor.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { clickHouseCode, isPermanentDataError, isPermanentQueryError, rejectedRow } from '../src/failures.ts';
import { insertIsolating } from '../src/isolate.ts';
import { Deferred, retryUntilDone } from '../src/retry.ts';
import { LagMonitor } from '../src/lag.ts';

const chError = (code: number, text: string) =>
  new Error(`Code: ${code}, e.displayText() = DB::Exception: ${text}, e.what() = DB::Exception\n`);

describe('failure classification', () => {
  it('reads the code from 18.16 and current LTS messages and from ClickHouseError.code', () => {
    expect(clickHouseCode(chError(25, 'Cannot parse escape sequence'))).toBe(25);
    expect(
      clickHouseCode(
        new Error('Code: 27. DB::Exception: Cannot parse input: (at row 3) (CANNOT_PARSE_INPUT_ASSERTION_FAILED) (version 25.8.1)'),
      ),
    ).toBe(27);
    expect(clickHouseCode(Object.assign(new Error('x'), { code: '131' }))).toBe(131);
    expect(clickHouseCode(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }))).toBeNull();
  });
  it('treats bad data as permanent and outages, missing tables and overload as transient', () => {
    expect(isPermanentDataError(chError(25, 'missing second part of surrogate pair'))).toBe(true);
    expect(isPermanentDataError(chError(131, 'Too large value for FixedString(7)'))).toBe(true);
    for (const transient of [
      chError(60, "Table x doesn't exist."),
      chError(241, 'Memory limit exceeded'),
      chError(252, 'Too many parts'),
      chError(159, 'Timeout exceeded'),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      new Error('Timeout error.'),
    ]) {
      expect(isPermanentDataError(transient)).toBe(false);
      expect(isPermanentQueryError(transient)).toBe(false);
    }
    expect(isPermanentDataError(chError(62, 'Syntax error'))).toBe(false); // a raw INSERT never has bad SQL from data
    expect(isPermanentQueryError(chError(62, 'Syntax error: failed at position 12: 5e-324'))).toBe(true);
    expect(isPermanentQueryError(new TypeError('not a number ClickHouse can parse as a literal: 5e-324'))).toBe(true);
  });
  it('finds the row ClickHouse names', () => {
    expect(rejectedRow(chError(131, 'Too large value: (while read the value of key source): (at row 41)\n'))).toBe(41);
    expect(rejectedRow(chError(25, 'no row here'))).toBeNull();
  });
});

/** A fake ClickHouse INSERT: refuses a part containing a poison row, naming it (1-based) when `hint`. */
function fakeInsert(poison: Set<number>, hint: 'exact' | 'none' | 'wrong', log: number[][]) {
  return async (part: number[]) => {
    log.push(part);
    const i = part.findIndex((r) => poison.has(r));
    if (i < 0) return;
    const named = hint === 'exact' ? i + 1 : hint === 'wrong' ? ((i + 1) % part.length) + 1 : null;
    throw chError(131, `Too large value for FixedString(7)${named ? `: (at row ${named})` : ''}`);
  };
}

describe('insertIsolating', () => {
  it('stores every good row once, in order, and refuses exactly the poison rows, whatever the hints say', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.constantFrom('exact', 'none', 'wrong' as const),
        async (n, picks, hint) => {
          const rows = Array.from({ length: n }, (_, i) => i);
          const poison = new Set(picks.map((p) => p % n));
          const refused: number[] = [];
          const log: number[][] = [];
          const { stored, cutAt } = await insertIsolating(rows, fakeInsert(poison, hint, log), async (r) => {
            refused.push(r);
          });
          expect(cutAt).toBeNull();
          expect(stored).toEqual(rows.filter((r) => !poison.has(r)));
          expect(refused).toEqual(rows.filter((r) => poison.has(r)));
          // left to right: a row is refused before any later row is stored
          const order = log.filter((part) => !part.some((r) => poison.has(r))).flat();
          expect(order).toEqual([...order].sort((a, b) => a - b));
          if (hint === 'exact') expect(log.length).toBeLessThanOrEqual(1 + 3 * poison.size);
        },
      ),
      { numRuns: 300 },
    );
  });
  it('stops at the budget after some progress; stored + refused are exactly the rows before the cut', async () => {
    const rows = Array.from({ length: 100 }, (_, i) => i);
    const poison = new Set([10, 20, 30, 40, 50]);
    let attempts = 0;
    const refused: number[] = [];
    const { stored, cutAt } = await insertIsolating(
      rows,
      async (part) => {
        attempts++;
        await fakeInsert(poison, 'exact', [])(part);
      },
      async (r) => {
        refused.push(r);
      },
      () => attempts >= 4,
    );
    expect(cutAt).not.toBeNull();
    expect([...stored, ...refused].sort((a, b) => a - b)).toEqual(rows.slice(0, cutAt!));
  });
  it('lets transient failures through to the caller', async () => {
    await expect(
      insertIsolating(
        [1, 2],
        async () => {
          throw chError(60, "Table events doesn't exist.");
        },
        async () => undefined,
      ),
    ).rejects.toThrow(/Code: 60/);
  });
});

describe('retryUntilDone', () => {
  it('rethrows a permanent error at once and defers a transient one after the inline budget', async () => {
    let calls = 0;
    await expect(
      retryUntilDone(
        async () => {
          calls++;
          throw chError(25, 'bad');
        },
        { active: () => true, maxBackoffMs: 10, isPermanent: isPermanentDataError },
      ),
    ).rejects.toThrow(/Code: 25/);
    expect(calls).toBe(1);
    const started = Date.now();
    const err = await retryUntilDone(
      async () => {
        throw new Error('ECONNREFUSED');
      },
      { active: () => true, maxBackoffMs: 50, giveUpAfterMs: 300, stage: 'raw_insert' },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Deferred);
    expect((err as Deferred).stage).toBe('raw_insert');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('LagMonitor', () => {
  function setup(stallAfterMs = 30_000) {
    let now = 1_000_000;
    const ends = [
      { partition: 0, offset: '100', high: '100', low: '0' },
      { partition: 1, offset: '50', high: '50', low: '0' },
    ];
    const committed = new Map<number, string>([
      [0, '100'],
      [1, '-1'],
    ]);
    const admin = {
      fetchTopicOffsets: async () => ends,
      fetchOffsets: async () => [
        { topic: 't', partitions: [...committed].map(([partition, offset]) => ({ partition, offset, metadata: null })) },
      ],
    };
    const gauges = new Map<string, number>();
    const gauge = (name: string) => ({
      set: (l: { partition: string }, v: number) => {
        gauges.set(`${name}:${l.partition}`, v);
      },
    });
    const logs: string[] = [];
    const logger = {
      error: (_o: unknown, m: string) => logs.push(m),
      info: (_o: unknown, m: string) => logs.push(m),
      warn: () => undefined,
    };
    const mon = new LagMonitor({
      admin: admin as never,
      groupId: 'g',
      topic: 't',
      intervalMs: 1000,
      stallAfterMs,
      metrics: { lag: gauge('lag'), stalled: gauge('stalled') } as never,
      logger: logger as never,
      now: () => now,
    });
    return {
      mon,
      ends,
      committed,
      gauges,
      logs,
      advance: (ms: number) => {
        now += ms;
      },
    };
  }
  it('computes lag against the committed offset (the earliest offset when none) and flags a stall only after the configured time', async () => {
    const t = setup(30_000);
    t.mon.setOwnedPartitions([0, 1]);
    await t.mon.refresh();
    expect(t.gauges.get('lag:0')).toBe(0);
    expect(t.gauges.get('lag:1')).toBe(50);
    expect(t.gauges.get('stalled:1')).toBe(0);
    t.mon.check();
    t.advance(29_000);
    await t.mon.refresh();
    expect(t.gauges.get('stalled:1')).toBe(0);
    t.advance(1_000);
    await t.mon.refresh();
    expect(t.gauges.get('stalled:1')).toBe(1);
    expect(() => t.mon.check()).toThrow(/t\[1\] lag 50 for 30 s/);
    expect(t.logs.filter((m) => m.includes('stalled'))).toHaveLength(1);
    // progress (a commit) clears it; a partition with lag that keeps committing never stalls
    t.committed.set(1, '20');
    t.advance(5_000);
    await t.mon.refresh();
    expect(t.gauges.get('stalled:1')).toBe(0);
    expect(t.gauges.get('lag:1')).toBe(30);
    t.mon.check();
  });
  it('readiness names only the stalled partitions this instance owns', async () => {
    const t = setup(1_000);
    t.mon.setOwnedPartitions([0]);
    await t.mon.refresh();
    t.advance(2_000);
    await t.mon.refresh();
    expect(t.gauges.get('stalled:1')).toBe(1);
    t.mon.check(); // partition 1 is another instance's
    t.mon.setOwnedPartitions([0, 1]);
    expect(() => t.mon.check()).toThrow(/t\[1\]/);
  });
});
