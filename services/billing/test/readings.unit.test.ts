// UsageReadings (usage/readings.ts) with a fake clock and a fake load: the strict bound for consuming
// checks, the longer stale bound for reads, refresh-ahead at half the bound, one load per key.
import { describe, expect, it } from 'vitest';
import { UsageReadings } from '../src/usage/readings.ts';
import type { UsageReading } from '../src/usage/ledger.ts';

function harness(maxAgeMs: number, readStaleMs: number, loadMs: number) {
  let now = 1_000_000;
  let loads = 0;
  const pending: { doneAt: number; finish: () => void }[] = [];
  const readings = new UsageReadings(maxAgeMs, readStaleMs, 100, () => now);
  const load = () =>
    new Promise<UsageReading>((resolve) => {
      loads++;
      const readAtMs = now;
      const n = loads;
      pending.push({ doneAt: now + loadMs, finish: () => resolve({ usage: n, watermarks: '', readAtMs }) });
    });
  /** advances the clock, completing every load that has run for loadMs */
  const advance = async (ms: number) => {
    now += ms;
    for (const p of pending.filter((x) => x.doneAt <= now)) {
      pending.splice(pending.indexOf(p), 1);
      p.finish();
    }
    await new Promise((r) => setImmediate(r));
  };
  return { readings, load, advance, loads: () => loads, now: () => now };
}

describe('usage readings', () => {
  it('a consuming check never gets a reading older than maxAge; reads may get one up to readStale', async () => {
    const h = harness(1_000, 5_000, 10);
    const first = h.readings.get('k', h.load, { strict: true });
    await h.advance(10);
    expect((await first).usage).toBe(1);
    await h.advance(3_000); // 3 s old: a read is served it at once (and a refresh starts) ...
    expect((await h.readings.get('k', h.load, { strict: false })).usage).toBe(1);
    expect(h.loads()).toBe(2);
    // ... a consuming check is not: it waits for a reading taken after now - maxAge
    const strict = h.readings.get('k', h.load, { strict: true });
    let settled = false;
    strict.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    await h.advance(10);
    const r = await strict;
    expect(r.usage).toBe(2);
    expect(h.now() - r.readAtMs).toBeLessThanOrEqual(1_000);
  });

  it('steady traffic is served from refresh-ahead without waiting, with one load per key in flight', async () => {
    const h = harness(2_000, 5_000, 300);
    const p = h.readings.get('k', h.load, { strict: true });
    await h.advance(300);
    await p;
    let waited = 0;
    for (let i = 0; i < 200; i++) {
      let got: UsageReading | null = null;
      h.readings.get('k', h.load, { strict: true }).then((r) => (got = r));
      await new Promise((r) => setImmediate(r));
      if (got === null) waited++;
      else expect(h.now() - (got as UsageReading).readAtMs).toBeLessThanOrEqual(2_000);
      await h.advance(50);
    }
    expect(waited).toBe(0);
    // 200 × 50 ms = 10 s of traffic, a refresh once a reading is 1 s old: about 10 loads, not 200
    expect(h.loads()).toBeGreaterThan(5);
    expect(h.loads()).toBeLessThan(20);
  });

  it('after the ledger answers "stale", a reading taken later than the refused one', async () => {
    const h = harness(2_000, 5_000, 10);
    const a = h.readings.get('k', h.load, { strict: true });
    await h.advance(10);
    const refused = await a;
    await h.advance(1);
    const b = h.readings.get('k', h.load, { strict: true, newerThanMs: refused.readAtMs });
    await h.advance(10);
    expect((await b).readAtMs).toBeGreaterThan(refused.readAtMs);
  });
});
