// PostgreSQL via node-postgres (`pg`): the well-kept driver with parameterized queries, pooling and
// transactions, so no SQL is ever built by string concatenation.
import pg from 'pg';

export type PgPool = pg.Pool;
export type PgClient = pg.PoolClient;

// BIGINT (int8) columns hold money in minor units and counters: parse them as BigInt-safe strings
// would be awkward for callers, so they come back as JS strings unless converted explicitly.
export function createPostgres(url: string, opts: { max?: number; applicationName?: string } = {}): PgPool {
  return new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'meterline',
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
  });
}

/** Runs fn inside a transaction on one pooled connection; rolls back on error. */
export async function withTransaction<T>(pool: PgPool, fn: (client: PgClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * What a failed Postgres call means for the client:
 *  - 'data': the server refused the values (SQLSTATE class 22 data exception — e.g. 22021 a NUL byte or
 *    invalid UTF-8, 22001 too long — or 23 integrity constraint): a 4xx / rejected message, never a retry;
 *  - 'unavailable': no answer or a transient server state (no SQLSTATE: connection refused/reset,
 *    timeouts, pool errors; class 08 connection, 53 resources, 57 operator intervention / shutdown,
 *    58 system, 40 serialization/deadlock): 503, retry later;
 *  - 'internal': any other SQLSTATE (a bug in our SQL): 500.
 */
export function postgresFailureKind(err: unknown): 'data' | 'unavailable' | 'internal' {
  // Only the server's ErrorResponse (pg's DatabaseError: has `severity`) carries a SQLSTATE; node's
  // socket errors have codes too (EPIPE, ECONNRESET).
  const e = err as { code?: unknown; severity?: unknown } | null;
  const code = e?.code;
  if (typeof e?.severity !== 'string' || typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return 'unavailable';
  const cls = code.slice(0, 2);
  if (cls === '22' || cls === '23') return 'data';
  if (['08', '53', '57', '58', '40'].includes(cls)) return 'unavailable';
  return 'internal';
}
