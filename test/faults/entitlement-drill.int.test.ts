// Reduced entitlement-check fault drill for the full suite: 2 billing instances, 2 kill -9s, one Redis
// restart, one Kafka restart, on its own private stack (ports 19490..19497). The full drill (12 kills,
// 2 + 2 restarts, 3 instances) is `npm run test:faults:entitlements`.
import { describe, expect, it } from 'vitest';
import { customerTable, runEntitlementDrill, windowTable } from './entitlement-drill.ts';

describe('entitlement fault drill (reduced)', () => {
  it(
    'never over-grants, loses no granted unit and answers 503s (not 500s or hangs) under kill -9, Redis and Kafka restarts',
    async () => {
      const report = await runEntitlementDrill({
        basePort: 19490,
        billingInstances: 2,
        billingKills: 2,
        redisRestarts: 1,
        kafkaRestarts: 1,
        customers: 2,
        limit: 600,
        checksPerSec: 60,
        maxOutstanding: 128,
        requestTimeoutMs: 15_000,
        answerDeadlineMs: 10_000,
        steadyMs: 2_000,
        tailMs: 2_000,
        exhaustTimeoutMs: 30_000,
        settleTimeoutMs: 60_000,
        log: () => undefined,
      });
      console.log(customerTable(report.customers));
      console.log(windowTable(report.windows));
      expect(report.faults.map((f) => f.kind).sort()).toEqual(['billing_kill9', 'billing_kill9', 'kafka_restart', 'redis_restart']);
      for (const c of report.customers) {
        expect(c.grantedUnits, `${c.customerId}: something must have been granted`).toBeGreaterThan(0);
        expect(c.deniedAtLimit, `${c.customerId}: the limit must have been reached`).toBeGreaterThan(0);
      }
      expect(report.violations).toEqual([]);
    },
    4 * 60_000,
  );
});
