// biome-ignore-all lint/performance/useDomNodeTextContent: Playwright's Locator.innerText (the rendered text) is what is asserted, not a DOM node's
// The web console in a real browser: Debian's Chromium (`bash infra/local/stack.sh install-test-tools`)
// driven by playwright-core with executablePath (nothing downloads a browser), against the real gateway,
// aggregator and billing (own topics, own organizations) behind the console service. The test signs in
// with an API key, posts events through the gateway and waits for them in the debugger, reads the usage
// numbers off the customer page, opens an invoice document and the catalog, and checks that another
// organization's events never show and that the key never appears in a URL.
// WRITE_SCREENSHOTS=1 saves docs/console-*.png (the README shows them).
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createKafka, createPostgres, encodeEvent, eventKey, type Config, type PgPool } from '@meterline/core';
import { startGateway } from '@meterline/gateway';
import { startAggregator } from '@meterline/aggregator';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { createOrg, startTestBilling } from '../../billing/test/helpers.ts';
import type { BillingHandle } from '@meterline/billing';
import { startConsole, type ConsoleHandle } from '../src/index.ts';

const SHOTS = process.env.WRITE_SCREENSHOTS === '1';
const shot = (name: string) => resolve(import.meta.dirname, `../../../docs/console-${name}.png`);

function chromiumPath(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin')) {
    const p = join(dir, 'chromium');
    if (dir && existsSync(p)) return p;
  }
  throw new Error('chromium not found: run `bash infra/local/stack.sh install-test-tools` (Debian package chromium)');
}

let config: Config;
let billing: BillingHandle;
let gateway: Awaited<ReturnType<typeof startGateway>>;
let aggregator: Awaited<ReturnType<typeof startAggregator>>;
let consoleSvc: ConsoleHandle;
let pg: PgPool;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let org: Awaited<ReturnType<typeof createOrg>>;
let other: Awaited<ReturnType<typeof createOrg>>;
const requested: string[] = [];
const pageErrors: string[] = [];
const CUSTOMER = 'cust_console_acme';

async function post(apiKey: string, events: unknown[]) {
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(events),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

beforeAll(async () => {
  ({ billing, config } = await startTestBilling({ env: { GATEWAY_PORT: '0', AGGREGATOR_PORT: '0', CONSOLE_PORT: '0' } }));
  pg = createPostgres(config.postgresUrl, { max: 4 });
  gateway = await startGateway(config, { pg });
  aggregator = await startAggregator({ ...config, aggregator: { ...config.aggregator, groupId: uniqueId('g_console_agg') } });
  consoleSvc = await startConsole({
    ...config,
    console: { ...config.console, billingUrl: billing.url, aggregatorUrl: aggregator.url, gatewayUrl: gateway.url },
  });
  org = await createOrg(billing.url, 'Console Test Org');
  other = await createOrg(billing.url, 'Someone Else');
  const api = org.api;
  expect(
    (
      await api.post('/v1/metrics', {
        metric_id: 'tokens',
        name: 'LLM tokens',
        event_name: 'llm_call',
        aggregation: 'sum',
        property: 'tokens',
      })
    ).status,
  ).toBe(201);
  expect((await api.post('/v1/features', { feature_id: 'llm_tokens', type: 'metered', metric_id: 'tokens' })).status).toBe(201);
  expect(
    (
      await api.post('/v1/plans', {
        plan_id: 'pro',
        name: 'Pro',
        interval: 'month',
        flat_fee: '49.00',
        flat_fee_timing: 'in_advance',
        entitlements: [{ feature_id: 'llm_tokens', limit: 1000, limit_type: 'hard' }],
      })
    ).status,
  ).toBe(201);
  expect((await api.post('/v1/customers', { customer_id: CUSTOMER, name: 'Acme Robotics', email: 'ap@acme.example' })).status).toBe(201);
  expect((await api.post('/v1/customers', { customer_id: 'cust_console_other', name: 'Beta Labs' })).status).toBe(201);
  expect((await api.post('/v1/subscriptions', { customer_id: CUSTOMER, plan_id: 'pro' })).status).toBe(201);

  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctx.newPage();
  page.on('request', (r) => requested.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await consoleSvc?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await billing?.stop();
  await pg?.end();
});

const rows = (testId: string) => page.locator(`[data-testid="${testId}"]`);

describe('console in Chromium', () => {
  it('signs in with the API key (a wrong key is refused) and keeps it out of URLs', async () => {
    await page.goto(consoleSvc.url);
    await page.fill('input[name="api_key"]', 'ml_wrong_key');
    await page.click('button[type="submit"]');
    await page.getByText('That API key is not valid.').waitFor();
    await page.fill('input[name="api_key"]', org.apiKey);
    await page.click('button[type="submit"]');
    await page.getByRole('heading', { name: 'Events' }).waitFor();
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('meterline.apiKey'),
      ),
    ).toBe(org.apiKey);
  });

  it('events debugger: posted events appear live with their properties; filters; test event accepted then duplicate', async () => {
    // after the subscription's start (usage before it is not in its period), distinct times: newest first
    const t0 = Date.now();
    await post(org.apiKey, [
      {
        event_name: 'llm_call',
        customer_id: CUSTOMER,
        idempotency_id: 'ev-1',
        time_created: new Date(t0).toISOString(),
        properties: { tokens: 120, model: 'big' },
      },
      {
        event_name: 'llm_call',
        customer_id: CUSTOMER,
        idempotency_id: 'ev-2',
        time_created: new Date(t0 + 1_000).toISOString(),
        properties: { tokens: 200 },
      },
      {
        event_name: 'llm_call',
        customer_id: CUSTOMER,
        idempotency_id: 'ev-3',
        time_created: new Date(t0 + 2_000).toISOString(),
        properties: { tokens: 25 },
      },
      { event_name: 'login', customer_id: 'cust_console_other', idempotency_id: 'ev-4', time_created: new Date(t0 + 3_000).toISOString() },
    ]);
    await post(other.apiKey, [
      { event_name: 'llm_call', customer_id: CUSTOMER, idempotency_id: 'foreign-1', properties: { tokens: 9999 } },
    ]);
    // no reload: the live tail polls
    await waitFor(
      () => rows('event-row').count(),
      (n) => n === 4,
      { what: 'four events in the debugger', timeoutMs: 30_000 },
    );
    const text = await rows('events-table').innerText();
    expect(text).toContain('"tokens":120');
    expect(text).toContain('ev-2');
    expect(text).not.toContain('foreign-1');
    expect(text).not.toContain('9999');
    // newest first
    expect(await rows('event-row').first().innerText()).toContain('login');

    await page.fill('input[name="event_name"]', 'llm_call');
    await page.click('form.filters button[type="submit"]');
    await waitFor(
      () => rows('event-row').count(),
      (n) => n === 3,
      { what: 'three llm_call events after filtering' },
    );
    expect(await rows('events-table').innerText()).not.toContain('login');

    await page.click('[data-testid="open-send-event"]');
    await page.fill('input[name="send_customer_id"]', CUSTOMER);
    await page.fill('input[name="send_event_name"]', 'llm_call');
    await page.fill('input[name="send_idempotency_id"]', 'ev-console-1');
    await page.fill('textarea[name="send_properties"]', '{"tokens": 55}');
    await page.click('[data-testid="send-event"] button[type="submit"]');
    await page.locator('[data-testid="sent-results"] tr').first().getByText('accepted').waitFor();
    await page.click('[data-testid="send-event"] button[type="submit"]');
    await page.locator('[data-testid="sent-results"] tr').first().getByText('duplicate').waitFor();
    await waitFor(
      () => rows('event-row').count(),
      (n) => n === 4,
      { what: 'the console-sent event in the debugger (once)' },
    );
    if (SHOTS) await page.screenshot({ path: shot('events'), fullPage: true });
  });

  it('dead letters show with their reason', async () => {
    // an invalid event of this organization straight onto its topic (the gateway would refuse it)
    const producer = createKafka(config.kafka).producer();
    await producer.connect();
    const bad = {
      organizationId: org.orgId,
      customerId: '',
      eventName: 'llm_call',
      idempotencyId: 'dl-1',
      timeCreatedMs: Date.now(),
      receivedAtMs: Date.now(),
      properties: {},
      source: 'api',
    };
    await producer.send({ topic: config.kafka.eventsTopic, messages: [{ key: eventKey(bad), value: encodeEvent(bad) }] });
    await producer.disconnect();
    await page.click('[data-testid="tab-dead-letters"]');
    await page.fill('input[name="event_name"]', '');
    await page.click('form.filters button[type="submit"]');
    await waitFor(
      () => rows('dead-letter-row').count(),
      (n) => n === 1,
      { what: 'one dead letter', timeoutMs: 30_000 },
    );
    const text = await rows('dead-letters-table').innerText();
    expect(text).toContain('invalid_event');
    expect(text).toContain('dl-1');
  });

  it('customers: search, then the customer page shows usage vs limit, the usage chart total, credits and invoices', async () => {
    await page.click('header nav a[href="#/customers"]');
    await waitFor(
      () => rows('customer-row').count(),
      (n) => n === 2,
      { what: 'two customers' },
    );
    if (SHOTS) await page.screenshot({ path: shot('customers'), fullPage: true });
    await page.fill('input[name="q"]', 'ROBOTICS');
    await page.click('form.filters button[type="submit"]');
    await waitFor(
      () => rows('customer-row').count(),
      (n) => n === 1,
      { what: 'one search hit' },
    );
    await page.getByRole('link', { name: CUSTOMER }).click();
    await page.getByTestId('customer-title').getByText('Acme Robotics').waitFor();
    // 120 + 200 + 25 + 55 tokens, counted by the aggregator, read back through billing: reload until counted
    const usage = await waitFor(
      async () => {
        await page.reload();
        return page
          .locator('[data-testid="entitlement-row"][data-feature="llm_tokens"] [data-testid="usage-text"]')
          .innerText({ timeout: 5_000 });
      },
      (t) => t.startsWith('400 /'),
      { what: 'usage 400 on the customer page', timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(usage).toBe('400 / 1,000 (40 %)');
    expect(await page.getByTestId('usage-total').innerText()).toBe('400');
    // the chart draws after its own usage request answers: wait for it (CI saw the count read before the draw)
    await waitFor(
      () => page.getByTestId('usage-chart').locator('canvas').count(),
      (n) => n === 1,
      { what: 'usage chart canvas', timeoutMs: 15_000 },
    );
    await page.selectOption('select[name="window"]', 'day');
    // 30 days ending at the next UTC midnight
    const to = new Date(Math.ceil(Date.now() / 86_400_000) * 86_400_000);
    const from = new Date(to.getTime() - 30 * 86_400_000);
    await waitFor(
      () => page.locator('.usage p').innerText(),
      (t) => t.includes(`Total 400 (sum of tokens, ${from.toISOString().slice(0, 10)} – ${to.toISOString().slice(0, 10)})`),
      { what: 'day-window total' },
    );
    const invoices = await rows('invoices-table').innerText();
    expect(invoices).toMatch(/INV-\d{6}/);
    expect(invoices).toContain('49.00 USD');
    expect(await page.getByTestId('amount-due').innerText()).toBe('49.00 USD');
    expect(await page.getByTestId('credit-balance').innerText()).toContain('Balance');
    if (SHOTS) await page.screenshot({ path: shot('customer'), fullPage: true });
  });

  it('invoices: the list with status and the invoice document', async () => {
    await page.click('header nav a[href="#/invoices"]');
    await waitFor(
      () => rows('invoice-row').count(),
      (n) => n === 1,
      { what: 'one invoice' },
    );
    expect(await rows('invoice-row').first().innerText()).toContain('finalized');
    if (SHOTS) await page.screenshot({ path: shot('invoices'), fullPage: true });
    await rows('invoice-row').first().locator('a').first().click();
    await page.getByTestId('invoice-total').getByText('49.00 USD').waitFor();
    const doc = page.frameLocator('[data-testid="invoice-document"]');
    await doc.getByText('Acme Robotics').first().waitFor();
    expect(await doc.locator('body').innerText()).toMatch(/Total\s+49\.00 USD/);
    if (SHOTS) await page.screenshot({ path: shot('invoice'), fullPage: true });
  });

  it('catalog: metrics, features and plans', async () => {
    await page.click('header nav a[href="#/catalog"]');
    await rows('metrics-table').getByText('LLM tokens').waitFor();
    expect(await rows('metrics-table').innerText()).toMatch(/tokens\s+LLM tokens\s+llm_call\s+sum\s+tokens/);
    expect(await rows('features-table').innerText()).toContain('llm_tokens');
    expect(await rows('plans-table').innerText()).toContain('llm_tokens ≤ 1,000');
    if (SHOTS) await page.screenshot({ path: shot('catalog'), fullPage: true });
  });

  it('the key went only in headers: no URL carried it, no page error; sign-out forgets it', async () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((u) => u.includes(org.apiKey) || u.includes(encodeURIComponent(org.apiKey)))).toEqual([]);
    expect(requested.every((u) => u.startsWith(consoleSvc.url) || u.startsWith('about:') || u.startsWith('data:'))).toBe(true);
    expect(pageErrors).toEqual([]);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('input[name="api_key"]').waitFor();
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('meterline.apiKey'),
      ),
    ).toBeNull();
  });
});
