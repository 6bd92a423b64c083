import type { PgPool } from '@meterline/core';
import { fromMinor } from '../money.ts';

export interface CustomerRow {
  customer_id: string; name: string | null; email: string | null; currency: string; balance_minor: string;
  metadata: Record<string, unknown>; created_at: Date; updated_at: Date; archived_at: Date | null;
}

export function customerJson(r: CustomerRow) {
  return {
    customer_id: r.customer_id, name: r.name, email: r.email, currency: r.currency.trim(),
    balance: fromMinor(r.balance_minor, r.currency.trim()), metadata: r.metadata,
    created_at: r.created_at.toISOString(), updated_at: r.updated_at.toISOString(), archived_at: r.archived_at?.toISOString() ?? null,
  };
}

const COLS = 'customer_id, name, email, currency, balance_minor, metadata, created_at, updated_at, archived_at';

/** Inserts unless the id exists; returns the row and whether it was created. */
export async function insertCustomer(pool: PgPool, orgId: string, c: { customer_id: string; name: string | null; email: string | null; currency: string; balance_minor: bigint; metadata: object }) {
  const ins = await pool.query<CustomerRow>(
    `INSERT INTO customers (organization_id, customer_id, name, email, currency, balance_minor, metadata)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (organization_id, customer_id) DO NOTHING RETURNING ${COLS}`,
    [orgId, c.customer_id, c.name, c.email, c.currency, c.balance_minor.toString(), JSON.stringify(c.metadata)],
  );
  if (ins.rows[0]) return { row: ins.rows[0], created: true };
  return { row: (await getCustomer(pool, orgId, c.customer_id, true))!, created: false };
}

export async function getCustomer(pool: PgPool, orgId: string, customerId: string, includeArchived = false): Promise<CustomerRow | null> {
  const { rows } = await pool.query<CustomerRow>(
    `SELECT ${COLS} FROM customers WHERE organization_id = $1 AND customer_id = $2 ${includeArchived ? '' : 'AND archived_at IS NULL'}`,
    [orgId, customerId],
  );
  return rows[0] ?? null;
}

export async function listCustomers(pool: PgPool, orgId: string, opts: { limit: number; offset: number; include_archived?: boolean; email?: string }) {
  const { rows } = await pool.query<CustomerRow>(
    `SELECT ${COLS} FROM customers WHERE organization_id = $1 AND ($2::boolean OR archived_at IS NULL) AND ($3::text IS NULL OR email = $3)
     ORDER BY created_at, customer_id LIMIT $4 OFFSET $5`,
    [orgId, opts.include_archived ?? false, opts.email ?? null, opts.limit + 1, opts.offset],
  );
  return rows;
}

export async function updateCustomer(pool: PgPool, orgId: string, customerId: string, p: { name?: string | null; email?: string | null; balance_minor?: bigint; metadata?: object }) {
  const { rows } = await pool.query<CustomerRow>(
    `UPDATE customers SET
       name = CASE WHEN $3::boolean THEN $4 ELSE name END,
       email = CASE WHEN $5::boolean THEN $6 ELSE email END,
       balance_minor = coalesce($7::bigint, balance_minor),
       metadata = coalesce($8::jsonb, metadata),
       updated_at = now()
     WHERE organization_id = $1 AND customer_id = $2 AND archived_at IS NULL RETURNING ${COLS}`,
    [orgId, customerId, p.name !== undefined, p.name ?? null, p.email !== undefined, p.email ?? null, p.balance_minor?.toString() ?? null, p.metadata ? JSON.stringify(p.metadata) : null],
  );
  return rows[0] ?? null;
}

export async function archiveCustomer(pool: PgPool, orgId: string, customerId: string) {
  const { rows } = await pool.query<CustomerRow>(
    `UPDATE customers SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE organization_id = $1 AND customer_id = $2 RETURNING ${COLS}`,
    [orgId, customerId],
  );
  return rows[0] ?? null;
}
