// The Grafana dashboard and its provisioning, checked without Grafana or Docker (neither runs here):
// the dashboard has the shape Grafana loads (uid, grid, datasource references to the provisioned uid),
// every PromQL expression parses (promtool, on a rules file made of them), every metric and label it
// names is one the services register, and docker-compose mounts provisioning files that exist.
// dashboard.int.test.ts evaluates the same queries against a real Prometheus scraping real services.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetricsRegistry, instrumentHttp } from '@meterline/core';
import { aggregatorMetrics } from '../../services/aggregator/src/telemetry.ts';
import { billingMetrics } from '../../services/billing/src/telemetry.ts';
import { createGatewayMetrics } from '../../services/gateway/src/metrics.ts';
import {
  concreteExpr,
  dashboardPanels,
  dashboardTargets,
  labelNames,
  legendLabels,
  loadDashboard,
  metricNames,
  PROMETHEUS_SERIES,
  ROOT,
  TARGET_LABELS,
  variableSelector,
} from './dashboard-queries.ts';

const dashboard = loadDashboard();
const targets = dashboardTargets(dashboard);
const datasources = parse(readFileSync(`${ROOT}infra/grafana/provisioning/datasources/prometheus.yml`, 'utf8'));
const providers = parse(readFileSync(`${ROOT}infra/grafana/provisioning/dashboards/meterline.yml`, 'utf8'));
const prometheusYml = parse(readFileSync(`${ROOT}infra/prometheus/prometheus.yml`, 'utf8'));
// docker-compose's own rendering: variables substituted, paths made absolute
const compose = parse(execFileSync('docker-compose', ['-f', `${ROOT}docker-compose.yml`, 'config'], { encoding: 'utf8' }));

/** Metric name -> label names, from the registries the three services build (their factories). */
async function serviceMetrics(): Promise<Map<string, Set<string>>> {
  const registries: Registry[] = [];
  for (const service of ['gateway', 'aggregator', 'billing']) {
    const r = createMetricsRegistry(service);
    // instrumentHttp only adds an onResponse hook: a stub app is enough to register its histogram
    instrumentHttp({ addHook() {} } as unknown as FastifyInstance, r);
    if (service === 'gateway') createGatewayMetrics(r);
    if (service === 'aggregator') aggregatorMetrics(r);
    if (service === 'billing') billingMetrics(r);
    registries.push(r);
  }
  const out = new Map<string, Set<string>>();
  for (const r of registries) {
    for (const m of await r.getMetricsAsJSON()) {
      const labels = new Set<string>([...((r.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? [])]);
      const histogram = String(m.type) === 'histogram';
      const names = histogram ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
      if (histogram) labels.add('le');
      for (const n of names) out.set(n, new Set([...(out.get(n) ?? []), ...labels]));
    }
    r.clear();
  }
  return out;
}

describe('Grafana dashboard (infra/grafana/dashboards/meterline.json)', () => {
  const dsUid: string = datasources.datasources[0].uid;

  it('has the shape Grafana provisions: uid, title, schema version, unique ids, a 24-column grid without overlaps', () => {
    expect(dashboard.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/); // Grafana's uid limit is 40 characters
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36); // datasource references by uid
    expect(dashboard.id ?? null).toBeNull(); // an id would clash with the instance's own
    const panels = dashboardPanels(dashboard);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Map<string, string>();
    for (const p of panels) {
      expect(['row', 'stat', 'timeseries', 'table', 'bargauge'], p.title).toContain(p.type);
      expect(p.title, `panel ${p.id}`).toBeTruthy();
      const { x, y, w, h } = p.gridPos;
      for (const v of [x, y, w, h]) expect(Number.isInteger(v), p.title).toBe(true);
      expect(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${p.title} ${JSON.stringify(p.gridPos)}`).toBe(true);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          const taken = cells.get(`${i},${j}`);
          expect(taken, `${p.title} overlaps ${taken}`).toBeUndefined();
          cells.set(`${i},${j}`, p.title);
        }
    }
    // every row starts below everything of the previous row
    const rows = panels.filter((p) => p.type === 'row');
    expect(rows.length).toBeGreaterThan(0);
    for (const p of panels) if (p.type === 'row') expect(p.gridPos).toMatchObject({ x: 0, w: 24, h: 1 });
  });

  it('covers what issue #14 asks for: ingest, Kafka produce, lag, stall, dead letters, freshness, checks, webhooks', () => {
    const all = targets.map((t) => t.expr).join('\n');
    for (const metric of [
      'meterline_gateway_events_total',
      'meterline_gateway_kafka_produce_seconds_bucket',
      'meterline_aggregator_consumer_lag',
      'meterline_aggregator_partition_stalled',
      'meterline_aggregator_dead_letters_total',
      'meterline_aggregator_event_freshness_seconds_bucket',
      'meterline_billing_check_stage_seconds_bucket',
      'meterline_billing_webhook_deliveries_total',
      'meterline_billing_webhook_delivery_latency_seconds_bucket',
    ])
      expect(all).toContain(metric);
    expect(all).toMatch(/meterline_http_request_duration_seconds_bucket\{service="billing", route=~"\/v1\/check\|/);
  });

  it('every panel and query uses the provisioned Prometheus datasource by uid, and the variables too', () => {
    expect(datasources.apiVersion).toBe(1);
    expect(datasources.datasources).toHaveLength(1);
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', access: 'proxy', uid: dsUid });
    for (const p of dashboardPanels(dashboard)) {
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: dsUid });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = p.targets.map((t: { refId: string }) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
    for (const t of targets) {
      expect(t.datasource, `${t.panelTitle} ${t.refId}`).toEqual({ type: 'prometheus', uid: dsUid });
      expect(t.expr.trim(), `${t.panelTitle} ${t.refId}`).not.toBe('');
    }
    const vars = dashboard.templating.list;
    expect(vars.map((v: { name: string }) => v.name)).toEqual(['job', 'instance']);
    for (const v of vars) expect(v).toMatchObject({ type: 'query', datasource: { type: 'prometheus', uid: dsUid }, allValue: '.*' });
  });

  it('every PromQL expression parses (promtool check rules over a rules file of them)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meterline-dashboard-'));
    try {
      const exprs = [
        ...targets.map((t) => ({ where: `${t.panelTitle} ${t.refId}`, expr: t.expr })),
        // label_values(<selector>, label): the selector must parse too
        ...dashboard.templating.list.map((v: { name: string; definition: string }) => ({
          where: `variable ${v.name}`,
          expr: variableSelector(v.definition),
        })),
      ];
      const rules = {
        groups: [
          {
            name: 'dashboard',
            rules: exprs.map((e, i) => ({
              record: `dashboard:query_${i}`,
              expr: concreteExpr(e.expr, { rateInterval: '1m', range: '1h' }),
            })),
          },
        ],
      };
      writeFileSync(`${dir}/rules.json`, JSON.stringify(rules));
      // promtool prints the failing expression on stderr and exits 1: execFileSync throws with it
      const out = execFileSync('promtool', ['check', 'rules', `${dir}/rules.json`], { encoding: 'utf8', stdio: 'pipe' });
      expect(out).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the expression checks can fail: a broken query is refused by promtool', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meterline-dashboard-'));
    try {
      writeFileSync(
        `${dir}/rules.json`,
        JSON.stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum by (le (rate(x[1m]))' }] }] }),
      );
      expect(() => execFileSync('promtool', ['check', 'rules', `${dir}/rules.json`], { stdio: 'pipe' })).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect([...metricNames('histogram_quantile(0.99, sum by (le, kind) (rate(a_bucket{x="y"}[5m]))) / on (z) b or vector(1)')]).toEqual([
      'a_bucket',
      'b',
    ]);
    expect([...labelNames('sum by (le, kind) (rate(a_bucket{x="y", job=~"$job"}[5m]))')].sort()).toEqual(['job', 'kind', 'le', 'x']);
  });

  it('every metric it queries is registered by a service, with the labels it matches, groups and names in legends', async () => {
    const exported = await serviceMetrics();
    const known = new Map([...exported, ...PROMETHEUS_SERIES]);
    for (const t of targets) {
      const where = `${t.panelTitle} ${t.refId}: ${t.expr}`;
      const names = metricNames(t.expr);
      expect(names.size, where).toBeGreaterThan(0);
      const labels = new Set(TARGET_LABELS);
      for (const n of names) {
        expect(known.has(n), `${where}\n  unknown metric ${n}`).toBe(true);
        for (const l of known.get(n) ?? []) labels.add(l);
      }
      for (const l of labelNames(t.expr)) expect(labels.has(l), `${where}\n  label ${l} is on none of ${[...names]}`).toBe(true);
      for (const l of legendLabels(t.legendFormat)) expect(labels.has(l), `${where}\n  legend label ${l}`).toBe(true);
    }
    for (const v of dashboard.templating.list) {
      const selector = variableSelector(v.definition);
      for (const n of metricNames(selector)) expect(known.has(n), `variable ${v.name}: ${n}`).toBe(true);
      for (const l of labelNames(selector)) expect(TARGET_LABELS.has(l), `variable ${v.name}: ${l}`).toBe(true);
    }
  });
});

describe('docker-compose: Prometheus and Grafana provisioned with the dashboard', () => {
  const services = compose.services;

  it('Prometheus scrapes the compose services on their ports and loads the alert rules', () => {
    expect(services.prometheus.volumes).toContainEqual(`${ROOT}infra/prometheus:/etc/prometheus:ro`);
    expect(services.prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(prometheusYml.rule_files).toContain('alerts.yml');
    expect(existsSync(`${ROOT}infra/prometheus/alerts.yml`)).toBe(true);
    const job = prometheusYml.scrape_configs.find((s: { job_name: string }) => s.job_name === 'meterline');
    const scraped: string[] = job.static_configs.flatMap((c: { targets: string[] }) => c.targets).sort();
    const expected = ['aggregator', 'billing', 'gateway'].map((s) => {
      const published = services[s].ports.map((p: { target: number }) => p.target);
      expect(published, s).toHaveLength(1);
      return `${s}:${published[0]}`;
    });
    expect(scraped).toEqual(expected.sort());
    // Grafana's $__rate_interval is sized from the datasource's timeInterval: it must be the scrape interval
    expect(datasources.datasources[0].jsonData.timeInterval).toBe(prometheusYml.global.scrape_interval);
  });

  it('Grafana mounts provisioning that exists, its datasource points at the compose Prometheus, its provider at the dashboards', () => {
    const grafana = services.grafana;
    expect(grafana.image).toMatch(/^grafana\/grafana(-oss)?:\d+\.\d+\.\d+$/);
    const mounts = new Map<string, string>(
      grafana.volumes
        .filter((v: string) => v.startsWith('/'))
        .map((v: string) => {
          const [host, container] = v.split(':');
          return [container!, host!];
        }),
    );
    expect(mounts.get('/etc/grafana/provisioning')).toBe(`${ROOT}infra/grafana/provisioning`);
    for (const [, host] of mounts) expect(statSync(host).isDirectory(), host).toBe(true);
    // the datasource URL is the compose service and the port Prometheus listens on
    const url = new URL(datasources.datasources[0].url);
    expect(url.hostname).toBe('prometheus');
    expect(services.prometheus.ports.map((p: { target: number }) => String(p.target))).toContain(url.port);
    // the provider's path is a mounted directory holding the dashboard
    const providerPath: string = providers.providers[0].options.path;
    expect(providers.providers[0]).toMatchObject({ type: 'file', allowUiUpdates: false });
    const host = mounts.get(providerPath);
    expect(host, `${providerPath} is not mounted`).toBeDefined();
    expect(existsSync(`${host}/meterline.json`)).toBe(true);
    expect(JSON.parse(readFileSync(`${host}/meterline.json`, 'utf8')).uid).toBe(dashboard.uid);
    // the home dashboard is the mounted file
    const home: string = grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(existsSync(path.join(mounts.get(path.dirname(home))!, path.basename(home)))).toBe(true);
    // viewers need no login; the admin password is settable
    expect(grafana.environment).toMatchObject({ GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' });
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's own ${VAR:-default} syntax, not a template
    expect(readFileSync(`${ROOT}docker-compose.yml`, 'utf8')).toContain('GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:-admin}');
    expect(grafana.depends_on.prometheus).toEqual({ condition: 'service_healthy' });
    expect(services.prometheus.healthcheck).toBeDefined();
  });
});
