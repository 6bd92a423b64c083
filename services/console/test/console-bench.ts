// npm run bench:console (not a vitest file: a script of its own) — the console's pages with 1M events stored for one organization.
//
// Loads BENCH_CONSOLE_EVENTS (default 1,000,000) events of one organization through the pipeline: Avro
// records produced to a Kafka topic of its own, consumed by a real aggregator into ClickHouse (raw events
// and metric rollups) — the path every gateway-accepted event takes after its Kafka ack. Events are spread
// over 200 customers and the last 7 days, one hot customer holds 20 % of them. Then it times each console
// page in Debian's Chromium: navigation start until the page shows its data (rows, usage numbers, chart,
// invoice document), BENCH_CONSOLE_RUNS (20) times each, and prints the median, p95 (nearest rank), max and
// the first (cold) load; the numbers, the load average and the commit go to
// bench/results/<time>-console.json.
//
// Isolation: its own ClickHouse database (meterline_bench_console, dropped at the end unless
// BENCH_CONSOLE_KEEP=1), its own Kafka topic (deleted at the end), its own organization in the test
// Postgres database, services on free ports. The machine's load average is printed with the numbers: on a
// shared machine they are not quiet-machine numbers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import {
  createClickHouse,
  createKafka,
  encodeEvent,
  ensureTopics,
  eventKey,
  setupBackingServices,
  sqlString,
  type UsageEvent,
} from '@meterline/core';
import { startAggregator } from '@meterline/aggregator';
import { startBilling } from '@meterline/billing';
import { startGateway } from '@meterline/gateway';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { startConsole } from '../src/index.ts';

const TOTAL = Number(process.env.BENCH_CONSOLE_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_CONSOLE_RUNS ?? 20);
const KEEP = process.env.BENCH_CONSOLE_KEEP === '1';
const DB = 'meterline_bench_console';
const CUSTOMERS = 200;
const HOT = 'cust_hot';
const ADMIN = 'bench-console-admin';
const DAY = 86_400_000;

const short = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));
const ROOT = resolve(import.meta.dirname, '../../..');
/** Nearest-rank percentile of ascending `sorted`. */
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const log = (m: string) => console.log(`[bench:console] ${m}`);

function chromiumPath(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin')) {
    const p = join(dir, 'chromium');
    if (dir && existsSync(p)) return p;
  }
  throw new Error('chromium not found: run `bash infra/local/stack.sh install-test-tools`');
}

const config = testConfig({
  CLICKHOUSE_DATABASE: DB,
  KAFKA_EVENTS_TOPIC: uniqueId('bench_console_events'),
  KAFKA_DEAD_LETTER_TOPIC: uniqueId('bench_console_dlq'),
  AGGREGATOR_GROUP_ID: uniqueId('bench_console_agg'),
  ADMIN_SECRET: ADMIN,
  GATEWAY_PORT: '0',
  AGGREGATOR_PORT: '0',
  BILLING_PORT: '0',
  CONSOLE_PORT: '0',
  LOG_LEVEL: 'warn',
});

await setupBackingServices(config);
const kafka = createKafka(config.kafka);
const admin = kafka.admin();
await admin.connect();
await ensureTopics(admin, config.kafka);
const billing = await startBilling(config, {}, { port: 0, renewalIntervalMs: 0 });
const gateway = await startGateway(config);
const aggregator = await startAggregator(config, { backfillSettleMs: 200 });
const consoleSvc = await startConsole({
  ...config,
  console: { ...config.console, billingUrl: billing.url, aggregatorUrl: aggregator.url, gatewayUrl: gateway.url },
});
const ch = createClickHouse(config.clickhouse);

async function call(method: string, path: string, key: string | null, body?: unknown): Promise<any> {
  const res = await fetch(billing.url + path, {
    method,
    headers: { ...(key ? { 'x-api-key': key } : { 'x-admin-secret': ADMIN }), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

let failed = false;
try {
  const org = await call('POST', '/admin/organizations', null, { name: 'Console bench' });
  const key = org.api_key as string;
  const orgId = org.organization_id as string;
  await call('POST', '/v1/metrics', key, {
    metric_id: 'tokens',
    name: 'LLM tokens',
    event_name: 'llm_call',
    aggregation: 'sum',
    property: 'tokens',
  });
  await call('POST', '/v1/metrics', key, { metric_id: 'calls', name: 'API calls', event_name: 'api_call', aggregation: 'count' });
  await call('POST', '/v1/features', key, { feature_id: 'llm_tokens', type: 'metered', metric_id: 'tokens' });
  await call('POST', '/v1/plans', key, {
    plan_id: 'pro',
    name: 'Pro',
    interval: 'month',
    flat_fee: '49.00',
    flat_fee_timing: 'in_advance',
    entitlements: [{ feature_id: 'llm_tokens', limit: 1_000_000_000, limit_type: 'soft' }],
  });
  const start = new Date(Date.now() - 8 * DAY).toISOString();
  const customers = [HOT, ...Array.from({ length: CUSTOMERS - 1 }, (_, i) => `cust_${String(i).padStart(3, '0')}`)];
  for (const [i, c] of customers.entries()) {
    await call('POST', '/v1/customers', key, { customer_id: c, name: `Customer ${c}`, email: `${c}@example.com` });
    if (i < 20) await call('POST', '/v1/subscriptions', key, { customer_id: c, plan_id: 'pro', start_date: start });
  }
  log(`organization ${orgId}: ${CUSTOMERS} customers, 20 subscriptions`);

  // ---- load: Avro records straight onto the topic, consumed by the aggregator
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const now = Date.now();
  const loadStart = performance.now();
  const cpuStart = process.cpuUsage();
  const BATCH = 5_000;
  let expectedTokens = 0;
  for (let sent = 0; sent < TOTAL; sent += BATCH) {
    const messages = [];
    for (let i = sent; i < Math.min(TOTAL, sent + BATCH); i++) {
      const customerId = i % 5 === 0 ? HOT : customers[1 + (i % (CUSTOMERS - 1))]!;
      const tokens = 1 + (i % 97);
      if (customerId === HOT) expectedTokens += tokens;
      const e: UsageEvent = {
        organizationId: orgId,
        customerId,
        eventName: i % 4 === 0 ? 'api_call' : 'llm_call',
        idempotencyId: `bench-${i}`,
        // spread over the last 7 days, newest last
        timeCreatedMs: now - 7 * DAY + Math.floor((i / TOTAL) * 7 * DAY),
        receivedAtMs: now,
        properties: { tokens, model: i % 3 === 0 ? 'big' : 'small', region: 'eu-west-1' },
        source: 'api',
      };
      if (e.eventName === 'api_call' && customerId === HOT) expectedTokens -= tokens;
      messages.push({ key: eventKey(e), value: encodeEvent(e) });
    }
    await producer.send({ topic: config.kafka.eventsTopic, acks: -1, messages });
  }
  await producer.disconnect();
  const producedS = (performance.now() - loadStart) / 1000;
  log(`produced ${TOTAL.toLocaleString('en-US')} events in ${producedS.toFixed(1)} s`);
  await waitFor(
    async () => {
      const rs = await ch.query({
        query: `SELECT count() AS n FROM events WHERE organization_id = ${sqlString(orgId)}`,
        format: 'JSONEachRow',
      });
      return Number(((await rs.json()) as Array<{ n: string }>)[0]?.n ?? 0);
    },
    (n) => n >= TOTAL,
    { what: `${TOTAL} events in ClickHouse`, timeoutMs: 30 * 60_000, intervalMs: 2_000 },
  );
  const storedS = (performance.now() - loadStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  log(
    `stored ${TOTAL.toLocaleString('en-US')} events in ${storedS.toFixed(1)} s (${Math.round(TOTAL / storedS).toLocaleString('en-US')}/s wall; this process incl. aggregator: ${(((cpu.user + cpu.system) / TOTAL) * 1).toFixed(1)} µs CPU/event)`,
  );
  // the hot customer's rollups are complete once billing reads the expected total
  await waitFor(
    async () => (await call('GET', `/v1/customers/${HOT}/entitlements`, key)).data[0]?.current_usage as number,
    (u) => u === expectedTokens,
    { what: `hot customer usage ${expectedTokens}`, timeoutMs: 10 * 60_000, intervalMs: 2_000 },
  );
  const invoices = (await call('GET', '/v1/invoices?limit=1', key)).data as Array<{ invoice_id: string }>;

  // ---- pages in Chromium
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(consoleSvc.url);
  await page.fill('input[name="api_key"]', key);
  await page.click('button[type="submit"]');
  await page.getByRole('heading', { name: 'Events' }).waitFor();

  const pages: Array<{ name: string; route: string; ready: (p: Page) => Promise<unknown> }> = [
    {
      name: `Events (latest 100 of ${short(TOTAL)})`,
      route: '/events',
      ready: (p) => p.locator('[data-testid="event-row"]').first().waitFor(),
    },
    {
      name: 'Events filtered (customer + event name)',
      route: `/events?customer_id=${HOT}&event_name=llm_call`,
      ready: (p) => p.locator('[data-testid="event-row"]').first().waitFor(),
    },
    { name: 'Customers', route: '/customers', ready: (p) => p.locator('[data-testid="customer-row"]').first().waitFor() },
    { name: 'Customer search', route: '/customers?q=cust_1', ready: (p) => p.locator('[data-testid="customer-row"]').first().waitFor() },
    {
      name: `Customer (${HOT}, ${short(TOTAL / 5)} events: usage bars, hourly chart)`,
      route: `/customers/${HOT}`,
      ready: (p) =>
        Promise.all([
          p.locator('[data-testid="usage-text"]').first().waitFor(),
          p.locator('[data-testid="usage-chart"] canvas').waitFor(),
          p.locator('[data-testid="invoice-row"]').first().waitFor(),
        ]),
    },
    {
      name: `Customer (${HOT}, daily chart)`,
      route: `/customers/${HOT}?window=day`,
      ready: (p) =>
        Promise.all([p.locator('[data-testid="usage-text"]').first().waitFor(), p.locator('[data-testid="usage-chart"] canvas').waitFor()]),
    },
    { name: 'Invoices', route: '/invoices', ready: (p) => p.locator('[data-testid="invoice-row"]').first().waitFor() },
    {
      name: 'Invoice + document',
      route: `/invoices/${invoices[0]?.invoice_id}`,
      ready: (p) => p.frameLocator('[data-testid="invoice-document"]').locator('body').getByText('Total').first().waitFor(),
    },
    {
      name: 'Catalog',
      route: '/catalog',
      ready: (p) =>
        Promise.all([p.getByText('LLM tokens').first().waitFor(), p.locator('[data-testid="plans-table"] td').first().waitFor()]),
    },
  ];
  const results: Array<{ name: string; first: number; median: number; p95: number; max: number; runs: number[] }> = [];
  for (const pg of pages) {
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      await page.goto('about:blank');
      const t0 = performance.now();
      await page.goto(`${consoleSvc.url}/#${pg.route}`);
      await pg.ready(page);
      times.push(performance.now() - t0);
    }
    const sorted = [...times].sort((a, b) => a - b);
    results.push({
      name: pg.name,
      first: times[0]!,
      median: sorted[Math.floor(sorted.length / 2)]!,
      p95: pct(sorted, 95),
      max: sorted[sorted.length - 1]!,
      runs: times,
    });
  }
  // dead letters: a tab of the events page (click to rendered table)
  {
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      await page.goto('about:blank');
      await page.goto(`${consoleSvc.url}/#/events`);
      await page.locator('[data-testid="event-row"]').first().waitFor();
      const t0 = performance.now();
      await page.click('[data-testid="tab-dead-letters"]');
      await page.locator('[data-testid="dead-letter-row"]').or(page.getByText('No dead letters.')).first().waitFor();
      times.push(performance.now() - t0);
    }
    const sorted = [...times].sort((a, b) => a - b);
    results.push({
      name: 'Dead letters tab (click → table)',
      first: times[0]!,
      median: sorted[Math.floor(sorted.length / 2)]!,
      p95: pct(sorted, 95),
      max: sorted[sorted.length - 1]!,
      runs: times,
    });
  }
  await browser.close();

  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
  console.log(
    `\nConsole page loads, ${TOTAL.toLocaleString('en-US')} events stored for one organization, ${RUNS} runs each (load average 1/5/15 min: ${load}, ${cpus().length} cores)\n`,
  );
  console.log('| page | median (ms) | p95 (ms) | max (ms) | first (ms) | < 1 s (p95) |');
  console.log('| --- | --: | --: | --: | --: | --- |');
  for (const r of results)
    console.log(
      `| ${r.name} | ${Math.round(r.median)} | ${Math.round(r.p95)} | ${Math.round(r.max)} | ${Math.round(r.first)} | ${r.p95 < 1000 ? 'yes' : 'NO'} |`,
    );
  if (results.some((r) => r.p95 >= 1000)) failed = true;
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {}
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${new Date().toISOString().replace(/[:.]/g, '-')}-console.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ bench: 'console', commit, events: TOTAL, runs: RUNS, loadavg: loadavg(), cores: cpus().length, storedSeconds: storedS, pages: results }, null, 2)}\n`,
  );
  log(`results: ${file}`);
} finally {
  await consoleSvc.stop();
  await gateway.stop();
  await aggregator.stop();
  await billing.stop();
  await admin.deleteTopics({ topics: [config.kafka.eventsTopic, config.kafka.deadLetterTopic] }).catch(() => undefined);
  await admin.disconnect();
  if (!KEEP) await ch.command({ query: `DROP DATABASE IF EXISTS ${DB}` }).catch((e: Error) => log(`drop failed: ${e.message}`));
  await ch.close();
}
process.exit(failed ? 1 : 0);
