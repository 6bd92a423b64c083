// Reduced fault drill for the full test suite (`npm test`): every fault kind once, at a lower rate, on
// its own private stack (ports 19420..19427). The full drill (3 injections each) is `npm run test:faults`.
import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, faultTable, runDrill } from './drill.ts';

describe('fault drill (reduced)', () => {
  it(
    'loses and doubles nothing under kill -9, broker restart, ClickHouse outage and Redis restart',
    async () => {
      const report = await runDrill({
        basePort: 19420,
        repetitions: 1,
        eventsPerSec: 300,
        batchSize: 20,
        concurrency: 3,
        steadyMs: 2_000,
        clickhouseDownMs: 30_000,
        settleTimeoutMs: 120_000,
        log: () => undefined,
      });
      console.log(faultTable(report.rows));
      // every fault kind ran, and every acknowledged event is in ClickHouse once, raw and aggregated
      expect(report.rows.map((r) => r.fault).sort()).toEqual([...FAULT_KINDS].sort());
      for (const row of report.rows) {
        expect(row.acknowledged, `${row.fault}: something must have been acknowledged`).toBeGreaterThan(0);
        expect({ fault: row.fault, lost: row.lost, doubled: row.doubled }).toEqual({ fault: row.fault, lost: 0, doubled: 0 });
        expect(row.countedAggregates).toBe(row.countedRaw);
      }
    },
    15 * 60_000,
  );
});
