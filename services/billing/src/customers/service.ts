// Customers: the id is chosen by the caller; creating it again with identical data is idempotent
// (200 with the existing customer), with different data a 409 that names the differing fields.
import { isDeepStrictEqual } from 'node:util';
import { withTransaction } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import { fitsMinor, fromMinor, toMinor } from '../money.ts';
import * as store from './store.ts';
import * as subs from '../subscriptions/store.ts';
import * as invoices from '../invoices/store.ts';
import { subscriptionJson } from '../subscriptions/service.ts';
import { currentPeriod } from '../subscriptions/current.ts';
import { enqueueIfWanted } from '../webhooks/outbox.ts';

export interface CustomerInput {
  customer_id: string;
  name?: string | null;
  email?: string | null;
  currency?: string;
  balance?: string;
  metadata?: Record<string, unknown>;
}

export async function createCustomer(deps: Deps, orgId: string, input: CustomerInput) {
  const currency = (input.currency ?? 'USD').toUpperCase();
  const balance = input.balance ?? '0';
  if (!fitsMinor(balance, currency)) throw badRequest(`balance has more decimals than ${currency} allows`);
  const want = {
    customer_id: input.customer_id,
    name: input.name ?? null,
    email: input.email ?? null,
    currency,
    balance_minor: toMinor(balance, currency),
    metadata: input.metadata ?? {},
  };
  // customer.created is written with the row (webhooks/outbox.ts)
  const { row, created } = await withTransaction(deps.pool, async (db) => {
    const r = await store.insertCustomer(db, orgId, want);
    if (r.created) await enqueueIfWanted(db, orgId, 'customer.created', () => store.customerJson(r.row));
    return r;
  });
  if (created) {
    await deps.cache.invalidateCustomer(orgId, input.customer_id);
    return { created, customer: store.customerJson(row) };
  }
  const existing = store.customerJson(row);
  const diffs: string[] = [];
  if (existing.name !== want.name) diffs.push('name');
  if (existing.email !== want.email) diffs.push('email');
  if (existing.currency !== want.currency) diffs.push('currency');
  if (existing.balance !== fromMinor(want.balance_minor, currency)) diffs.push('balance');
  if (!isDeepStrictEqual(existing.metadata, want.metadata)) diffs.push('metadata');
  if (existing.archived_at) diffs.push('archived_at');
  if (diffs.length) throw conflict(`customer "${input.customer_id}" already exists with different ${diffs.join(', ')}`, { fields: diffs });
  return { created: false, customer: existing };
}

export async function requireCustomer(deps: Deps, orgId: string, customerId: string) {
  const row = await store.getCustomer(deps.pool, orgId, customerId);
  if (!row) throw notFound('customer', customerId);
  return row;
}

export async function customerDetail(deps: Deps, orgId: string, customerId: string) {
  const row = await store.getCustomer(deps.pool, orgId, customerId, true);
  if (!row) throw notFound('customer', customerId);
  const currency = row.currency.trim();
  const [subRows, invRows, due] = await Promise.all([
    subs.listSubscriptions(deps.pool, orgId, { customer_id: customerId, limit: 100, offset: 0 }),
    invoices.listInvoices(deps.pool, orgId, { customer_id: customerId, limit: 100, offset: 0 }),
    invoices.amountDue(deps.pool, orgId, customerId),
  ]);
  const dueMinor = due.get(currency) ?? 0n;
  return {
    ...store.customerJson(row),
    subscriptions: subRows.slice(0, 100).map((r) => subscriptionJson(r, deps.now())),
    invoices: invRows.slice(0, 100).map(invoices.invoiceJson),
    total_amount_due: fromMinor(dueMinor, currency),
    // prepaid credit is applied first: what is still owed after the balance
    net_amount_due: fromMinor(dueMinor > BigInt(row.balance_minor) ? dueMinor - BigInt(row.balance_minor) : 0n, currency),
    amount_due_by_currency: Object.fromEntries([...due.entries()].map(([c, m]) => [c, fromMinor(m, c)])),
  };
}

export async function updateCustomer(
  deps: Deps,
  orgId: string,
  customerId: string,
  p: { name?: string | null; email?: string | null; balance?: string; metadata?: Record<string, unknown> },
) {
  const current = await requireCustomer(deps, orgId, customerId);
  const currency = current.currency.trim();
  if (p.balance !== undefined && !fitsMinor(p.balance, currency)) throw badRequest(`balance has more decimals than ${currency} allows`);
  const row = await withTransaction(deps.pool, async (db) => {
    const r = await store.updateCustomer(db, orgId, customerId, {
      name: p.name,
      email: p.email,
      metadata: p.metadata,
      balance_minor: p.balance !== undefined ? toMinor(p.balance, currency) : undefined,
    });
    if (r) await enqueueIfWanted(db, orgId, 'customer.updated', () => store.customerJson(r));
    return r;
  });
  if (!row) throw notFound('customer', customerId);
  await deps.cache.invalidateCustomer(orgId, customerId);
  return store.customerJson(row);
}

/**
 * Archives a customer that has no live subscription: one that is still active or not started answers
 * 409 with their ids (end them first: POST /v1/subscriptions/:id/cancel), so an archived customer is
 * never invoiced again. Serialized with subscription creation by the customer's row lock.
 */
export async function archiveCustomer(deps: Deps, orgId: string, customerId: string) {
  const now = deps.now();
  const row = await withTransaction(deps.pool, async (db) => {
    const locked = await db.query('SELECT 1 FROM customers WHERE organization_id = $1 AND customer_id = $2 FOR UPDATE', [
      orgId,
      customerId,
    ]);
    if (locked.rowCount === 0) return null;
    const live = (await subs.liveSubscriptions(db, orgId, customerId))
      .map((x) => currentPeriod(x, now))
      .filter((x) => x.status !== 'ended');
    if (live.length)
      throw conflict(`customer "${customerId}" has live subscriptions; end them before archiving`, {
        subscription_ids: live.map((x) => x.subscription_id),
      });
    return store.archiveCustomer(db, orgId, customerId);
  });
  if (!row) throw notFound('customer', customerId);
  await deps.cache.invalidateCustomer(orgId, customerId);
  return store.customerJson(row);
}
