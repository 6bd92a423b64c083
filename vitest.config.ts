import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Workspaces resolve @meterline/sdk to its source through the "@meterline/source" export condition
// (tsc has it in tsconfig.base.json's customConditions); only installs of the package use its dist/.
const sourceConditions = { resolve: { conditions: ['@meterline/source', ...defaultServerConditions] } };

// Two projects run by one command (`npm test`):
//   unit:        *.unit.test.ts, no services, fakes allowed, run in parallel.
//   integration: *.int.test.ts, the real Kafka/ClickHouse/Redis/Postgres of the local stack (or the
//                ones named by environment variables), one file at a time because they share a broker.
export default defineConfig({
  test: {
    projects: [
      {
        ssr: sourceConditions,
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.unit.test.ts', 'services/*/test/**/*.unit.test.ts', 'test/**/*.unit.test.ts'],
          environment: 'node',
        },
      },
      {
        ssr: sourceConditions,
        test: {
          name: 'integration',
          include: ['packages/*/test/**/*.int.test.ts', 'services/*/test/**/*.int.test.ts', 'test/**/*.int.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
