// The cluster drill's own arithmetic (no services): probe customers cover every partition, "fresh again"
// and staleness are computed from the probes as documented, and the check verdicts catch an over-grant,
// a lost grant and usage from nowhere. The drill itself runs with `npm run test:cluster`.
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { CheckStreamer, judgeCustomer, type CheckRecord } from './checks.ts';
import { FreshnessProbe, probeCustomers } from './freshness.ts';

const meta = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ partitionErrorCode: 0, partitionId: i, leader: 0, replicas: [0], isr: [0], offlineReplicas: [] }));

describe('probeCustomers', () => {
  it('picks one customer per partition under the gateway partitioner', () => {
    const org = 'org_abc123';
    const customers = probeCustomers(org, 6, 'probe_');
    const partitioner = Partitioners.DefaultPartitioner();
    const parts = customers.map((c) =>
      partitioner({ topic: 't', partitionMetadata: meta(6), message: { key: `${org}/${c}`, value: null } }),
    );
    expect(parts).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('FreshnessProbe arithmetic', () => {
  const probe = new FreshnessProbe([], 'k', ['a', 'b'], {
    runId: 'r',
    eventName: 'e',
    organizationId: 'o',
    database: 'd',
    replicas: [],
    intervalMs: 500,
  });
  // a: acked at 100 seen 600 (replica 2 first); b: acked 1000 seen 4000; a again: acked 1200 seen 1500; b: acked 1300 never seen
  probe.probes.push(
    { id: '1', customer: 'a', ackAt: 100, seenAt: [900, 600] },
    { id: '2', customer: 'b', ackAt: 1_000, seenAt: [4_000, null] },
    { id: '3', customer: 'a', ackAt: 1_200, seenAt: [null, 1_500] },
    { id: '4', customer: 'b', ackAt: 1_300, seenAt: [null, null] },
  );

  it('is fresh again when every customer has a probe acknowledged after the repair that is visible', () => {
    expect(probe.recovery(0)).toEqual({ freshAt: 4_000, worstFreshnessMs: 3_000 });
    // after 1,100 only b's probe 4 exists, unseen: not fresh yet
    expect(probe.recovery(1_100)).toEqual({ freshAt: null, worstFreshnessMs: null });
  });

  it('reports the worst staleness in a window, unseen probes counting until now', () => {
    expect(probe.maxStalenessMs(0, 1_250)).toBe(3_000);
    expect(probe.maxStalenessMs(1_250, 2_000, 10_000)).toBe(8_700);
    expect(probe.freshnessSamples(0, 2_000).sort((x, y) => x - y)).toEqual([300, 500, 3_000]);
  });
});

describe('judgeCustomer', () => {
  const streamer = (records: Partial<CheckRecord>[]) => {
    const s = new CheckStreamer(['http://127.0.0.1:1'], 'k', ['c0'], { checksPerSec: 1, maxOutstanding: 1, requestTimeoutMs: 1 });
    for (const r of records)
      s.records.push({
        customer: 0,
        instance: 0,
        units: 1,
        sentAt: 0,
        latencyMs: 1,
        outcome: 'granted',
        status: 200,
        code: null,
        reason: null,
        ...r,
      });
    return s;
  };

  it('accepts usage between the granted and granted + indeterminate units, within the limit', () => {
    const s = streamer([
      { units: 3 },
      { units: 2 },
      { units: 2, outcome: 'indeterminate', status: 0 },
      { outcome: 'denied', reason: 'usage_limit_exceeded' },
    ]);
    expect(judgeCustomer(s, 0, 7, [7, 7], [7, 7]).violations).toEqual([]);
    expect(judgeCustomer(s, 0, 7, [5, 5], [5, 5]).violations).toEqual([]);
  });

  it('flags an over-grant, a lost grant, usage from nowhere and a replica that disagrees', () => {
    const s = streamer([{ units: 3 }, { units: 3 }]);
    const rules = (usage: number[], raw: number[], limit = 10) =>
      judgeCustomer(s, 0, limit, usage, raw).violations.map((v) => v.split(':')[0]);
    expect(rules([6, 6], [6, 6], 5)).toEqual(['over_grant', 'over_grant', 'over_grant_answers']);
    expect(rules([5, 6], [6, 6])).toEqual(['granted_unit_lost', 'usage_vs_raw']);
    expect(rules([7, 7], [7, 7])).toEqual(['usage_from_nowhere', 'usage_from_nowhere']);
    expect(rules([6, 6], [6, 5])).toEqual(['usage_vs_raw']);
  });
});
