// FairQueue (backfill-queue.ts): the next backfill slice goes to the organization that used the least
// backfill time; a newly joining organization is served next, not after everyone else's backlog.
import { describe, expect, it } from 'vitest';
import { FairQueue } from '../src/backfill-queue.ts';

const all = () => true;

describe('FairQueue', () => {
  it('a fresh organization is served within one slice of a 500-item backlog', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 500; i++) q.push('big', `big-${i}`);
    for (let i = 0; i < 10; i++) {
      const t = q.take(all);
      expect(t?.org).toBe('big');
      q.done('big', 100, t?.item);
    }
    q.push('fresh', 'fresh-1', true);
    const next = q.take(all);
    expect(next).toEqual({ org: 'fresh', item: 'fresh-1' });
  });

  it('shares slices by used time, not by item count', () => {
    const q = new FairQueue<string>();
    for (let i = 0; i < 100; i++) q.push('a', `a${i}`);
    for (let i = 0; i < 100; i++) q.push('b', `b${i}`);
    const served = { a: 0, b: 0 };
    for (let i = 0; i < 60; i++) {
      const t = q.take(all);
      if (!t) throw new Error('empty');
      served[t.org as 'a' | 'b']++;
      // a's slices cost 3x b's: b gets ~3x as many
      q.done(t.org, t.org === 'a' ? 300 : 100);
    }
    expect(served.b).toBeGreaterThanOrEqual(3 * served.a - 3);
    expect(served.b).toBeLessThanOrEqual(3 * served.a + 3);
  });

  it('an organization returning from idle gets no banked credit', () => {
    const q = new FairQueue<string>();
    q.push('a', 'a0');
    q.push('b', 'b0');
    for (let i = 0; i < 20; i++) {
      const t = q.take((x) => x.startsWith('a'));
      q.done('a', 100, t?.item);
    }
    // b waited with used 0 while a used 2,000 ms: b goes next, but a joining c starts at the minimum too
    q.push('c', 'c0');
    const order = [q.take(all), q.take(all)].map((t) => t?.org);
    expect(order.sort()).toEqual(['b', 'c']);
  });

  it('urgent items first within an organization; a requeued item keeps its place at the front', () => {
    const q = new FairQueue<string>();
    q.push('a', 'r1');
    q.push('a', 'r2');
    q.push('a', 'u1', true);
    const first = q.take(all);
    expect(first?.item).toBe('u1');
    q.done('a', 1);
    const second = q.take(all);
    expect(second?.item).toBe('r1');
    q.done('a', 1, 'r1');
    expect(q.take(all)?.item).toBe('r1');
  });

  it('skips items not eligible yet and forgets organizations with nothing left', () => {
    const q = new FairQueue<number>();
    q.push('a', 5);
    q.push('b', 1);
    expect(q.take((n) => n < 3)).toEqual({ org: 'b', item: 1 });
    q.done('b', 10);
    expect(q.organizations).toBe(1);
    expect(q.take((n) => n < 3)).toBeNull();
    q.remove((n) => n === 5);
    expect(q.size).toBe(0);
    expect(q.organizations).toBe(0);
  });
});
