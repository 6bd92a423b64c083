// The `customers` table (Postgres, owned by billing) — every service's SQL on it lives here:
//  - the gateway creates/updates customers from Segment `identify` calls (upsertCustomerFromIdentify);
//  - billing's customer API creates, reads, lists, updates and archives them.
// Queries are parameterized; every one is scoped by organization_id.
import type { PgClient, PgPool } from '../clients/postgres.ts';

export interface CustomerRecord {
  customer_id: string;
  name: string | null;
  email: string | null;
  currency: string;
  balance_minor: string;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
}

const COLS = 'customer_id, name, email, currency, balance_minor, metadata, created_at, updated_at, archived_at';

/** Creates or updates a customer from a Segment identify: a null name/email keeps the stored one, other
 *  columns (currency, balance, metadata, archived_at) are kept. */
export async function upsertCustomerFromIdentify(
  pool: PgPool,
  organizationId: string,
  c: { customerId: string; name: string | null; email: string | null },
): Promise<void> {
  await pool.query(
    `INSERT INTO customers (organization_id, customer_id, name, email)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (organization_id, customer_id) DO UPDATE
        SET name = COALESCE(EXCLUDED.name, customers.name),
            email = COALESCE(EXCLUDED.email, customers.email),
            updated_at = now()`,
    [organizationId, c.customerId, c.name, c.email],
  );
}

/** Inserts unless the id exists (archived or not); returns the row and whether it was created. */
export async function insertCustomerIfAbsent(
  pool: PgPool,
  orgId: string,
  c: { customer_id: string; name: string | null; email: string | null; currency: string; balance_minor: bigint; metadata: object },
): Promise<{ row: CustomerRecord; created: boolean }> {
  const ins = await pool.query<CustomerRecord>(
    `INSERT INTO customers (organization_id, customer_id, name, email, currency, balance_minor, metadata)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (organization_id, customer_id) DO NOTHING RETURNING ${COLS}`,
    [orgId, c.customer_id, c.name, c.email, c.currency, c.balance_minor.toString(), JSON.stringify(c.metadata)],
  );
  if (ins.rows[0]) return { row: ins.rows[0], created: true };
  return { row: (await selectCustomer(pool, orgId, c.customer_id, true))!, created: false };
}

export async function selectCustomer(
  pool: PgPool,
  orgId: string,
  customerId: string,
  includeArchived = false,
): Promise<CustomerRecord | null> {
  const { rows } = await pool.query<CustomerRecord>(
    `SELECT ${COLS} FROM customers WHERE organization_id = $1 AND customer_id = $2 ${includeArchived ? '' : 'AND archived_at IS NULL'}`,
    [orgId, customerId],
  );
  return rows[0] ?? null;
}

/** One page (limit + 1 rows, so the caller knows whether there is more), oldest first. */
export async function selectCustomers(
  pool: PgPool,
  orgId: string,
  opts: { limit: number; offset: number; include_archived?: boolean; email?: string },
): Promise<CustomerRecord[]> {
  const { rows } = await pool.query<CustomerRecord>(
    `SELECT ${COLS} FROM customers WHERE organization_id = $1 AND ($2::boolean OR archived_at IS NULL) AND ($3::text IS NULL OR email = $3)
     ORDER BY created_at, customer_id LIMIT $4 OFFSET $5`,
    [orgId, opts.include_archived ?? false, opts.email ?? null, opts.limit + 1, opts.offset],
  );
  return rows;
}

/** Updates the given fields of a live (not archived) customer; undefined leaves a field as is. */
export async function updateCustomerFields(
  pool: PgPool,
  orgId: string,
  customerId: string,
  p: { name?: string | null; email?: string | null; balance_minor?: bigint; metadata?: object },
): Promise<CustomerRecord | null> {
  const { rows } = await pool.query<CustomerRecord>(
    `UPDATE customers SET
       name = CASE WHEN $3::boolean THEN $4 ELSE name END,
       email = CASE WHEN $5::boolean THEN $6 ELSE email END,
       balance_minor = coalesce($7::bigint, balance_minor),
       metadata = coalesce($8::jsonb, metadata),
       updated_at = now()
     WHERE organization_id = $1 AND customer_id = $2 AND archived_at IS NULL RETURNING ${COLS}`,
    [
      orgId,
      customerId,
      p.name !== undefined,
      p.name ?? null,
      p.email !== undefined,
      p.email ?? null,
      p.balance_minor?.toString() ?? null,
      p.metadata ? JSON.stringify(p.metadata) : null,
    ],
  );
  return rows[0] ?? null;
}

/** Archives (idempotent: the first archived_at is kept). */
export async function archiveCustomerRecord(pool: PgPool | PgClient, orgId: string, customerId: string): Promise<CustomerRecord | null> {
  const { rows } = await pool.query<CustomerRecord>(
    `UPDATE customers SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE organization_id = $1 AND customer_id = $2 RETURNING ${COLS}`,
    [orgId, customerId],
  );
  return rows[0] ?? null;
}
