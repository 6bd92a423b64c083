// The dashboard against the real thing: gateway, aggregator and billing run in-process on the shared
// stack (own topics, own organization), a real Prometheus (Debian's, the binary promtool comes with) on
// a private port scrapes them every second and evaluates infra/prometheus/alerts.yml, traffic drives
// every signal the dashboard shows (accepted/duplicate/rejected events, a 503 overloaded, undecodable
// records → dead letters, entitlement checks, webhook deliveries), and then every dashboard query is
// evaluated over Prometheus's HTTP API: each returns series, and the key ones a positive value.
// Also: every metric name the dashboard uses appears in the running services' /metrics.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, ensureTopics, migratePostgres } from '@meterline/core';
import { type Aggregator, startAggregator } from '@meterline/aggregator';
import { type BillingHandle, startBilling } from '@meterline/billing';
import { type Gateway, startGateway } from '@meterline/gateway';
import { ADMIN_SECRET, createOrg } from '../../services/billing/test/helpers.ts';
import { testConfig } from '../support/env.ts';
import { uniqueId } from '../support/fixtures.ts';
import { waitFor } from '../support/wait.ts';
import {
  concreteExpr,
  dashboardTargets,
  type DashboardTarget,
  exposedNames,
  metricNames,
  PROMETHEUS_SERIES,
  ROOT,
} from './dashboard-queries.ts';

// Prometheus listens on a free port of the dashboards' private range (19710-19719): several runs of
// this file side by side must not meet
let PROM = '';

/** Queries that must answer a value > 0 once the traffic below has run (panel title / refId). */
const POSITIVE = new Set([
  'Events accepted/A',
  'Dead letters in range/A',
  'Freshness p99/A',
  'Check latency p99/A',
  'Scrape targets up/A',
  'Meterline alerts pending and firing/A', // MeterlineDeadLetters pending after the undecodable burst
  'Events by outcome/A',
  'Rejected and retried events by reason/A',
  'Requests answered 503 by cause/A',
  'Kafka produce latency (acks=all)/C',
  'Kafka sends by result/A',
  'Events counted and duplicates skipped/A',
  'Dead letters by reason/A',
  'Freshness (gateway receive → queryable)/C',
  'ClickHouse insert latency p99 by kind/A',
  'Check latency/C',
  'Checks by route and status/A',
  'Check time p99 by stage/A',
  'Webhook deliveries by outcome/A',
  'Webhook delivery latency/C',
  'Webhook deliveries in range by outcome/A',
  'HTTP 5xx ratio by service/A', // the gateway's 503
  'Backfills/B', // slices of the second round's new metric
  'Backfill time to first slice/B',
  'CPU by instance/A',
  'Memory and event loop/A',
]);
/** Queries whose series exist only while something fails (labelled counters are created on first use). */
const MAY_BE_EMPTY = new Map([
  ['Retries and partition backoffs by stage/A', 'a step retried while a dependency is down'],
  ['Retries and partition backoffs by stage/B', 'a partition paused after a step kept failing'],
]);
const key = (t: DashboardTarget) => `${t.panelTitle}/${t.refId}`;

const run = uniqueId('dash');
const cfg = testConfig({
  KAFKA_EVENTS_TOPIC: `${run}.events`,
  KAFKA_DEAD_LETTER_TOPIC: `${run}.dlq`,
  KAFKA_EVENTS_PARTITIONS: '2',
  AGGREGATOR_GROUP_ID: `${run}.aggregator`,
  AGGREGATOR_LAG_INTERVAL_MS: '500',
  AGGREGATOR_METRIC_POLL_MS: '200',
  // a batch above this is answered 503 overloaded: the 503 panels get a real series
  GATEWAY_MAX_IN_FLIGHT_EVENTS: '50',
  GATEWAY_PORT: '0',
  AGGREGATOR_PORT: '0',
  ADMIN_SECRET,
  // a Postgres database of its own: this file runs a webhook delivery worker, which in the shared test
  // database would claim (and, with its short retry schedule, abandon) other files' deliveries
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/meterline_dashboard_test',
});

let gateway: Gateway;
let aggregator: Aggregator;
let billing: BillingHandle;
let prometheus: ChildProcess | null = null;
let prometheusLog = '';
let receiver: http.Server;
let receiverUrl = '';
let dir = '';

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
async function query(expr: string): Promise<Sample[]> {
  const res = await fetch(`${PROM}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) });
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
  // a query Prometheus refuses is a broken panel, not something to wait out
  if (body.status !== 'success') throw new Error(`Prometheus refused ${expr}: ${body.error}`);
  expect(body.data!.resultType).toBe('vector');
  return body.data!.result;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

beforeAll(async () => {
  await migratePostgres(cfg.postgresUrl); // creates the database on first use
  const admin = createKafka(cfg.kafka).admin();
  await admin.connect();
  await ensureTopics(admin, cfg.kafka);
  await admin.disconnect();

  receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  gateway = await startGateway(cfg);
  aggregator = await startAggregator(cfg, { backfillSettleMs: 200 });
  // a delivery worker of its own, polling fast (the test environment has none by default)
  billing = await startBilling(cfg, {}, { port: 0, renewalIntervalMs: 0, webhooks: { intervalMs: 50, retryScheduleMs: [100, 200] } });

  dir = mkdtempSync(path.join(tmpdir(), 'meterline-prometheus-'));
  const hostPort = (url: string) => new URL(url).host;
  writeFileSync(
    `${dir}/prometheus.yml`,
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [`${ROOT}infra/prometheus/alerts.yml`],
      scrape_configs: [{ job_name: 'meterline', static_configs: [{ targets: [gateway.url, aggregator.url, billing.url].map(hostPort) }] }],
    }),
  );
  // the first port of the range this Prometheus binds; "ready" only counts when it is this run's
  // (its config file), not another run's that took the port in between
  for (let port = 19710; port <= 19719 && !PROM; port++) {
    if (await portInUse(port)) continue;
    const child = spawn(
      'prometheus',
      [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/data-${port}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus = child;
    child.stderr!.on('data', (d) => {
      prometheusLog = (prometheusLog + d).slice(-4000);
    });
    const url = `http://127.0.0.1:${port}`;
    const ours = await waitFor(
      async () => {
        if (child.exitCode !== null) return 'exited'; // e.g. the port was taken meanwhile
        const flags = (await (await fetch(`${url}/api/v1/status/flags`)).json()) as { data: Record<string, string> };
        if (flags.data['config.file'] !== `${dir}/prometheus.yml`) return 'another';
        return (await fetch(`${url}/-/ready`)).status === 200 ? 'ready' : 'starting';
      },
      (state) => state !== 'starting',
      { what: `Prometheus on ${port}`, timeoutMs: 30_000 },
    ).catch((err) => {
      throw new Error(`${err.message}\n${prometheusLog}`);
    });
    if (ours === 'ready') PROM = url;
    else if (child.exitCode === null) child.kill('SIGTERM');
  }
  expect(PROM, `no Prometheus could listen on 19710-19719\n${prometheusLog}`).not.toBe('');
}, 120_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus!.once('exit', r));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await gateway?.stop();
  await aggregator?.stop();
  await billing?.stop();
  await new Promise((r) => receiver?.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('the Grafana dashboard over a real Prometheus scraping the services', () => {
  it('every dashboard query evaluates; each shows series once the traffic ran, the key ones a positive value', async () => {
    const targets = dashboardTargets();
    for (const k of [...POSITIVE, ...MAY_BE_EMPTY.keys()]) expect(targets.map(key), `${k} is not a dashboard query`).toContain(k);

    const org = await createOrg(billing.url);
    const api = (p: string, b: unknown) => post(billing.url + p, b, { 'x-api-key': org.apiKey });
    const events = (body: unknown) => post(`${gateway.url}/v1/events`, body, { 'x-api-key': org.apiKey });
    expect((await api('/v1/webhook_endpoints', { url: `${receiverUrl}/hook` })).status).toBe(201);
    expect((await api('/v1/metrics', { metric_id: 'api_calls', event_name: 'api_call', aggregation: 'count' })).status).toBe(201);
    expect((await api('/v1/features', { feature_id: 'api', type: 'metered', metric_id: 'api_calls' })).status).toBe(201);
    const plan = {
      plan_id: 'pro',
      name: 'Pro',
      interval: 'month',
      flat_fee: '10.00',
      entitlements: [{ feature_id: 'api', limit: 100000 }],
    };
    expect((await api('/v1/plans', plan)).status).toBe(201);
    const producer = createKafka(cfg.kafka).producer();
    await producer.connect();

    // Labelled counters get their series on first use and rate() cannot see that first step, so the
    // traffic runs twice: once to create every series, once (after Prometheus scraped them) to move them.
    const traffic = async (round: number, undecodable: number) => {
      const customer = `c${round}`;
      // a new metric version: backfilled (slices, time to first slice)
      if (round > 1)
        expect((await api('/v1/metrics', { metric_id: `calls_${round}`, event_name: 'api_call', aggregation: 'count' })).status).toBe(201);
      expect((await api('/v1/customers', { customer_id: customer })).status).toBe(201); // a webhook event
      expect((await api('/v1/subscriptions', { customer_id: customer, plan_id: 'pro' })).status).toBe(201);
      const batch = Array.from({ length: 10 }, (_, i) => ({
        event_name: 'api_call',
        customer_id: customer,
        idempotency_id: `${run}-${round}-${i}`,
      }));
      expect((await events({ batch })).status).toBe(200);
      expect((await events({ batch })).status).toBe(200); // duplicates
      expect((await events({ batch: [{ event_name: 'api_call' }] })).status).toBe(400); // rejected: no customer_id
      const tooMany = Array.from({ length: 60 }, (_, i) => ({
        event_name: 'api_call',
        customer_id: customer,
        idempotency_id: `${run}-${round}-x${i}`,
      }));
      expect((await events({ batch: tooMany })).status).toBe(503); // overloaded
      await producer.send({
        topic: cfg.kafka.eventsTopic,
        messages: Array.from({ length: undecodable }, () => ({ value: Buffer.from('not avro') })),
      });
      for (let i = 0; i < 3; i++) {
        const check = await api('/v1/check', { customer_id: customer, feature_id: 'api' });
        expect(check.status).toBe(200);
        expect(((await check.json()) as { allowed: boolean }).allowed).toBe(true);
      }
    };
    try {
      await traffic(1, 5);
      await waitFor(
        async () =>
          Promise.all(
            [
              'meterline_aggregator_dead_letters_total',
              'meterline_billing_webhook_deliveries_total{outcome="succeeded"}',
              'meterline_gateway_events_total{outcome="accepted"}',
              'meterline_gateway_unavailable_total',
              'meterline_billing_check_stage_seconds_count',
            ].map(async (s) => (await query(s)).length),
          ),
        (counts) => counts.every((n) => n > 0),
        { what: 'the first round scraped', timeoutMs: 30_000 },
      );
      // a burst well above the MeterlineDeadLetters threshold (0.1/s over 5 min) puts it pending
      await traffic(2, 100);
    } finally {
      await producer.disconnect();
    }

    const opts = { rateInterval: '1m', range: '5m' };
    // what the panels show is what happened (checked while waiting: an alert or series may come later
    // than the first positive value of its panel)
    const SHOWS: Record<string, (r: Sample[]) => boolean> = {
      'Dead letters by reason/A': (r) => r.some((s) => s.metric.attributed === 'no' && Number(s.value[1]) > 0), // undecodable: no organization
      'Events by outcome/A': (r) => ['accepted', 'duplicate', 'rejected'].every((o) => r.some((s) => s.metric.outcome === o)),
      'Requests answered 503 by cause/A': (r) => r.some((s) => s.metric.reason === 'overloaded'),
      'Meterline alerts pending and firing/A': (r) => r.some((s) => s.metric.alertname === 'MeterlineDeadLetters'),
      'Scrape targets up/A': (r) => r.length === 3 && r.every((s) => s.value[1] === '1'),
      'Webhook deliveries in range by outcome/A': (r) => Number(r.find((s) => s.metric.outcome === 'succeeded')?.value[1]) >= 2,
    };
    for (const k of Object.keys(SHOWS)) expect(targets.map(key)).toContain(k);
    const unmet = (results: Map<string, Sample[]>) =>
      targets.filter((t) => {
        const r = results.get(key(t))!;
        if (SHOWS[key(t)] && !SHOWS[key(t)]!(r)) return true;
        if (MAY_BE_EMPTY.has(key(t))) return false;
        if (POSITIVE.has(key(t))) return !r.some((s) => Number(s.value[1]) > 0 && Number.isFinite(Number(s.value[1])));
        return r.length === 0;
      });
    const evaluate = async () =>
      new Map(await Promise.all(targets.map(async (t) => [key(t), await query(concreteExpr(t.expr, opts))] as const)));
    let last = new Map<string, Sample[]>();
    await waitFor(
      async () => {
        last = await evaluate();
        return unmet(last).map(key);
      },
      (missing) => missing.length === 0,
      { what: 'every dashboard query showing data (last value: the queries not yet showing it)', timeoutMs: 45_000, intervalMs: 500 },
    );
    expect(unmet(last)).toEqual([]);
  }, 120_000);

  it("every metric name the dashboard uses is in the running services' /metrics", async () => {
    const exposed = new Map(PROMETHEUS_SERIES);
    for (const url of [gateway.url, aggregator.url, billing.url]) {
      for (const [n, labels] of exposedNames(await (await fetch(`${url}/metrics`)).text())) exposed.set(n, labels);
    }
    for (const t of dashboardTargets()) for (const n of metricNames(t.expr)) expect(exposed.has(n), `${key(t)}: ${n}`).toBe(true);
  });
});
