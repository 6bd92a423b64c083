// kill -9 of billing while it closes periods and finalizes invoices (issue #17): a billing child process
// runs the worker for 240 subscriptions whose period just ended and is SIGKILLed part-way, three
// times, then restarted; a second instance races it. Afterwards every subscription has exactly one
// period_close invoice, every invoice is finalized, and the organization's numbers are 1..n without a gap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, ensureTopics, type Config } from '@meterline/core';
import { ServiceProcess } from '../../../bench/lib/proc.ts';
import { testConfig, testEnv } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { ADMIN_SECRET, client, createOrg } from './helpers.ts';
import { startBilling, type BillingHandle } from '../src/index.ts';

const SUBSCRIPTIONS = 240;
const PORT = 19531;
const topic = uniqueId('t_close_kill');
const env = Object.fromEntries(
  Object.entries(
    testEnv({ KAFKA_EVENTS_TOPIC: topic, KAFKA_DEAD_LETTER_TOPIC: `${topic}_dlq`, ADMIN_SECRET, BILLING_PORT: String(PORT) }),
  ).filter((e): e is [string, string] => typeof e[1] === 'string'),
);
let config: Config;
let local: BillingHandle;
let child: ServiceProcess;

beforeAll(async () => {
  config = testConfig(env);
  const admin = createKafka(config.kafka).admin();
  await admin.connect();
  await ensureTopics(admin, config.kafka).finally(() => admin.disconnect());
  local = await startBilling(config, {}, { port: 0, renewalIntervalMs: 0 });
  child = new ServiceProcess('billing', PORT, env, `.cache/billing/close-kill-${topic}`);
  await child.start();
}, 120_000);

afterAll(async () => {
  await child?.stop();
  await local?.stop();
});

describe('kill -9 during closes and finalization', () => {
  it('one invoice per period, all finalized, numbers without a gap', async () => {
    const org = await createOrg(local.url);
    const api = org.api;
    expect((await api.put('/v1/settings/invoicing', { grace_period_seconds: 0 })).status).toBe(200);
    await api.post('/v1/plans', { plan_id: 'p', name: 'P', interval: 'month', flat_fee: '10.00', flat_fee_timing: 'in_arrears' });
    // every first period ends a few seconds after the last one is created
    const start = new Date(Date.now() + 25_000);
    start.setUTCMonth(start.getUTCMonth() - 1);
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      expect((await api.post('/v1/customers', { customer_id: `c${i}` })).status).toBe(201);
      expect((await api.post('/v1/subscriptions', { customer_id: `c${i}`, plan_id: 'p', start_date: start.toISOString() })).status).toBe(
        201,
      );
    }
    const periodEnd = new Date(start);
    periodEnd.setUTCMonth(periodEnd.getUTCMonth() + 1);
    await waitFor(
      async () => Date.now(),
      (t) => t > periodEnd.getTime() + 100,
      { timeoutMs: 60_000, intervalMs: 100, what: 'the periods to end' },
    );
    const admin = (url: string) => client(url, undefined, { 'x-admin-secret': ADMIN_SECRET });
    const allInvoices = async () => {
      const out: any[] = [];
      for (let offset = 0; ; offset += 100) {
        const page = await api.get(`/v1/invoices?limit=100&offset=${offset}`);
        expect(page.status, JSON.stringify(page.body)).toBe(200);
        out.push(...page.body.data);
        if (page.body.data.length < 100) return out;
      }
    };
    const closes = async () => (await allInvoices()).filter((i) => i.reason === 'period_close');
    const interrupted: number[] = [];
    for (const delayMs of [150, 400, 800]) {
      const run = admin(child.url)
        .post(`/admin/organizations/${org.orgId}/billing_run`, {})
        .catch(() => null);
      await new Promise((r) => setTimeout(r, delayMs));
      await child.kill9();
      await run;
      const done = (await closes()).filter((i) => i.status !== 'draft').length;
      interrupted.push(done);
      await child.start();
    }
    // the restarted instance and an in-process one finish it, racing
    const [x, y] = await Promise.all([
      admin(child.url).post(`/admin/organizations/${org.orgId}/billing_run`, {}),
      admin(local.url).post(`/admin/organizations/${org.orgId}/billing_run`, {}),
    ]);
    expect([x.status, y.status]).toEqual([200, 200]);
    const all = await closes();
    const perSub = new Map<string, number>();
    for (const i of all) perSub.set(i.subscription_id, (perSub.get(i.subscription_id) ?? 0) + 1);
    expect(perSub.size).toBe(SUBSCRIPTIONS);
    expect([...perSub.values()].every((n) => n === 1)).toBe(true);
    expect(all.every((i) => i.status === 'finalized' && i.total === '10.00')).toBe(true);
    const numbers = (await allInvoices())
      .filter((i) => i.number)
      .map((i) => Number(i.number.slice(4)))
      .sort((p, q) => p - q);
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
    expect(numbers.length).toBe(SUBSCRIPTIONS);
    console.log('[close-kill] finalized after each kill:', interrupted.join(', '), `of ${SUBSCRIPTIONS}`);
    // at least one kill landed part-way through the work (else this test proved nothing)
    expect(interrupted.some((n) => n < SUBSCRIPTIONS)).toBe(true);
  }, 240_000);
});
