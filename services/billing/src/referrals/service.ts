// Referral programs (Autumn referrals: get_referral_code / redeem_referral_code). A program names the
// reward of each side of a redemption — the referrer (the code's owner) and the redeemer — as a coupon
// (redeemed for that customer: every invoice) and/or a credit grant; a code is stable per (program,
// customer); a redemption takes one use of the code, writes its row and grants every reward in ONE
// transaction (coupons/service.ts redeemCouponIn, credits/service.ts grantCreditIn), under the code row's
// lock, so max_redemptions holds under concurrency and a refused reward refuses the whole redemption.
import { randomInt } from 'node:crypto';
import { withTransaction, type PgClient, type PgPool } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ApiError, badRequest, conflict, notFound } from '../http/errors.ts';
import { fitsMinor, fromMinor, minorInRange, toMinor } from '../money.ts';
import { newId } from '../orgs/store.ts';
import * as customers from '../customers/store.ts';
import { redeemCouponIn } from '../coupons/service.ts';
import { grantCreditIn } from '../credits/service.ts';

type Side = 'referrer' | 'redeemer';
const SIDES: Side[] = ['referrer', 'redeemer'];

interface ProgramRow {
  program_id: string;
  name: string;
  referrer_coupon_id: string | null;
  referrer_credit_minor: string | null;
  referrer_credit_currency: string | null;
  referrer_credit_expires_days: number | null;
  redeemer_coupon_id: string | null;
  redeemer_credit_minor: string | null;
  redeemer_credit_currency: string | null;
  redeemer_credit_expires_days: number | null;
  max_redemptions: number | null;
  expires_at: Date | null;
  archived_at: Date | null;
  created_at: Date;
}
const PROGRAM_COLS = `program_id, name, referrer_coupon_id, referrer_credit_minor::text AS referrer_credit_minor, referrer_credit_currency,
  referrer_credit_expires_days, redeemer_coupon_id, redeemer_credit_minor::text AS redeemer_credit_minor, redeemer_credit_currency,
  redeemer_credit_expires_days, max_redemptions, expires_at, archived_at, created_at`;

function reward(p: ProgramRow, side: Side) {
  const coupon = p[`${side}_coupon_id`];
  const minor = p[`${side}_credit_minor`];
  const cur = p[`${side}_credit_currency`]?.trim() ?? null;
  if (coupon === null && minor === null) return null;
  return {
    coupon_id: coupon,
    credit_amount: minor !== null && cur ? fromMinor(minor, cur) : null,
    credit_currency: minor !== null ? cur : null,
    credit_expires_in_days: p[`${side}_credit_expires_days`],
  };
}

function programJson(p: ProgramRow) {
  return {
    program_id: p.program_id,
    name: p.name,
    referrer_reward: reward(p, 'referrer'),
    redeemer_reward: reward(p, 'redeemer'),
    max_redemptions: p.max_redemptions,
    expires_at: p.expires_at?.toISOString() ?? null,
    archived_at: p.archived_at?.toISOString() ?? null,
    created_at: p.created_at.toISOString(),
  };
}

interface RewardInput {
  coupon_id?: string;
  credit_amount?: string;
  credit_currency?: string;
  credit_expires_in_days?: number;
}

export async function createProgram(
  deps: Deps,
  orgId: string,
  input: {
    program_id: string;
    name: string;
    referrer_reward?: RewardInput;
    redeemer_reward?: RewardInput;
    max_redemptions?: number;
    expires_at?: string | null;
  },
) {
  const cols: Record<string, unknown> = {};
  for (const side of SIDES) {
    const r = input[`${side}_reward`];
    cols[`${side}_coupon_id`] = r?.coupon_id ?? null;
    cols[`${side}_credit_minor`] = null;
    cols[`${side}_credit_currency`] = null;
    cols[`${side}_credit_expires_days`] = r?.credit_expires_in_days ?? null;
    if (!r) continue;
    if ((r.credit_amount === undefined) !== (r.credit_currency === undefined))
      throw badRequest(`${side}_reward: credit_amount and credit_currency go together`);
    if (r.credit_expires_in_days !== undefined && r.credit_amount === undefined)
      throw badRequest(`${side}_reward: credit_expires_in_days needs credit_amount`);
    if (r.credit_amount !== undefined) {
      const cur = r.credit_currency!;
      if (!fitsMinor(r.credit_amount, cur)) throw badRequest(`${side}_reward: credit_amount has more decimals than ${cur} allows`);
      const m = toMinor(r.credit_amount, cur);
      if (m <= 0n || !minorInRange(m)) throw badRequest(`${side}_reward: credit_amount must be greater than 0 and in range`);
      cols[`${side}_credit_minor`] = m.toString();
      cols[`${side}_credit_currency`] = cur;
    }
    if (r.coupon_id !== undefined) {
      const c = await deps.pool.query('SELECT archived_at FROM coupons WHERE organization_id = $1 AND coupon_id = $2', [
        orgId,
        r.coupon_id,
      ]);
      if (!c.rows[0]) throw notFound('coupon', r.coupon_id);
      if (c.rows[0].archived_at) throw conflict(`coupon "${r.coupon_id}" is archived`);
    }
    if (r.coupon_id === undefined && r.credit_amount === undefined) throw badRequest(`${side}_reward needs coupon_id and/or credit_amount`);
  }
  if (!input.referrer_reward && !input.redeemer_reward) throw badRequest('a program needs referrer_reward and/or redeemer_reward');
  const expires = input.expires_at ? new Date(input.expires_at) : null;
  if (expires && expires.getTime() <= deps.now().getTime()) throw badRequest('expires_at must be in the future');
  const { rows } = await deps.pool.query<ProgramRow>(
    `INSERT INTO referral_programs (organization_id, program_id, name, referrer_coupon_id, referrer_credit_minor, referrer_credit_currency,
       referrer_credit_expires_days, redeemer_coupon_id, redeemer_credit_minor, redeemer_credit_currency, redeemer_credit_expires_days,
       max_redemptions, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING RETURNING ${PROGRAM_COLS}`,
    [
      orgId,
      input.program_id,
      input.name,
      cols.referrer_coupon_id,
      cols.referrer_credit_minor,
      cols.referrer_credit_currency,
      cols.referrer_credit_expires_days,
      cols.redeemer_coupon_id,
      cols.redeemer_credit_minor,
      cols.redeemer_credit_currency,
      cols.redeemer_credit_expires_days,
      input.max_redemptions ?? null,
      expires,
    ],
  );
  if (!rows[0]) throw conflict(`referral program "${input.program_id}" already exists`);
  return programJson(rows[0]);
}

async function programRow(db: PgPool | PgClient, orgId: string, programId: string) {
  const { rows } = await db.query<ProgramRow>(
    `SELECT ${PROGRAM_COLS} FROM referral_programs WHERE organization_id = $1 AND program_id = $2`,
    [orgId, programId],
  );
  return rows[0] ?? null;
}

export async function getProgram(deps: Deps, orgId: string, programId: string) {
  const p = await programRow(deps.pool, orgId, programId);
  if (!p) throw notFound('referral program', programId);
  return programJson(p);
}

export async function listPrograms(deps: Deps, orgId: string, page: { limit: number; offset: number }) {
  const { rows } = await deps.pool.query<ProgramRow>(
    `SELECT ${PROGRAM_COLS} FROM referral_programs WHERE organization_id = $1 ORDER BY created_at, program_id LIMIT $2 OFFSET $3`,
    [orgId, page.limit + 1, page.offset],
  );
  return rows.map(programJson);
}

/** No new codes or redemptions; granted rewards stay. */
export async function archiveProgram(deps: Deps, orgId: string, programId: string) {
  const { rows } = await deps.pool.query<ProgramRow>(
    `UPDATE referral_programs SET archived_at = coalesce(archived_at, now()) WHERE organization_id = $1 AND program_id = $2 RETURNING ${PROGRAM_COLS}`,
    [orgId, programId],
  );
  if (!rows[0]) throw notFound('referral program', programId);
  return programJson(rows[0]);
}

// ---- codes ----------------------------------------------------------------------------------------

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I
const newCode = () => Array.from({ length: 8 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
/** Codes are compared upper-case, without surrounding spaces (what a person types). */
export const normalizeCode = (code: string) => code.trim().toUpperCase();

interface CodeRow {
  code: string;
  program_id: string;
  customer_id: string;
  times_redeemed: number;
  created_at: Date;
}

function codeJson(c: CodeRow, p: ProgramRow) {
  return {
    code: c.code,
    program_id: c.program_id,
    customer_id: c.customer_id,
    times_redeemed: c.times_redeemed,
    max_redemptions: p.max_redemptions,
    expires_at: p.expires_at?.toISOString() ?? null,
    created_at: c.created_at.toISOString(),
  };
}

const programClosed = (p: ProgramRow, now: Date) =>
  p.archived_at
    ? new ApiError(409, 'program_archived', `referral program "${p.program_id}" is archived`)
    : p.expires_at && p.expires_at.getTime() <= now.getTime()
      ? new ApiError(409, 'program_expired', `referral program "${p.program_id}" ended at ${p.expires_at.toISOString()}`)
      : null;

/** The customer's code in the program: the same one on every call (created by the first). */
export async function referralCode(deps: Deps, orgId: string, input: { customer_id: string; program_id: string }) {
  const program = await programRow(deps.pool, orgId, input.program_id);
  if (!program) throw notFound('referral program', input.program_id);
  const existing = async () =>
    (
      await deps.pool.query<CodeRow>(
        'SELECT code, program_id, customer_id, times_redeemed, created_at FROM referral_codes WHERE organization_id = $1 AND program_id = $2 AND customer_id = $3',
        [orgId, input.program_id, input.customer_id],
      )
    ).rows[0];
  const found = await existing();
  if (found) return { created: false, code: codeJson(found, program) };
  const closed = programClosed(program, deps.now());
  if (closed) throw closed;
  const customer = await customers.getCustomer(deps.pool, orgId, input.customer_id);
  if (!customer) throw notFound('customer', input.customer_id);
  for (let attempt = 0; attempt < 5; attempt++) {
    const { rows } = await deps.pool.query<CodeRow>(
      `INSERT INTO referral_codes (organization_id, code, program_id, customer_id) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING RETURNING code, program_id, customer_id, times_redeemed, created_at`,
      [orgId, newCode(), input.program_id, input.customer_id],
    );
    if (rows[0]) return { created: true, code: codeJson(rows[0], program) };
    const raced = await existing(); // a concurrent first call won, or (rarely) the random code was taken
    if (raced) return { created: false, code: codeJson(raced, program) };
  }
  throw new Error('could not allocate a unique referral code');
}

export async function getCode(deps: Deps, orgId: string, code: string) {
  const { rows } = await deps.pool.query<CodeRow>(
    'SELECT code, program_id, customer_id, times_redeemed, created_at FROM referral_codes WHERE organization_id = $1 AND code = $2',
    [orgId, normalizeCode(code)],
  );
  if (!rows[0]) throw notFound('referral code', code);
  return codeJson(rows[0], (await programRow(deps.pool, orgId, rows[0].program_id))!);
}

// ---- redemption -----------------------------------------------------------------------------------

interface RedemptionRow {
  redemption_id: string;
  code: string;
  program_id: string;
  referrer_id: string;
  customer_id: string;
  referrer_coupon_redemption_id: string | null;
  referrer_credit_grant_id: string | null;
  redeemer_coupon_redemption_id: string | null;
  redeemer_credit_grant_id: string | null;
  created_at: Date;
}
const REDEMPTION_COLS = `redemption_id, code, program_id, referrer_id, customer_id, referrer_coupon_redemption_id, referrer_credit_grant_id,
  redeemer_coupon_redemption_id, redeemer_credit_grant_id, created_at`;

function redemptionJson(r: RedemptionRow) {
  return {
    redemption_id: r.redemption_id,
    code: r.code,
    program_id: r.program_id,
    referrer_id: r.referrer_id,
    customer_id: r.customer_id,
    referrer_reward: { coupon_redemption_id: r.referrer_coupon_redemption_id, credit_grant_id: r.referrer_credit_grant_id },
    redeemer_reward: { coupon_redemption_id: r.redeemer_coupon_redemption_id, credit_grant_id: r.redeemer_credit_grant_id },
    created_at: r.created_at.toISOString(),
  };
}

async function priorRedemption(db: PgPool | PgClient, orgId: string, programId: string, customerId: string) {
  const { rows } = await db.query<RedemptionRow>(
    `SELECT ${REDEMPTION_COLS} FROM referral_redemptions WHERE organization_id = $1 AND program_id = $2 AND customer_id = $3`,
    [orgId, programId, customerId],
  );
  return rows[0] ?? null;
}

/** What a repeat answers: the same code → the first redemption (200); another code of the program → 409. */
function repeatOf(prior: RedemptionRow, code: string) {
  if (prior.code === code) return { created: false, redemption: redemptionJson(prior) };
  throw new ApiError(
    409,
    'already_referred',
    `customer "${prior.customer_id}" was already referred in program "${prior.program_id}" (with another code)`,
    { redemption_id: prior.redemption_id },
  );
}

async function grantReward(
  db: PgClient,
  orgId: string,
  p: ProgramRow,
  side: Side,
  customer: customers.CustomerRow,
  redemptionId: string,
  now: Date,
) {
  const out = { coupon: null as string | null, grant: null as string | null };
  const couponId = p[`${side}_coupon_id`];
  const minor = p[`${side}_credit_minor`];
  const customerCur = customer.currency.trim();
  if (couponId) {
    const c = await db.query<{ currency: string | null }>('SELECT currency FROM coupons WHERE organization_id = $1 AND coupon_id = $2', [
      orgId,
      couponId,
    ]);
    const cur = c.rows[0]?.currency?.trim();
    if (cur && cur !== customerCur)
      throw new ApiError(
        409,
        'currency_mismatch',
        `the ${side}'s coupon "${couponId}" is in ${cur}; customer "${customer.customer_id}" pays in ${customerCur}`,
      );
    try {
      out.coupon = (await redeemCouponIn(db, orgId, customer, { coupon_id: couponId }, now)).redemption_id;
    } catch (err) {
      if (err instanceof ApiError && err.statusCode === 409)
        throw new ApiError(409, 'reward_unavailable', `the ${side}'s reward cannot be granted: ${err.message}`, {
          side,
          coupon_id: couponId,
        });
      throw err;
    }
  }
  if (minor !== null) {
    const cur = p[`${side}_credit_currency`]!.trim();
    if (cur !== customerCur)
      throw new ApiError(
        409,
        'currency_mismatch',
        `the ${side}'s credit is in ${cur}; customer "${customer.customer_id}" pays in ${customerCur}`,
      );
    const days = p[`${side}_credit_expires_days`];
    const g = await grantCreditIn(
      db,
      orgId,
      customer,
      {
        amount: fromMinor(minor, cur),
        currency: cur,
        expires_at: days ? new Date(now.getTime() + days * 86_400_000).toISOString() : null,
        description: `referral ${redemptionId} (program ${p.program_id}, ${side})`,
      },
      now,
    );
    out.grant = g.grant_id;
  }
  return out;
}

export async function redeem(deps: Deps, orgId: string, input: { code: string; customer_id: string }) {
  const now = deps.now();
  const code = normalizeCode(input.code);
  try {
    return await withTransaction(deps.pool, async (db) => {
      // the code row's lock serializes redemptions of one code: the limit and the repeat check hold
      const { rows } = await db.query<CodeRow>(
        'SELECT code, program_id, customer_id, times_redeemed, created_at FROM referral_codes WHERE organization_id = $1 AND code = $2 FOR UPDATE',
        [orgId, code],
      );
      const c = rows[0];
      if (!c) throw notFound('referral code', input.code);
      if (c.customer_id === input.customer_id)
        throw new ApiError(409, 'self_referral', `customer "${input.customer_id}" owns code "${code}" and cannot redeem it`);
      const prior = await priorRedemption(db, orgId, c.program_id, input.customer_id);
      if (prior) return repeatOf(prior, code);
      const p = (await programRow(db, orgId, c.program_id))!;
      const closed = programClosed(p, now);
      if (closed) throw closed;
      if (p.max_redemptions !== null && c.times_redeemed >= p.max_redemptions)
        throw new ApiError(409, 'code_exhausted', `referral code "${code}" reached its ${p.max_redemptions} redemptions`, {
          max_redemptions: p.max_redemptions,
        });
      const asDb = db as unknown as PgPool; // the customers repository only calls query()
      const redeemer = await customers.getCustomer(asDb, orgId, input.customer_id);
      if (!redeemer) throw notFound('customer', input.customer_id);
      const referrer = await customers.getCustomer(asDb, orgId, c.customer_id);
      if (!referrer) throw new ApiError(409, 'referrer_archived', `the owner of code "${code}" is archived: the code cannot be redeemed`);
      await db.query('UPDATE referral_codes SET times_redeemed = times_redeemed + 1 WHERE organization_id = $1 AND code = $2', [
        orgId,
        code,
      ]);
      const id = newId('rr');
      const referrerReward = await grantReward(db, orgId, p, 'referrer', referrer, id, now);
      const redeemerReward = await grantReward(db, orgId, p, 'redeemer', redeemer, id, now);
      const ins = await db.query<RedemptionRow>(
        `INSERT INTO referral_redemptions (organization_id, redemption_id, code, program_id, referrer_id, customer_id, referrer_coupon_redemption_id,
           referrer_credit_grant_id, redeemer_coupon_redemption_id, redeemer_credit_grant_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${REDEMPTION_COLS}`,
        [
          orgId,
          id,
          code,
          c.program_id,
          c.customer_id,
          input.customer_id,
          referrerReward.coupon,
          referrerReward.grant,
          redeemerReward.coupon,
          redeemerReward.grant,
        ],
      );
      return { created: true, redemption: redemptionJson(ins.rows[0]!) };
    });
  } catch (err) {
    // the same customer redeeming two codes of one program at once: the loser meets the unique key
    if ((err as { code?: string }).code === '23505' && (err as { constraint?: string }).constraint?.startsWith('referral_redemptions')) {
      const { rows } = await deps.pool.query<{ program_id: string }>(
        'SELECT program_id FROM referral_codes WHERE organization_id = $1 AND code = $2',
        [orgId, code],
      );
      const prior = rows[0] && (await priorRedemption(deps.pool, orgId, rows[0].program_id, input.customer_id));
      if (prior) return repeatOf(prior, code);
    }
    throw err;
  }
}

export async function codeRedemptions(deps: Deps, orgId: string, code: string, page: { limit: number; offset: number }) {
  await getCode(deps, orgId, code);
  const { rows } = await deps.pool.query<RedemptionRow>(
    `SELECT ${REDEMPTION_COLS} FROM referral_redemptions WHERE organization_id = $1 AND code = $2 ORDER BY created_at, redemption_id LIMIT $3 OFFSET $4`,
    [orgId, normalizeCode(code), page.limit + 1, page.offset],
  );
  return rows.map(redemptionJson);
}
