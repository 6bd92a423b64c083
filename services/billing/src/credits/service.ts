// Prepaid credit grants (Lotus balance / Autumn balances / Orb credits): an amount in one currency,
// effective from a date, optionally expiring, with a priority. Applied to invoices when they are
// finalized (invoices/settle.ts); every change is a row of the balance history (credit_transactions).
// Amounts are integer minor units inside, decimal strings in the API.
import { withTransaction, type PgClient, type PgPool } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import { fitsMinor, fromMinor, minorInRange, toMinor } from '../money.ts';
import { newId } from '../orgs/store.ts';
import * as customers from '../customers/store.ts';

interface GrantRow {
  grant_id: string;
  customer_id: string;
  currency: string;
  amount_minor: string;
  remaining_minor: string;
  priority: number;
  effective_at: Date;
  expires_at: Date | null;
  description: string | null;
  voided_at: Date | null;
  created_at: Date;
}
const COLS =
  'grant_id, customer_id, currency, amount_minor::text AS amount_minor, remaining_minor::text AS remaining_minor, priority, effective_at, expires_at, description, voided_at, created_at';

function status(g: GrantRow, now: Date) {
  if (g.voided_at) return 'void' as const;
  if (g.expires_at && g.expires_at.getTime() <= now.getTime()) return 'expired' as const;
  if (g.effective_at.getTime() > now.getTime()) return 'pending' as const;
  if (BigInt(g.remaining_minor) === 0n) return 'depleted' as const;
  return 'active' as const;
}

function grantJson(g: GrantRow, now: Date) {
  const cur = g.currency.trim();
  return {
    grant_id: g.grant_id,
    customer_id: g.customer_id,
    currency: cur,
    amount: fromMinor(g.amount_minor, cur),
    remaining: fromMinor(g.remaining_minor, cur),
    priority: g.priority,
    effective_at: g.effective_at.toISOString(),
    expires_at: g.expires_at?.toISOString() ?? null,
    description: g.description,
    status: status(g, now),
    created_at: g.created_at.toISOString(),
  };
}

async function record(db: PgClient, orgId: string, g: { grant_id: string; customer_id: string }, kind: string, amountMinor: bigint) {
  await db.query(
    `INSERT INTO credit_transactions (organization_id, transaction_id, grant_id, customer_id, kind, amount_minor) VALUES ($1, $2, $3, $4, $5, $6)`,
    [orgId, newId('ctx'), g.grant_id, g.customer_id, kind, amountMinor.toString()],
  );
}

function minorOf(amount: string, currency: string): bigint {
  if (!fitsMinor(amount, currency)) throw badRequest(`amount has more decimals than ${currency} allows`);
  const m = toMinor(amount, currency);
  if (m <= 0n) throw badRequest('amount must be greater than 0');
  if (!minorInRange(m)) throw badRequest('amount out of range');
  return m;
}

export async function grantCredit(
  deps: Deps,
  orgId: string,
  customerId: string,
  input: { amount: string; currency?: string; effective_at?: string; expires_at?: string | null; priority?: number; description?: string },
) {
  const now = deps.now();
  const customer = await customers.getCustomer(deps.pool, orgId, customerId);
  if (!customer) throw notFound('customer', customerId);
  return withTransaction(deps.pool, (db) => grantCreditIn(db, orgId, customer, input, now));
}

/** grantCredit inside the caller's transaction `db` (e.g. a referral's rewards, referrals/service.ts). */
export async function grantCreditIn(
  db: PgClient,
  orgId: string,
  customer: { customer_id: string; currency: string },
  input: { amount: string; currency?: string; effective_at?: string; expires_at?: string | null; priority?: number; description?: string },
  now: Date,
) {
  const customerId = customer.customer_id;
  const currency = input.currency ?? customer.currency.trim();
  const amount = minorOf(input.amount, currency);
  const effective = input.effective_at ? new Date(input.effective_at) : now;
  const expires = input.expires_at ? new Date(input.expires_at) : null;
  if (expires && expires.getTime() <= effective.getTime()) throw badRequest('expires_at must be after effective_at');
  const grantId = newId('cg');
  const { rows } = await db.query<GrantRow>(
    `INSERT INTO credit_grants (organization_id, grant_id, customer_id, currency, amount_minor, remaining_minor, priority, effective_at, expires_at, description)
     VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9) RETURNING ${COLS}`,
    [orgId, grantId, customerId, currency, amount.toString(), input.priority ?? 0, effective, expires, input.description ?? null],
  );
  await record(db, orgId, { grant_id: grantId, customer_id: customerId }, 'grant', amount);
  return grantJson(rows[0]!, now);
}

async function lockGrant(db: PgClient, orgId: string, grantId: string) {
  const { rows } = await db.query<GrantRow>(`SELECT ${COLS} FROM credit_grants WHERE organization_id = $1 AND grant_id = $2 FOR UPDATE`, [
    orgId,
    grantId,
  ]);
  if (!rows[0]) throw notFound('credit grant', grantId);
  return rows[0];
}

export async function topUp(deps: Deps, orgId: string, grantId: string, input: { amount: string }) {
  const now = deps.now();
  const row = await withTransaction(deps.pool, async (db) => {
    const g = await lockGrant(db, orgId, grantId);
    const s = status(g, now);
    if (s === 'void' || s === 'expired') throw conflict(`credit grant "${grantId}" is ${s}`);
    const amount = minorOf(input.amount, g.currency.trim());
    if (!minorInRange(BigInt(g.amount_minor) + amount)) throw badRequest('amount out of range');
    const { rows } = await db.query<GrantRow>(
      `UPDATE credit_grants SET amount_minor = amount_minor + $3, remaining_minor = remaining_minor + $3
        WHERE organization_id = $1 AND grant_id = $2 RETURNING ${COLS}`,
      [orgId, grantId, amount.toString()],
    );
    await record(db, orgId, g, 'top_up', amount);
    return rows[0]!;
  });
  return grantJson(row, now);
}

export async function voidGrant(deps: Deps, orgId: string, grantId: string) {
  const now = deps.now();
  const row = await withTransaction(deps.pool, async (db) => {
    const g = await lockGrant(db, orgId, grantId);
    if (g.voided_at) throw conflict(`credit grant "${grantId}" is void already`);
    const { rows } = await db.query<GrantRow>(
      `UPDATE credit_grants SET remaining_minor = 0, voided_at = $3 WHERE organization_id = $1 AND grant_id = $2 RETURNING ${COLS}`,
      [orgId, grantId, now],
    );
    if (BigInt(g.remaining_minor) > 0n) await record(db, orgId, g, 'void', -BigInt(g.remaining_minor));
    return rows[0]!;
  });
  return grantJson(row, now);
}

export async function creditBalance(deps: Deps, orgId: string, customerId: string) {
  const now = deps.now();
  const customer = await customers.getCustomer(deps.pool, orgId, customerId, true);
  if (!customer) throw notFound('customer', customerId);
  const { rows } = await deps.pool.query<GrantRow>(
    `SELECT ${COLS} FROM credit_grants WHERE organization_id = $1 AND customer_id = $2 ORDER BY priority, expires_at NULLS LAST, created_at, grant_id`,
    [orgId, customerId],
  );
  const balance = new Map<string, bigint>();
  for (const g of rows)
    if (status(g, now) === 'active') balance.set(g.currency.trim(), (balance.get(g.currency.trim()) ?? 0n) + BigInt(g.remaining_minor));
  return {
    customer_id: customerId,
    balance: Object.fromEntries([...balance].map(([c, m]) => [c, fromMinor(m, c)])),
    grants: rows.map((g) => grantJson(g, now)),
  };
}

export async function creditHistory(pool: PgPool, orgId: string, customerId: string, page: { limit: number; offset: number }) {
  const { rows } = await pool.query<{
    transaction_id: string;
    grant_id: string;
    kind: 'grant' | 'top_up' | 'applied' | 'void';
    amount_minor: string;
    currency: string;
    invoice_id: string | null;
    created_at: Date;
  }>(
    `SELECT t.transaction_id, t.grant_id, t.kind, t.amount_minor::text AS amount_minor, g.currency, t.invoice_id, t.created_at
       FROM credit_transactions t JOIN credit_grants g USING (organization_id, grant_id)
      WHERE t.organization_id = $1 AND t.customer_id = $2 ORDER BY t.created_at, t.transaction_id LIMIT $3 OFFSET $4`,
    [orgId, customerId, page.limit + 1, page.offset],
  );
  return rows.map((r) => ({
    transaction_id: r.transaction_id,
    grant_id: r.grant_id,
    kind: r.kind,
    amount: fromMinor(r.amount_minor, r.currency.trim()),
    currency: r.currency.trim(),
    invoice_id: r.invoice_id,
    created_at: r.created_at.toISOString(),
  }));
}
