// Coupons (Stigg coupons, Stripe-like): percent or fixed amount off, for one invoice (`once`), N invoices
// (`repeating`) or every invoice (`forever`), with optional max redemptions and a redeem-by date.
// Redeemed for a customer (every invoice) or one subscription; applied when invoices are finalized, as
// discount lines (invoices/settle.ts).
import { withTransaction, type PgClient } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import { Decimal, fitsMinor, fromMinor, minorInRange, toMinor } from '../money.ts';
import { newId } from '../orgs/store.ts';
import * as customers from '../customers/store.ts';

interface CouponRow {
  coupon_id: string;
  name: string;
  percent_off: string | null;
  amount_off_minor: string | null;
  currency: string | null;
  duration: string;
  duration_periods: number | null;
  max_redemptions: number | null;
  times_redeemed: number;
  redeem_by: Date | null;
  archived_at: Date | null;
  created_at: Date;
}
const COLS =
  'coupon_id, name, percent_off::text AS percent_off, amount_off_minor::text AS amount_off_minor, currency, duration, duration_periods, max_redemptions, times_redeemed, redeem_by, archived_at, created_at';

function couponJson(c: CouponRow) {
  const cur = c.currency?.trim() ?? null;
  return {
    coupon_id: c.coupon_id,
    name: c.name,
    percent_off: c.percent_off === null ? null : new Decimal(c.percent_off).toFixed(),
    amount_off: c.amount_off_minor === null || !cur ? null : fromMinor(c.amount_off_minor, cur),
    currency: cur,
    duration: c.duration,
    duration_periods: c.duration_periods,
    max_redemptions: c.max_redemptions,
    times_redeemed: c.times_redeemed,
    redeem_by: c.redeem_by?.toISOString() ?? null,
    archived_at: c.archived_at?.toISOString() ?? null,
    created_at: c.created_at.toISOString(),
  };
}

export async function createCoupon(
  deps: Deps,
  orgId: string,
  input: {
    coupon_id: string;
    name: string;
    percent_off?: string;
    amount_off?: string;
    currency?: string;
    duration: 'once' | 'repeating' | 'forever';
    duration_periods?: number;
    max_redemptions?: number;
    redeem_by?: string;
  },
) {
  if ((input.percent_off === undefined) === (input.amount_off === undefined))
    throw badRequest('pass exactly one of percent_off or amount_off');
  if (input.amount_off !== undefined && !input.currency) throw badRequest('amount_off needs currency');
  if (input.percent_off !== undefined && input.currency) throw badRequest('currency goes with amount_off only');
  if (input.percent_off !== undefined && !new Decimal(input.percent_off).gt(0)) throw badRequest('percent_off must be greater than 0');
  if ((input.duration === 'repeating') !== (input.duration_periods !== undefined))
    throw badRequest('duration_periods is required with repeating, and only then');
  let amountOff: bigint | null = null;
  if (input.amount_off !== undefined) {
    if (!fitsMinor(input.amount_off, input.currency!)) throw badRequest(`amount_off has more decimals than ${input.currency} allows`);
    amountOff = toMinor(input.amount_off, input.currency!);
    if (amountOff <= 0n || !minorInRange(amountOff)) throw badRequest('amount_off must be greater than 0 and in range');
  }
  const { rows } = await deps.pool.query<CouponRow>(
    `INSERT INTO coupons (organization_id, coupon_id, name, percent_off, amount_off_minor, currency, duration, duration_periods, max_redemptions, redeem_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING ${COLS}`,
    [
      orgId,
      input.coupon_id,
      input.name,
      input.percent_off ?? null,
      amountOff?.toString() ?? null,
      input.currency ?? null,
      input.duration,
      input.duration_periods ?? null,
      input.max_redemptions ?? null,
      input.redeem_by ? new Date(input.redeem_by) : null,
    ],
  );
  if (!rows[0]) throw conflict(`coupon "${input.coupon_id}" already exists`);
  return couponJson(rows[0]);
}

export async function getCoupon(deps: Deps, orgId: string, couponId: string) {
  const { rows } = await deps.pool.query<CouponRow>(`SELECT ${COLS} FROM coupons WHERE organization_id = $1 AND coupon_id = $2`, [
    orgId,
    couponId,
  ]);
  if (!rows[0]) throw notFound('coupon', couponId);
  return couponJson(rows[0]);
}

export async function listCoupons(deps: Deps, orgId: string, page: { limit: number; offset: number }) {
  const { rows } = await deps.pool.query<CouponRow>(
    `SELECT ${COLS} FROM coupons WHERE organization_id = $1 ORDER BY created_at, coupon_id LIMIT $2 OFFSET $3`,
    [orgId, page.limit + 1, page.offset],
  );
  return rows.map(couponJson);
}

/** Archived coupons cannot be redeemed any more; existing redemptions keep running. */
export async function archiveCoupon(deps: Deps, orgId: string, couponId: string) {
  const { rows } = await deps.pool.query<CouponRow>(
    `UPDATE coupons SET archived_at = coalesce(archived_at, now()) WHERE organization_id = $1 AND coupon_id = $2 RETURNING ${COLS}`,
    [orgId, couponId],
  );
  if (!rows[0]) throw notFound('coupon', couponId);
  return couponJson(rows[0]);
}

export async function redeemCoupon(deps: Deps, orgId: string, customerId: string, input: { coupon_id: string; subscription_id?: string }) {
  const now = deps.now();
  const customer = await customers.getCustomer(deps.pool, orgId, customerId);
  if (!customer) throw notFound('customer', customerId);
  return withTransaction(deps.pool, (db) => redeemCouponIn(db, orgId, customer, input, now));
}

/** redeemCoupon inside the caller's transaction `db` (e.g. a referral's rewards, referrals/service.ts). */
export async function redeemCouponIn(
  db: PgClient,
  orgId: string,
  customer: { customer_id: string; currency: string },
  input: { coupon_id: string; subscription_id?: string },
  now: Date,
) {
  const customerId = customer.customer_id;
  if (input.subscription_id) {
    const s = await db.query('SELECT 1 FROM subscriptions WHERE organization_id = $1 AND subscription_id = $2 AND customer_id = $3', [
      orgId,
      input.subscription_id,
      customerId,
    ]);
    if (!s.rowCount) throw notFound('subscription', input.subscription_id);
  }
  // one statement takes a redemption, so max_redemptions holds under concurrency
  const { rows } = await db.query<CouponRow>(
    `UPDATE coupons SET times_redeemed = times_redeemed + 1
      WHERE organization_id = $1 AND coupon_id = $2 AND archived_at IS NULL AND (redeem_by IS NULL OR redeem_by > $3)
        AND (max_redemptions IS NULL OR times_redeemed < max_redemptions) RETURNING ${COLS}`,
    [orgId, input.coupon_id, now],
  );
  if (!rows[0]) {
    const c = await db.query<CouponRow>(`SELECT ${COLS} FROM coupons WHERE organization_id = $1 AND coupon_id = $2`, [
      orgId,
      input.coupon_id,
    ]);
    const row = c.rows[0];
    if (!row) throw notFound('coupon', input.coupon_id);
    const why = row.archived_at
      ? 'is archived'
      : row.redeem_by && row.redeem_by.getTime() <= now.getTime()
        ? `could be redeemed until ${row.redeem_by.toISOString()}`
        : `reached its ${row.max_redemptions} redemptions`;
    throw conflict(`coupon "${input.coupon_id}" ${why}`);
  }
  if (rows[0].currency && rows[0].currency.trim() !== customer.currency.trim())
    throw badRequest(`coupon "${input.coupon_id}" is in ${rows[0].currency.trim()}, the customer pays in ${customer.currency.trim()}`);
  const id = newId('red');
  const r = await db.query<{ created_at: Date }>(
    `INSERT INTO coupon_redemptions (organization_id, redemption_id, coupon_id, customer_id, subscription_id) VALUES ($1, $2, $3, $4, $5) RETURNING created_at`,
    [orgId, id, input.coupon_id, customerId, input.subscription_id ?? null],
  );
  return {
    redemption_id: id,
    coupon_id: input.coupon_id,
    customer_id: customerId,
    subscription_id: input.subscription_id ?? null,
    invoices_applied: 0,
    created_at: r.rows[0]!.created_at.toISOString(),
  };
}
