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
