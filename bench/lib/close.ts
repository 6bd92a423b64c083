// The `close` bench phase: N subscriptions (default 10,000, BENCH_CLOSE_SUBSCRIPTIONS) whose first monthly
// period ended at the same instant, each with usage, closed by ONE scheduler pass (billing's
// closeDueSubscriptions, in-process, against the run's Postgres and ClickHouse): total seconds and
// subscriptions/s, usage queries sent, and a check that every subscription got its period_close
// invoice with the expected total. Baseline: the pre-batching path (closeSubscription one subscription
// at a time, its usage read per component inside its transaction) on a sample (BENCH_CLOSE_BASELINE,
// default 300), extrapolated to N.
//
// Setup is bulk SQL, not the API (the API is not what is measured): customers, a plan (flat fee 10.00 in
// advance + calls per unit 0.01 + gb per unit 1.00), subscriptions with current_period_end = T0.
// Usage goes straight into ClickHouse's metric_usage, the table the aggregator's rollups write: per
// customer 3 minute buckets of `calls` (event_count) and 1 of `gb` (sum_decimal), with the columns and
// values an aggregator window writes for such events (uniq/latest states left empty: count and sum
// metrics do not read them). Going through gateway -> Kafka -> aggregator instead would only add the
// e2e phase's ingest time; the close reads the same rows either way.
import { withTransaction, type ClickHouseClient, type Config, type PgPool } from '@meterline/core';
import { createTestOrganization } from '../../test/support/fixtures.ts';
import { startBilling } from '../../services/billing/src/app.ts';
import { closeDueSubscriptions } from '../../services/billing/src/invoices/scheduler.ts';
import { closeSubscription } from '../../services/billing/src/invoices/issue.ts';
import { clickHouseUsageReader, type UsageReader } from '../../services/billing/src/usage/reader.ts';

const calls = (i: number) => 3 + (i % 7) * 11; // events per customer
const gbCents = (i: number) => (i % 10) * 10 + 25; // gb used, in hundredths (0.25 .. 1.15, exact decimals)

/** Expected period_close total (minor units): usage of the period + next period's in-advance fee. */
const expectedMinor = (i: number) => calls(i) * 1 + gbCents(i) + 1000;

async function seed(pool: PgPool, ch: ClickHouseClient, n: number, t0: Date, tag: string) {
  const { organizationId: org } = await createTestOrganization(pool, { name: `bench close ${tag}` });
  const start = new Date(t0);
  start.setUTCMonth(start.getUTCMonth() - 1);
  await withTransaction(pool, async (db) => {
    await db.query(
      `INSERT INTO billable_metrics (organization_id, metric_id, version, name, event_name, aggregation, property, filters, group_by)
       VALUES ($1, 'calls', 1, 'calls', 'bench.close', 'count', NULL, '[]', '[]'), ($1, 'gb', 1, 'gb', 'bench.upload', 'sum', 'gb', '[]', '[]')`,
      [org],
    );
    await db.query(`INSERT INTO plans (organization_id, plan_id) VALUES ($1, 'p')`, [org]);
    await db.query(
      `INSERT INTO plan_versions (organization_id, plan_id, version, name, billing_interval, currency, flat_fee, flat_fee_timing, trial_days, components, entitlements)
       VALUES ($1, 'p', 1, 'P', 'month', 'USD', 10, 'in_advance', 0, $2, '[]')`,
      [
        org,
        JSON.stringify([
          { metric_id: 'calls', free_units: 0, pricing: { model: 'per_unit', unit_price: '0.01' } },
          { metric_id: 'gb', free_units: 0, pricing: { model: 'per_unit', unit_price: '1.00' } },
        ]),
      ],
    );
    await db.query(`INSERT INTO customers (organization_id, customer_id) SELECT $1, 'cc_' || i FROM generate_series(0, $2::int - 1) i`, [
      org,
      n,
    ]);
    await db.query(
      `INSERT INTO subscriptions (organization_id, subscription_id, customer_id, plan_id, plan_version, status, start_date, auto_renew,
         current_period_start, current_period_end, plan_started_at)
       SELECT $1, 'sub_' || lpad(i::text, 6, '0'), 'cc_' || i, 'p', 1, 'active', $3, true, $3, $4, $3 FROM generate_series(0, $2::int - 1) i`,
      [org, n, start, t0],
    );
  });
  // rollup rows (see the header); buckets inside the period, minute-aligned
  const b = (daysBefore: number) => Math.floor(t0.getTime() / 1000) - daysBefore * 86400;
  const q = (metric: string, bucket: number, count: string, dec: string, window: number) =>
    `SELECT ${`'${org}'`} AS organization_id, '${metric}' AS metric_id, toUInt32(1) AS metric_version, concat('cc_', toString(number)) AS customer_id,
            toDateTime(${bucket}) AS bucket, '' AS group_1, '' AS group_2, 'bench_close' AS kafka_topic, toUInt32(number % 6) AS kafka_partition,
            toUInt64(${window}) AS window_id, toUInt64(1) AS version, toUInt64(${count}) AS event_count, toFloat64(0) AS sum_value, toFloat64(0) AS max_value,
            toDecimal128(${dec}, 12) AS sum_decimal, toDecimal128(0, 12) AS max_decimal
       FROM system.numbers LIMIT ${n}`;
  const cols =
    'organization_id, metric_id, metric_version, customer_id, bucket, group_1, group_2, kafka_topic, kafka_partition, window_id, version, event_count, sum_value, max_value, sum_decimal, max_decimal';
  // calls(i) = 3 + (i % 7) * 11 split over 3 buckets: 1 + 2 + (i % 7) * 11; gb(i) in one bucket
  for (const part of [
    q('calls', b(20), '1', '0', 1),
    q('calls', b(10), '2', '0', 2),
    q('calls', b(2), '(number % 7) * 11', '0', 3),
    q('gb', b(5), '1', GB_TEXT, 4),
  ])
    await ch.command({ query: `INSERT INTO metric_usage (${cols}) ${part}` });
  return org;
}

const GB_X = '((number % 10) * 10 + 25)';
const GB_TEXT = `concat(toString(intDiv(${GB_X}, 100)), '.', if(${GB_X} % 100 < 10, '0', ''), toString(${GB_X} % 100))`;

/** A usage reader that counts the queries it sends (queryMany = one ClickHouse query for many customers). */
function countingReader(ch: ClickHouseClient) {
  const inner = clickHouseUsageReader(ch);
  const counts = { query: 0, queryMany: 0 };
  const reader: UsageReader = {
    query: (q) => {
      counts.query++;
      return inner.query(q);
    },
    queryMany: (q) => {
      counts.queryMany++;
      return inner.queryMany!(q);
    },
    versionStatus: (m) => inner.versionStatus(m),
  };
  return { reader, counts };
}

async function checkInvoices(pool: PgPool, org: string, n: number) {
  const { rows } = await pool.query<{ sub: string; total: string }>(
    `SELECT subscription_id AS sub, total_minor::text AS total FROM invoices WHERE organization_id = $1 AND reason = 'period_close'`,
    [org],
  );
  let wrong = 0;
  for (const r of rows) if (Number(r.total) !== expectedMinor(Number(r.sub.slice(4)))) wrong++;
  return { invoices: rows.length, wrongTotals: wrong, missing: n - rows.length };
}

export async function closePhase(o: {
  config: Config;
  pool: PgPool;
  ch: ClickHouseClient;
  subscriptions: number;
  baselineSample: number;
  concurrency?: number;
  log: (msg: string) => void;
}): Promise<Record<string, unknown>> {
  const t0 = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000); // an hour boundary, an hour ago
  const closeAt = new Date(t0.getTime() + 60_000);
  const { reader, counts } = countingReader(o.ch);
  const billing = await startBilling(o.config, { usage: reader }, { port: 0, renewalIntervalMs: 0 });
  try {
    const deps = billing.deps;
    o.log(`close: seeding ${o.subscriptions} subscriptions with usage`);
    const org = await seed(o.pool, o.ch, o.subscriptions, t0, 'batched');
    const started = performance.now();
    const r = await closeDueSubscriptions(deps, closeAt, { organizationId: org, concurrency: o.concurrency });
    const seconds = (performance.now() - started) / 1000;
    const check = await checkInvoices(o.pool, org, o.subscriptions);
    const batched = {
      subscriptions: o.subscriptions,
      seconds,
      subscriptionsPerSec: o.subscriptions / seconds,
      result: r,
      clickhouseQueries: counts.query + counts.queryMany,
      ...check,
    };
    o.log(
      `close: batched ${o.subscriptions} in ${seconds.toFixed(1)} s (${(o.subscriptions / seconds).toFixed(0)}/s), ${batched.clickhouseQueries} usage queries`,
    );

    // the old way on a sample: one subscription at a time, usage read per component in its transaction
    counts.query = 0;
    counts.queryMany = 0;
    const sampleOrg = await seed(o.pool, o.ch, o.baselineSample, t0, 'baseline');
    const ids = (
      await o.pool.query<{ id: string }>('SELECT subscription_id AS id FROM subscriptions WHERE organization_id = $1 ORDER BY 1', [
        sampleOrg,
      ])
    ).rows.map((x) => x.id);
    const bStarted = performance.now();
    for (const id of ids) await closeSubscription(deps, sampleOrg, id, closeAt, 'skip');
    const bSeconds = (performance.now() - bStarted) / 1000;
    const bCheck = await checkInvoices(o.pool, sampleOrg, o.baselineSample);
    const baseline = {
      subscriptions: o.baselineSample,
      seconds: bSeconds,
      msPerSubscription: (bSeconds * 1000) / o.baselineSample,
      extrapolatedSeconds: (bSeconds / o.baselineSample) * o.subscriptions,
      clickhouseQueries: counts.query + counts.queryMany,
      ...bCheck,
    };
    o.log(
      `close: old way ${o.baselineSample} in ${bSeconds.toFixed(1)} s (${baseline.msPerSubscription.toFixed(1)} ms each, ~${baseline.extrapolatedSeconds.toFixed(0)} s for ${o.subscriptions})`,
    );
    if (check.missing || check.wrongTotals) throw new Error(`close: ${check.missing} invoices missing, ${check.wrongTotals} wrong totals`);
    return { batched, baseline, targetSeconds: 30, met: seconds < 30 };
  } finally {
    await billing.stop();
  }
}
