// Test helpers: a metric row straight into billable_metrics (the billing API is not under test here),
// producing Avro records like the gateway does, and an independent reference computation of usage.
import {
  createClickHouse,
  createKafka,
  createPostgres,
  encodeEvent,
  ensureTopics,
  eventKey,
  type ClickHouseClient,
  type Config,
  type MetricDefinition,
  type MetricFilter,
  type PgPool,
  type UsageEvent,
} from '@meterline/core';
import type { KafkaConfig as KafkaJsConfig, Producer } from 'kafkajs';

export interface TestBackends {
  pool: PgPool;
  ch: ClickHouseClient;
  producer: Producer;
  close(): Promise<void>;
}

/** Postgres pool, ClickHouse client and a connected producer for config, with its topics created. */
export async function connectBackends(config: Config, kafkaOverrides: Partial<KafkaJsConfig> = {}): Promise<TestBackends> {
  const pool = createPostgres(config.postgresUrl);
  const ch = createClickHouse(config.clickhouse);
  const kafka = createKafka(config.kafka, undefined, kafkaOverrides);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, config.kafka);
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  return {
    pool,
    ch,
    producer,
    async close() {
      await producer.disconnect().catch(() => undefined);
      await ch.close();
      await pool.end();
    },
  };
}

export async function insertMetric(pool: PgPool, m: Omit<MetricDefinition, 'version'> & { version?: number }): Promise<MetricDefinition> {
  const version = m.version ?? 1;
  await pool.query(
    `INSERT INTO billable_metrics (organization_id, metric_id, version, event_name, aggregation, property, filters, group_by)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
     ON CONFLICT (organization_id, metric_id) DO UPDATE SET version = EXCLUDED.version, event_name = EXCLUDED.event_name,
       aggregation = EXCLUDED.aggregation, property = EXCLUDED.property, filters = EXCLUDED.filters, group_by = EXCLUDED.group_by, updated_at = now()`,
    [m.organizationId, m.metricId, version, m.eventName, m.aggregation, m.property, JSON.stringify(m.filters), JSON.stringify(m.groupBy)],
  );
  return { ...m, version };
}

export async function produceEvents(producer: Producer, topic: string, events: UsageEvent[], chunk = 500): Promise<void> {
  for (let i = 0; i < events.length; i += chunk) {
    await producer.send({
      topic,
      acks: -1,
      messages: events.slice(i, i + chunk).map((e) => ({ key: eventKey(e), value: encodeEvent(e) })),
    });
  }
}

// ---- reference semantics (independent of the SQL) ----
function text(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : v ? 'true' : 'false';
}
function num(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(v.trim())) return Number(v);
  return null;
}
function passes(f: MetricFilter, props: Record<string, unknown>): boolean {
  const has = Object.hasOwn(props, f.property);
  const t = has ? text(props[f.property]) : undefined;
  switch (f.operator) {
    case 'equals':
      return has && t === f.value;
    case 'in':
      return has && f.values.includes(t!);
    case 'not_in':
      return !has || !f.values.includes(t!);
    default: {
      const n = has ? num(props[f.property]) : null;
      if (n === null) return false;
      return { eq: n === f.value, neq: n !== f.value, gt: n > f.value, gte: n >= f.value, lt: n < f.value, lte: n <= f.value }[f.operator];
    }
  }
}

export interface ExpectedQuery {
  customerId?: string;
  from: Date;
  to: Date;
  window?: 'minute' | 'hour' | 'day' | null;
  includeGroups?: boolean;
}

/** Expected rows keyed "customer|windowStartMs|g1|g2" -> value, from distinct (by idempotency id) events. */
export function expectedUsage(m: MetricDefinition, events: UsageEvent[], q: ExpectedQuery): Map<string, number> {
  const step = q.window ? { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[q.window] : null;
  const seen = new Set<string>();
  const acc = new Map<string, { values: number[]; uniq: Set<string>; latest: { t: number; v: number } | null; count: number }>();
  for (const e of events) {
    const id = `${e.organizationId}\0${e.idempotencyId}`;
    if (seen.has(id)) continue;
    seen.add(id);
    if (e.organizationId !== m.organizationId || e.eventName !== m.eventName) continue;
    if (q.customerId !== undefined && e.customerId !== q.customerId) continue;
    const bucket = Math.floor(e.timeCreatedMs / 60_000) * 60_000;
    if (e.timeCreatedMs < q.from.getTime() || e.timeCreatedMs >= q.to.getTime()) continue; // [from, to) by event time
    const props = e.properties as Record<string, unknown>;
    if (!m.filters.every((f) => passes(f, props))) continue;
    let n: number | null = 0;
    let s: string | undefined;
    if (m.aggregation === 'unique_count') {
      s = text(props[m.property!]);
      if (s === undefined) continue;
    } else if (m.aggregation !== 'count') {
      n = num(props[m.property!]);
      if (n === null) continue;
    }
    const groups = q.includeGroups ? m.groupBy.map((g) => text(props[g]) ?? '') : [];
    const key = [e.customerId, step ? Math.floor(bucket / step) * step : '', ...groups].join('|');
    const a = acc.get(key) ?? { values: [], uniq: new Set<string>(), latest: null, count: 0 };
    a.count++;
    a.values.push(n);
    if (s !== undefined) a.uniq.add(s);
    if (!a.latest || e.timeCreatedMs > a.latest.t) a.latest = { t: e.timeCreatedMs, v: n };
    acc.set(key, a);
  }
  const out = new Map<string, number>();
  for (const [k, a] of acc) {
    out.set(
      k,
      {
        count: a.count,
        sum: a.values.reduce((x, y) => x + y, 0),
        max: Math.max(...a.values),
        unique_count: a.uniq.size,
        latest: a.latest!.v,
      }[m.aggregation],
    );
  }
  return out;
}

export function rowsToMap(
  rows: { customerId: string; windowStart: Date | null; groups: Record<string, string>; value: number }[],
  m: MetricDefinition,
  includeGroups = false,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows)
    out.set(
      [r.customerId, r.windowStart ? r.windowStart.getTime() : '', ...(includeGroups ? m.groupBy.map((g) => r.groups[g] ?? '') : [])].join(
        '|',
      ),
      r.value,
    );
  return out;
}

export const sorted = (m: Map<string, number>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
