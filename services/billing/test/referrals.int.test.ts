// Referral programs, codes and redemptions (referrals/service.ts) against real Postgres, with a
// controlled clock and no usage (flat fees only). The rewards are checked where they land: the coupon's
// discount and the credit on finalized invoices, amounts computed here in minor units.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgres, type PgPool } from '@meterline/core';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle, UsageReader } from '../src/index.ts';
import { runDueSubscriptions } from '../src/invoices/scheduler.ts';

let billing: BillingHandle;
let pg: PgPool;
let clock = Date.parse('2026-03-01T00:00:00Z');
const usage: UsageReader = { versionStatus: async () => 'ready', query: async () => [] };

beforeAll(async () => {
  const started = await startTestBilling({ deps: { usage, now: () => new Date(clock) } });
  billing = started.billing;
  pg = createPostgres(started.config.postgresUrl, { max: 2 });
});
afterAll(async () => {
  await billing?.stop();
  await pg?.end();
});

const FEE = 4900n; // pro: 49.00 a month, in advance
async function setup() {
  clock = Date.parse('2026-03-01T00:00:00Z');
  const o = await createOrg(billing.url);
  expect((await o.api.put('/v1/settings/invoicing', { grace_period_seconds: 0 })).status).toBe(200);
  expect(
    (await o.api.post('/v1/plans', { plan_id: 'pro', name: 'Pro', interval: 'month', flat_fee: '49.00', flat_fee_timing: 'in_advance' }))
      .status,
  ).toBe(201);
  return o;
}
type Api = Awaited<ReturnType<typeof setup>>['api'];
const invoicesOf = async (api: Api, c: string) =>
  ((await api.get(`/v1/invoices?customer_id=${c}&limit=100`)).body.data as any[]).filter((i) => i.status !== 'draft');
const minor = (s: string) => {
  const [w, f = ''] = s.split('.');
  return BigInt(w!) * 100n + BigInt(f.padEnd(2, '0'));
};
const customers = async (api: Api, ...ids: string[]) => {
  for (const id of ids) expect((await api.post('/v1/customers', { customer_id: id })).status).toBe(201);
};

describe('referrals', () => {
  it('code is stable; redemption grants the referrer credit and the redeemer coupon, both applied on finalized invoices; repeat is idempotent', async () => {
    const { api, orgId } = await setup();
    await customers(api, 'alice', 'bob', 'dave');
    expect((await api.post('/v1/coupons', { coupon_id: 'ref20', name: 'Referred', percent_off: '20', duration: 'once' })).status).toBe(201);
    const prog = await api.post('/v1/referral_programs', {
      program_id: 'friends',
      name: 'Friends',
      referrer_reward: { credit_amount: '10.00', credit_currency: 'USD' },
      redeemer_reward: { coupon_id: 'ref20' },
      max_redemptions: 5,
    });
    expect(prog.status, JSON.stringify(prog.body)).toBe(201);
    expect(prog.body).toMatchObject({
      referrer_reward: { coupon_id: null, credit_amount: '10.00', credit_currency: 'USD', credit_expires_in_days: null },
      redeemer_reward: { coupon_id: 'ref20', credit_amount: null },
      max_redemptions: 5,
    });
    expect((await api.post('/v1/subscriptions', { customer_id: 'alice', plan_id: 'pro' })).status).toBe(201);

    const code = await api.post('/v1/referrals/code', { customer_id: 'alice', program_id: 'friends' });
    expect(code.status, JSON.stringify(code.body)).toBe(201);
    expect(code.body).toMatchObject({ program_id: 'friends', customer_id: 'alice', times_redeemed: 0, max_redemptions: 5 });
    expect(code.body.code).toMatch(/^[A-Z2-9]{8}$/);
    const same = await api.post('/v1/referrals/code', { customer_id: 'alice', program_id: 'friends' });
    expect([same.status, same.body.code]).toEqual([200, code.body.code]);
    const many = await Promise.all(
      Array.from({ length: 5 }, () => api.post('/v1/referrals/code', { customer_id: 'dave', program_id: 'friends' })),
    );
    expect(new Set(many.map((m) => m.body.code)).size).toBe(1);

    const self = await api.post('/v1/referrals/redeem', { code: code.body.code, customer_id: 'alice' });
    expect([self.status, self.body.error.code]).toEqual([409, 'self_referral']);

    const r = await api.post('/v1/referrals/redeem', { code: code.body.code.toLowerCase(), customer_id: 'bob' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ code: code.body.code, program_id: 'friends', referrer_id: 'alice', customer_id: 'bob' });
    expect(r.body.referrer_reward.coupon_redemption_id).toBeNull();
    expect(r.body.referrer_reward.credit_grant_id).toMatch(/^cg_/);
    expect(r.body.redeemer_reward.coupon_redemption_id).toMatch(/^red_/);
    expect(r.body.redeemer_reward.credit_grant_id).toBeNull();
    const again = await api.post('/v1/referrals/redeem', { code: code.body.code, customer_id: 'bob' });
    expect([again.status, again.body.redemption_id]).toEqual([200, r.body.redemption_id]);
    const dup = await api.post('/v1/referrals/redeem', { code: many[0]!.body.code, customer_id: 'bob' });
    expect([dup.status, dup.body.error.code]).toEqual([409, 'already_referred']);
    expect((await api.get(`/v1/referrals/codes/${code.body.code}`)).body.times_redeemed).toBe(1);
    expect((await api.get(`/v1/referrals/codes/${code.body.code}/redemptions`)).body.data.map((x: any) => x.customer_id)).toEqual(['bob']);

    // the referrer's credit: one grant of 10.00 (not two, despite the repeat)
    const bal = (await api.get('/v1/customers/alice/credits')).body;
    expect(bal.balance).toEqual({ USD: '10.00' });
    expect(bal.grants.map((g: any) => g.grant_id)).toEqual([r.body.referrer_reward.credit_grant_id]);

    // bob subscribes: his first invoice takes the 20 % once-coupon
    expect((await api.post('/v1/subscriptions', { customer_id: 'bob', plan_id: 'pro' })).status).toBe(201);
    const discount = (FEE * 20n) / 100n;
    const [bobStart] = await invoicesOf(api, 'bob');
    expect(bobStart.status).toBe('finalized');
    expect(minor(bobStart.total)).toBe(FEE - discount);
    expect(bobStart.line_items.find((l: any) => l.kind === 'discount')).toMatchObject({ coupon_id: 'ref20' });

    // April: alice's renewal uses the 10.00 credit, bob's coupon is spent
    clock = Date.UTC(2026, 3, 1, 0, 0, 1);
    await runDueSubscriptions(billing.deps, new Date(clock), { organizationId: orgId });
    await runDueSubscriptions(billing.deps, new Date(clock), { organizationId: orgId });
    const alice = await invoicesOf(api, 'alice');
    expect(alice.map((i) => minor(i.total))).toEqual([FEE, FEE - 1000n]);
    expect(alice[1].status).toBe('finalized');
    expect(alice[1].line_items.find((l: any) => l.kind === 'credit')).toMatchObject({
      grant_id: r.body.referrer_reward.credit_grant_id,
      amount_due: '-10.00',
    });
    expect((await api.get('/v1/customers/alice/credits')).body.balance).toEqual({});
    expect((await invoicesOf(api, 'bob')).map((i) => minor(i.total))).toEqual([FEE - discount, FEE]);

    // another organization sees none of it
    const other = await createOrg(billing.url);
    await other.api.post('/v1/customers', { customer_id: 'bob2' });
    expect((await other.api.post('/v1/referrals/redeem', { code: code.body.code, customer_id: 'bob2' })).status).toBe(404);
    expect((await other.api.get('/v1/referral_programs/friends')).status).toBe(404);
    expect((await other.api.get(`/v1/referrals/codes/${code.body.code}`)).status).toBe(404);
  });

  it('20 concurrent redemptions of a code limited to 5: exactly 5, each with its reward', async () => {
    const { api } = await setup();
    const redeemers = Array.from({ length: 20 }, (_, i) => `c${i}`);
    await customers(api, 'carol', ...redeemers);
    expect(
      (
        await api.post('/v1/referral_programs', {
          program_id: 'limited',
          name: 'Limited',
          referrer_reward: { credit_amount: '1.25', credit_currency: 'USD' },
          redeemer_reward: { credit_amount: '3.00', credit_currency: 'USD', credit_expires_in_days: 30 },
          max_redemptions: 5,
        })
      ).status,
    ).toBe(201);
    const { code } = (await api.post('/v1/referrals/code', { customer_id: 'carol', program_id: 'limited' })).body;
    const results = await Promise.all(redeemers.map((c) => api.post('/v1/referrals/redeem', { code, customer_id: c })));
    const ok = results.filter((r) => r.status === 201);
    expect(ok.length).toBe(5);
    const refused = results.filter((r) => r.status !== 201);
    expect(refused.map((r) => [r.status, r.body.error.code])).toEqual(Array(15).fill([409, 'code_exhausted']));
    expect((await api.get(`/v1/referrals/codes/${code}`)).body.times_redeemed).toBe(5);
    // carol: 5 × 1.25; each winner 3.00 expiring in 30 days; the losers nothing
    expect((await api.get('/v1/customers/carol/credits')).body.balance).toEqual({ USD: '6.25' });
    const winners = new Set(ok.map((r) => r.body.customer_id));
    for (const c of redeemers) {
      const b = (await api.get(`/v1/customers/${c}/credits`)).body;
      if (winners.has(c)) {
        expect(b.balance).toEqual({ USD: '3.00' });
        expect(b.grants[0].expires_at).toBe(new Date(clock + 30 * 86_400_000).toISOString());
      } else expect(b.grants).toEqual([]);
    }
  });

  it('one customer redeeming at once: the same code 8 times → one 201 and 200s; two codes of one program → one wins, the other 409', async () => {
    const { api } = await setup();
    await customers(api, 'o1', 'o2', 'z', 'y');
    await api.post('/v1/referral_programs', {
      program_id: 'p',
      name: 'P',
      referrer_reward: { credit_amount: '2.00', credit_currency: 'USD' },
      redeemer_reward: { credit_amount: '1.00', credit_currency: 'USD' },
    });
    const c1 = (await api.post('/v1/referrals/code', { customer_id: 'o1', program_id: 'p' })).body.code;
    const c2 = (await api.post('/v1/referrals/code', { customer_id: 'o2', program_id: 'p' })).body.code;
    const same = await Promise.all(Array.from({ length: 8 }, () => api.post('/v1/referrals/redeem', { code: c1, customer_id: 'z' })));
    expect(same.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(same.map((r) => r.body.redemption_id)).size).toBe(1);
    expect((await api.get('/v1/customers/z/credits')).body.balance).toEqual({ USD: '1.00' });
    expect((await api.get('/v1/customers/o1/credits')).body.balance).toEqual({ USD: '2.00' });

    const both = await Promise.all(
      Array.from({ length: 6 }, (_, i) => api.post('/v1/referrals/redeem', { code: i % 2 ? c1 : c2, customer_id: 'y' })),
    );
    const won = both.filter((r) => r.status === 201);
    expect(won.length).toBe(1);
    const winner = won[0]!.body.code;
    for (const r of both)
      if (r.status !== 201)
        expect([r.status, r.body.error?.code ?? r.body.code]).toEqual(r.status === 200 ? [200, winner] : [409, 'already_referred']);
    expect((await api.get('/v1/customers/y/credits')).body.balance).toEqual({ USD: '1.00' });
    const owners = { [c1]: 'o1', [c2]: 'o2' };
    const loser = winner === c1 ? c2 : c1;
    expect((await api.get(`/v1/customers/${owners[loser]}/credits`)).body.balance).toEqual(loser === c1 ? { USD: '2.00' } : {});
    expect((await api.get(`/v1/referrals/codes/${loser}`)).body.times_redeemed).toBe(loser === c1 ? 1 : 0);
  });

  it('a refused reward refuses the whole redemption (nothing granted, use not taken); expiry, archive, currencies, validation', async () => {
    const { api, orgId } = await setup();
    await customers(api, 'ref', 'r1', 'r2', 'r3');
    expect((await api.post('/v1/customers', { customer_id: 'euro', currency: 'EUR' })).status).toBe(201);
    await api.post('/v1/coupons', { coupon_id: 'one', name: 'One', percent_off: '10', duration: 'once', max_redemptions: 1 });
    await api.post('/v1/referral_programs', {
      program_id: 'scarce',
      name: 'Scarce',
      referrer_reward: { credit_amount: '5.00', credit_currency: 'USD' },
      redeemer_reward: { coupon_id: 'one' },
    });
    const { code } = (await api.post('/v1/referrals/code', { customer_id: 'ref', program_id: 'scarce' })).body;
    expect((await api.post('/v1/referrals/redeem', { code, customer_id: 'r1' })).status).toBe(201);
    const second = await api.post('/v1/referrals/redeem', { code, customer_id: 'r2' });
    expect([second.status, second.body.error.code]).toEqual([409, 'reward_unavailable']);
    expect((await api.get('/v1/customers/ref/credits')).body.balance).toEqual({ USD: '5.00' });
    expect((await api.get(`/v1/referrals/codes/${code}`)).body.times_redeemed).toBe(1);
    const rows = await pg.query('SELECT customer_id FROM referral_redemptions WHERE organization_id = $1', [orgId]);
    expect(rows.rows.map((r) => r.customer_id)).toEqual(['r1']);

    // the referrer's credit is in USD: an EUR redeemer is fine, an EUR referrer is not
    const eur = await api.post('/v1/referral_programs', {
      program_id: 'usd',
      name: 'USD',
      redeemer_reward: { credit_amount: '2.00', credit_currency: 'USD' },
    });
    expect(eur.status).toBe(201);
    const usdCode = (await api.post('/v1/referrals/code', { customer_id: 'ref', program_id: 'usd' })).body.code;
    const mismatch = await api.post('/v1/referrals/redeem', { code: usdCode, customer_id: 'euro' });
    expect([mismatch.status, mismatch.body.error.code]).toEqual([409, 'currency_mismatch']);
    expect((await api.get('/v1/customers/euro/credits')).body.grants).toEqual([]);

    // expiry and archive
    await api.post('/v1/referral_programs', {
      program_id: 'week',
      name: 'Week',
      referrer_reward: { credit_amount: '1.00', credit_currency: 'USD' },
      expires_at: new Date(clock + 7 * 86_400_000).toISOString(),
    });
    const weekCode = (await api.post('/v1/referrals/code', { customer_id: 'ref', program_id: 'week' })).body.code;
    clock += 8 * 86_400_000;
    const expired = await api.post('/v1/referrals/redeem', { code: weekCode, customer_id: 'r3' });
    expect([expired.status, expired.body.error.code]).toEqual([409, 'program_expired']);
    expect((await api.post('/v1/referrals/code', { customer_id: 'r3', program_id: 'week' })).body.error.code).toBe('program_expired');
    expect((await api.del('/v1/referral_programs/usd')).body.archived_at).not.toBeNull();
    const archived = await api.post('/v1/referrals/redeem', { code: usdCode, customer_id: 'r3' });
    expect([archived.status, archived.body.error.code]).toEqual([409, 'program_archived']);
    // existing codes stay readable and stable
    expect((await api.post('/v1/referrals/code', { customer_id: 'ref', program_id: 'usd' })).body.code).toBe(usdCode);

    // not found
    expect((await api.post('/v1/referrals/redeem', { code: 'NOSUCHCODE', customer_id: 'r3' })).body.error.code).toBe('not_found');
    expect((await api.post('/v1/referrals/redeem', { code, customer_id: 'ghost' })).status).toBe(404);
    expect((await api.post('/v1/referrals/code', { customer_id: 'ghost', program_id: 'scarce' })).status).toBe(404);
    expect((await api.post('/v1/referrals/code', { customer_id: 'ref', program_id: 'ghost' })).status).toBe(404);

    // program validation
    const base = { name: 'P' };
    for (const [id, body, status] of [
      ['p1', {}, 400],
      ['p2', { referrer_reward: { credit_amount: '1.00' } }, 400],
      ['p3', { referrer_reward: { credit_currency: 'USD' } }, 400],
      ['p4', { referrer_reward: { credit_amount: '1.005', credit_currency: 'USD' } }, 400],
      ['p5', { referrer_reward: { credit_amount: '0', credit_currency: 'USD' } }, 400],
      ['p6', { referrer_reward: { coupon_id: 'ghost' } }, 404],
      ['p7', { referrer_reward: {} }, 400],
      ['p8', { referrer_reward: { coupon_id: 'one' }, max_redemptions: 0 }, 400],
      ['p9', { referrer_reward: { coupon_id: 'one' }, expires_at: '2020-01-01T00:00:00Z' }, 400],
      ['scarce', { referrer_reward: { coupon_id: 'one' } }, 409],
    ] as const)
      expect([id, (await api.post('/v1/referral_programs', { program_id: id, ...base, ...body })).status]).toEqual([id, status]);
  });
});
