// Billing's customers store: the SQL is core's customers repository (packages/core/src/customers), which
// the gateway's Segment identify upsert uses too; this module adds billing's JSON shape (money formatting).
import {
  archiveCustomerRecord,
  insertCustomerIfAbsent,
  selectCustomer,
  selectCustomers,
  updateCustomerFields,
  type CustomerRecord,
  type PgClient,
  type PgPool,
} from '@meterline/core';
import { fromMinor } from '../money.ts';

export type CustomerRow = CustomerRecord;

export function customerJson(r: CustomerRow) {
  return {
    customer_id: r.customer_id,
    name: r.name,
    email: r.email,
    currency: r.currency.trim(),
    balance: fromMinor(r.balance_minor, r.currency.trim()),
    metadata: r.metadata,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    archived_at: r.archived_at?.toISOString() ?? null,
  };
}

/** Inserts unless the id exists; returns the row and whether it was created. */
export async function insertCustomer(
  pool: PgPool | PgClient,
  orgId: string,
  c: { customer_id: string; name: string | null; email: string | null; currency: string; balance_minor: bigint; metadata: object },
) {
  return insertCustomerIfAbsent(pool as PgPool, orgId, c); // core's repository only calls query()
}

export async function getCustomer(pool: PgPool, orgId: string, customerId: string, includeArchived = false): Promise<CustomerRow | null> {
  return selectCustomer(pool, orgId, customerId, includeArchived);
}

export async function listCustomers(
  pool: PgPool,
  orgId: string,
  opts: { limit: number; offset: number; include_archived?: boolean; email?: string },
) {
  return selectCustomers(pool, orgId, opts);
}

export async function updateCustomer(
  pool: PgPool | PgClient,
  orgId: string,
  customerId: string,
  p: { name?: string | null; email?: string | null; balance_minor?: bigint; metadata?: object },
) {
  return updateCustomerFields(pool as PgPool, orgId, customerId, p);
}

export async function archiveCustomer(pool: PgPool | PgClient, orgId: string, customerId: string) {
  return archiveCustomerRecord(pool, orgId, customerId);
}
