// /healthz, /readyz and /metrics for every service, as one Fastify plugin.
//   /healthz: the process is alive (always 200 while the event loop runs).
//   /readyz:  every dependency check passes (200) or not (503 with which one failed).
//   /metrics: Prometheus text format.
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { withTimeout } from '../util/with-timeout.ts';

export type ReadinessCheck = () => Promise<void>;

/** The usual dependency checks: Postgres `SELECT 1`, Redis `PING`, ClickHouse `/ping` (only those given). */
export function dependencyChecks(deps: {
  pool?: { query: (sql: string) => Promise<unknown> };
  redis?: { ping: () => Promise<unknown> };
  ch?: { ping: () => Promise<{ success: boolean }> };
}): Record<string, ReadinessCheck> {
  const checks: Record<string, ReadinessCheck> = {};
  const { pool, redis, ch } = deps;
  if (pool)
    checks.postgres = async () => {
      await pool.query('SELECT 1');
    };
  if (redis)
    checks.redis = async () => {
      await redis.ping();
    };
  if (ch)
    checks.clickhouse = async () => {
      if (!(await ch.ping()).success) throw new Error('clickhouse ping failed');
    };
  return checks;
}

export function opsRoutes(opts: { registry: Registry; checks: Record<string, ReadinessCheck>; isShuttingDown?: () => boolean }) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      if (opts.isShuttingDown?.()) return reply.code(503).send({ status: 'shutting_down' });
      const results: Record<string, string> = {};
      let ok = true;
      await Promise.all(
        Object.entries(opts.checks).map(async ([name, check]) => {
          try {
            await withTimeout(check(), 2_000);
            results[name] = 'ok';
          } catch (err) {
            ok = false;
            results[name] = (err as Error).message || 'failed';
          }
        }),
      );
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks: results });
    });
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', opts.registry.contentType);
      return opts.registry.metrics();
    });
  };
}
