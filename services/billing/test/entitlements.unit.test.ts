import { describe, expect, it, vi } from 'vitest';
import { consumptionEvents, satisfyingProperties } from '../src/entitlements/service.ts';
import { TtlCache } from '../src/cache.ts';
import type { MetricRow } from '../src/metrics/store.ts';

const metric = (over: Partial<MetricRow>): MetricRow => ({
  metric_id: 'm',
  version: 1,
  name: null,
  event_name: 'ev',
  aggregation: 'count',
  property: null,
  filters: [],
  group_by: [],
  created_at: new Date(),
  updated_at: new Date(),
  archived_at: null,
  ...over,
});

describe('consumption events', () => {
  it('satisfy the metric filters so the aggregator counts them', () => {
    const p = satisfyingProperties([
      { property: 'model', operator: 'equals', value: 'big' },
      { property: 'region', operator: 'in', values: ['eu', 'us'] },
      { property: 'size', operator: 'gt', value: 10 },
      { property: 'tier', operator: 'not_in', values: ['free'] },
    ]);
    expect(p.model).toBe('big');
    expect(p.region).toBe('eu');
    expect(p.size).toBe(11);
    expect(['free']).not.toContain(p.tier);
  });
  it('count: one event per unit; sum: one event carrying the amount; latest: the gauge value', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const c = consumptionEvents('org', 'cus', metric({}), 3, 0, now);
    expect(c).toHaveLength(3);
    expect(new Set(c.map((e) => e.idempotencyId)).size).toBe(3);
    expect(c[0]).toMatchObject({ organizationId: 'org', customerId: 'cus', eventName: 'ev', timeCreatedMs: now });
    const s = consumptionEvents('org', 'cus', metric({ aggregation: 'sum', property: 'tokens' }), 250, 0, now);
    expect(s.map((e) => e.properties.tokens)).toEqual([250]);
    const g = consumptionEvents('org', 'cus', metric({ aggregation: 'latest', property: 'seats' }), 0, 4, now);
    expect(g.map((e) => e.properties.seats)).toEqual([4]);
    expect(() => consumptionEvents('org', 'cus', metric({}), 1.5, 0, now)).toThrow(/whole number/);
  });
});

describe('TtlCache', () => {
  it('shares one in-flight load and drops failures', async () => {
    const cache = new TtlCache<number>(1000);
    let loads = 0;
    const load = async () => {
      loads++;
      return 7;
    };
    expect(await Promise.all([cache.get('k', load), cache.get('k', load)])).toEqual([7, 7]);
    expect(loads).toBe(1);
    await expect(
      cache.get('bad', async () => {
        throw new Error('x');
      }),
    ).rejects.toThrow('x');
    expect(await cache.get('bad', load)).toBe(7);
    cache.deletePrefix('k');
    await cache.get('k', load);
    expect(loads).toBe(3);
  });

  it('counts the TTL from when a slow load finishes, and serves the old value while one refresh runs', async () => {
    vi.useFakeTimers();
    try {
      const cache = new TtlCache<number>(250);
      let loads = 0;
      const slowLoad = () =>
        new Promise<number>((resolve) => {
          loads++;
          const n = loads;
          setTimeout(() => resolve(n), 400);
        });
      const first = cache.get('u', slowLoad);
      await vi.advanceTimersByTimeAsync(400); // the load takes longer than the TTL
      expect(await first).toBe(1);
      expect(await cache.get('u', slowLoad)).toBe(1); // still fresh: TTL started when the load finished
      expect(loads).toBe(1);
      await vi.advanceTimersByTimeAsync(300); // now expired
      expect(await cache.get('u', slowLoad)).toBe(1); // old value served, one refresh started
      expect(await cache.get('u', slowLoad)).toBe(1); // no second refresh while one runs
      expect(loads).toBe(2);
      await vi.advanceTimersByTimeAsync(400);
      expect(await cache.get('u', slowLoad)).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
