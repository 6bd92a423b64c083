// Metric-version history, metric_version on invoice lines, and the CSV exports (issue #16 items 4-5),
// through the real pipeline (gateway -> Kafka -> aggregator -> ClickHouse -> billing):
//   - a definition change makes version 2; GET /v1/metrics/:id/versions lists both (v1 superseded when v2 starts);
//   - an invoice finalized under version 1 keeps metric_version 1 (and its v1 quantity) after the change;
//     one finalized after it says metric_version 2 with the v2 quantity (the filter counts fewer events);
//   - GET /v1/usage?format=csv (and Accept: text/csv) is the JSON series row for row, exact decimals;
//   - the invoice export has one row per line with the JSON invoice's amounts, RFC 4180 quoting of a
//     customer name with a comma and a quote, filters, keyset pages, and no other organization's rows.
// Expected quantities and amounts are the test's own arithmetic (per unit 0.10, flat fee 5.00).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator, type Aggregator } from '@meterline/aggregator';
import { startGateway, type Gateway } from '@meterline/gateway';
import { createPostgres, type PgPool } from '@meterline/core';
import { uniqueId } from '../../../test/support/fixtures.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { ADMIN_SECRET, client, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';
import { INVOICE_CSV_COLUMNS, invoiceCsvStream } from '../src/exports/invoices.ts';

const DAY = 86_400_000;
const NAME = 'Acme, "Intl" Ltd';

let billing: BillingHandle;
let gateway: Gateway;
let aggregator: Aggregator;
let pg: PgPool;
let org: Awaited<ReturnType<typeof createOrg>>;
let other: Awaited<ReturnType<typeof createOrg>>;

/** A small RFC 4180 parser (quoted fields, doubled quotes, CRLF): rows of fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (ch === '"') {
        quoted = false;
        i++;
      } else {
        field += ch;
        i++;
      }
    } else if (ch === '"' && field === '') {
      quoted = true;
      i++;
    } else if (ch === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 2;
    } else {
      expect(ch, `bare ${JSON.stringify(ch)} at ${i}`).not.toMatch(/[\r\n"]/);
      field += ch;
      i++;
    }
  }
  expect(field, 'the last row ends with CRLF').toBe('');
  expect(row).toEqual([]);
  return rows;
}

/** CSV rows as objects keyed by the header row. */
function records(text: string): { header: string[]; rows: Record<string, string>[] } {
  const [header, ...rest] = parseCsv(text);
  for (const r of rest) expect(r.length).toBe(header!.length);
  return { header: header!, rows: rest.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!]))) };
}

async function send(apiKey: string, events: { customer_id: string; event_name: string; time: Date; properties?: object }[]) {
  const res = await fetch(`${gateway.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify(
      events.map((e) => ({
        customer_id: e.customer_id,
        event_name: e.event_name,
        idempotency_id: uniqueId('e'),
        time_created: e.time.toISOString(),
        ...(e.properties ? { properties: e.properties } : {}),
      })),
    ),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

const q = (d: Date) => encodeURIComponent(d.toISOString());

async function getRaw(apiKey: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(billing.url + path, { headers: { 'x-api-key': apiKey, ...headers } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** A customer with a monthly subscription whose first period ended a minute ago; its period_close draft. */
async function customerWithEndedPeriod(o: typeof org, customerId: string, name: string | null = null) {
  const start = new Date(Date.now() - 60_000);
  start.setUTCMonth(start.getUTCMonth() - 1);
  expect((await o.api.post('/v1/customers', { customer_id: customerId, ...(name ? { name } : {}) })).status).toBe(201);
  const s = await o.api.post('/v1/subscriptions', { customer_id: customerId, plan_id: 'metered', start_date: start.toISOString() });
  expect(s.status, JSON.stringify(s.body)).toBe(201);
  const invoices = (await o.api.get(`/v1/invoices?subscription_id=${s.body.subscription_id}&limit=100`)).body.data as any[];
  const close = invoices.find((i) => i.reason === 'period_close');
  expect(close).toMatchObject({ status: 'draft' });
  return { start, sub: s.body.subscription_id as string, close };
}

const PLAN = {
  plan_id: 'metered',
  name: 'Metered',
  interval: 'month',
  flat_fee: '5.00',
  flat_fee_timing: 'in_advance',
  components: [{ metric_id: 'calls', pricing: { model: 'per_unit', unit_price: '0.10' } }],
};

const A = uniqueId('cust_a');
const B = uniqueId('cust_b');
const C = uniqueId('cust_c');
let subC: Awaited<ReturnType<typeof customerWithEndedPeriod>>;
let subA: Awaited<ReturnType<typeof customerWithEndedPeriod>>;
let subB: Awaited<ReturnType<typeof customerWithEndedPeriod>>;
let otherSub: Awaited<ReturnType<typeof customerWithEndedPeriod>>;

beforeAll(async () => {
  const started = await startTestBilling({ env: { GATEWAY_PORT: '0' } });
  billing = started.billing;
  pg = createPostgres(started.config.postgresUrl, { max: 2 });
  gateway = await startGateway(started.config, { pg });
  aggregator = await startAggregator({
    ...started.config,
    aggregator: { ...started.config.aggregator, port: 0, groupId: uniqueId('g_exports'), metricPollMs: 100 },
  });
  org = await createOrg(billing.url);
  other = await createOrg(billing.url);
  for (const o of [org, other]) {
    expect((await o.api.post('/v1/metrics', { metric_id: 'calls', event_name: 'call', aggregation: 'count' })).status).toBe(201);
    expect((await o.api.post('/v1/plans', PLAN)).status).toBe(201);
  }
  subA = await customerWithEndedPeriod(org, A, NAME);
  subB = await customerWithEndedPeriod(org, B);
  subC = await customerWithEndedPeriod(org, C);
  otherSub = await customerWithEndedPeriod(other, A, 'Other org customer');
  // 4 calls in region eu and 3 in us inside each first period (the other organization: 2, same ids)
  const calls = (c: string, at: Date) => [
    ...Array.from({ length: 4 }, () => ({ customer_id: c, event_name: 'call', time: at, properties: { region: 'eu' } })),
    ...Array.from({ length: 3 }, () => ({ customer_id: c, event_name: 'call', time: at, properties: { region: 'us' } })),
  ];
  await send(org.apiKey, [
    ...calls(A, new Date(subA.start.getTime() + DAY)),
    ...calls(B, new Date(subB.start.getTime() + DAY)),
    ...calls(C, new Date(subC.start.getTime() + DAY)),
  ]);
  await send(
    other.apiKey,
    Array.from({ length: 2 }, () => ({ customer_id: A, event_name: 'call', time: new Date(otherSub.start.getTime() + DAY) })),
  );
  for (const [o, c, n] of [
    [org, A, 7],
    [org, B, 7],
    [org, C, 7],
    [other, A, 2],
  ] as const)
    await waitFor(
      async () =>
        (await o.api.get(`/v1/usage?customer_id=${c}&metric_id=calls&from=${q(new Date(Date.now() - 40 * DAY))}&to=${q(new Date())}`)).body
          .total,
      (t) => t === n,
      { timeoutMs: 30_000, intervalMs: 50, what: `${n} calls of ${c}` },
    );
}, 180_000);

afterAll(async () => {
  await billing?.stop();
  await gateway?.stop();
  await aggregator?.stop();
  await pg?.end();
});

describe('metric versions and metric_version on invoice lines', () => {
  it('an invoice finalized under version 1 keeps metric_version 1; version 2 prices the next one; the history lists both', async () => {
    // A is finalized under version 1: 7 calls x 0.10
    const finA = await org.api.post(`/v1/invoices/${subA.close.invoice_id}/finalize`);
    expect(finA.status, JSON.stringify(finA.body)).toBe(200);
    const usageA = (finA.body.line_items as any[]).filter((l) => l.kind === 'usage');
    expect(usageA.map((l) => [l.metric_id, l.metric_version, l.quantity, l.amount_due])).toEqual([['calls', 1, '7', '0.70']]);
    const finC = await org.api.post(`/v1/invoices/${subC.close.invoice_id}/finalize`);
    expect(finC.status, JSON.stringify(finC.body)).toBe(200);
    expect(finC.body.total).toBe('5.70');

    // the definition changes: only region eu counts -> version 2
    const before = Date.now();
    const patched = await org.api.patch('/v1/metrics/calls', { filters: [{ property: 'region', operator: 'equals', value: 'eu' }] });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.version).toBe(2);
    // a rename is not a new version
    expect((await org.api.patch('/v1/metrics/calls', { name: 'API calls' })).body.version).toBe(2);

    const versions = await org.api.get('/v1/metrics/calls/versions');
    expect(versions.status).toBe(200);
    expect(versions.body).toMatchObject({ has_more: false, next_offset: null });
    const [v1, v2] = versions.body.data as any[];
    expect(versions.body.data).toHaveLength(2);
    expect(v1).toMatchObject({ metric_id: 'calls', version: 1, aggregation: 'count', filters: [], event_name: 'call' });
    expect(v2).toMatchObject({
      metric_id: 'calls',
      version: 2,
      name: 'API calls',
      filters: [{ property: 'region', operator: 'equals', value: 'eu' }],
      superseded_at: null,
    });
    expect(v1.superseded_at).toBe(v2.valid_from);
    expect(Date.parse(v2.valid_from)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(v1.valid_from)).toBeLessThan(Date.parse(v2.valid_from));
    // paging, and the history in the metric's answer
    const p1 = await org.api.get('/v1/metrics/calls/versions?limit=1');
    expect(p1.body).toMatchObject({ has_more: true, next_offset: 1, data: [{ version: 1 }] });
    expect((await org.api.get('/v1/metrics/calls/versions?limit=1&offset=1')).body).toMatchObject({
      has_more: false,
      data: [{ version: 2 }],
    });
    const one = await org.api.get('/v1/metrics/calls');
    expect(one.body.version).toBe(2);
    expect((one.body.versions as any[]).map((v) => v.version)).toEqual([1, 2]);

    // another organization's metric of the same id has its own single version; unknown metric: 404
    expect(((await other.api.get('/v1/metrics/calls/versions')).body.data as any[]).map((v) => [v.version, v.filters])).toEqual([[1, []]]);
    expect((await org.api.get('/v1/metrics/nope/versions')).status).toBe(404);

    // A's finalized invoice still says version 1 (and its 7 calls)
    const againA = await org.api.get(`/v1/invoices/${subA.close.invoice_id}`);
    expect((againA.body.line_items as any[]).filter((l) => l.kind === 'usage').map((l) => [l.metric_version, l.quantity])).toEqual([
      [1, '7'],
    ]);
    // the document shows the version too
    const doc = await getRaw(org.apiKey, `/v1/invoices/${subA.close.invoice_id}/document`);
    expect(doc.text).toContain('calls v1');

    // B is finalized once version 2's usage is complete: 4 eu calls x 0.10, metric_version 2
    await waitFor(
      async () =>
        (await org.api.get(`/v1/usage?customer_id=${B}&metric_id=calls&from=${q(new Date(Date.now() - 40 * DAY))}&to=${q(new Date())}`))
          .body,
      (b) => b.metric_version === 2 && b.metric_version_status === 'ready' && b.total === 4,
      { timeoutMs: 30_000, intervalMs: 100, what: 'version 2 backfilled for B' },
    );
    const finB = await org.api.post(`/v1/invoices/${subB.close.invoice_id}/finalize`);
    expect(finB.status, JSON.stringify(finB.body)).toBe(200);
    expect(
      (finB.body.line_items as any[]).filter((l) => l.kind === 'usage').map((l) => [l.metric_version, l.quantity, l.amount_due]),
    ).toEqual([[2, '4', '0.40']]);
    // non-usage lines carry no metric_version
    for (const l of [...finA.body.line_items, ...finB.body.line_items] as any[])
      if (l.kind !== 'usage') expect(l.metric_version).toBeUndefined();

    // the version rows were written in the metric's own transactions: exactly the two versions, nothing else
    const { rows } = await pg.query(
      'SELECT version FROM billable_metric_versions WHERE organization_id = $1 AND metric_id = $2 ORDER BY version',
      [org.orgId, 'calls'],
    );
    expect(rows.map((r) => r.version)).toEqual([1, 2]);

    // A definition change is not retroactive: C's subscription ends, and the late-usage sweep of its
    // finalized first period (7 calls under v1; 4 under v2) finds nothing to bill - no adjustment
    // invoice of -0.30 for the change itself.
    const ended = await org.api.post(`/v1/subscriptions/${subC.sub}/cancel`, { type: 'end_current_subscription_and_dont_bill' });
    expect(ended.status, JSON.stringify(ended.body)).toBe(200);
    expect(ended.body.status).toBe('ended');
    const admin = client(billing.url, undefined, { 'x-admin-secret': ADMIN_SECRET });
    // the first run finalizes the cancellation's draft; the sweep of the next one (an hour later) checks the period
    for (const hours of [2, 4]) {
      const swept = await admin.post(`/admin/organizations/${org.orgId}/billing_run`, {
        as_of: new Date(Date.now() + hours * 3_600_000).toISOString(),
      });
      expect(swept.status, JSON.stringify(swept.body)).toBe(200);
      expect(swept.body).toMatchObject({ invoices: 0, failed: 0 });
    }
    const ofC = (await org.api.get(`/v1/invoices?subscription_id=${subC.sub}&limit=100`)).body.data as any[];
    expect(ofC.filter((i) => i.reason === 'usage_adjustment')).toEqual([]);
    const metricsText = await (await fetch(`${billing.url}/metrics`)).text();
    expect(metricsText).toMatch(/^meterline_billing_late_usage_skipped_total(\{[^}]*\})? [1-9]/m);
  });
});

describe('usage CSV', () => {
  it('GET /v1/usage?format=csv and Accept: text/csv are the JSON series row for row, exact decimals', async () => {
    expect(
      (
        await org.api.post('/v1/metrics', {
          metric_id: 'bytes',
          event_name: 'xfer',
          aggregation: 'sum',
          property: 'bytes',
          group_by: ['region'],
        })
      ).status,
    ).toBe(201);
    const base = new Date(Math.floor((Date.now() - 3 * DAY) / DAY) * DAY);
    const h = (n: number) => new Date(base.getTime() + n * 3_600_000);
    const U = uniqueId('u');
    await send(org.apiKey, [
      { customer_id: U, event_name: 'xfer', time: h(1), properties: { bytes: 0.1, region: 'eu' } },
      { customer_id: U, event_name: 'xfer', time: h(2), properties: { bytes: 0.2, region: 'eu' } },
      { customer_id: U, event_name: 'xfer', time: h(3), properties: { bytes: 1.5, region: 'us, "west"' } },
      { customer_id: U, event_name: 'xfer', time: h(25), properties: { bytes: 2.25, region: 'eu' } },
    ]);
    const range = `customer_id=${U}&metric_id=bytes&from=${q(base)}&to=${q(new Date(base.getTime() + 2 * DAY))}&window=day&group_by=true`;
    const json = await waitFor(
      async () => (await org.api.get(`/v1/usage?${range}&limit=200`)).body,
      (b) => (b.data as any[])?.length === 3 && Math.abs(b.total - 4.05) < 1e-9,
      { timeoutMs: 30_000, intervalMs: 50, what: 'the four transfers' },
    );
    const csv = await getRaw(org.apiKey, `/v1/usage?${range}&format=csv`);
    expect(csv.status, csv.text).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(csv.headers.get('content-disposition')).toBe(
      `attachment; filename="usage-${U}-bytes-${base.toISOString().slice(0, 10)}-${new Date(base.getTime() + 2 * DAY).toISOString().slice(0, 10)}.csv"`,
    );
    const { header, rows } = records(csv.text);
    expect(header).toEqual([
      'customer_id',
      'metric_id',
      'metric_version',
      'aggregation',
      'window',
      'time_zone',
      'window_start',
      'group.region',
      'value',
    ]);
    // the JSON series, row for row
    expect(rows.map((r) => [r.window_start, { region: r['group.region'] }, Number(r.value)])).toEqual(
      (json.data as any[]).map((p) => [p.window_start, p.groups, p.value]),
    );
    // and the exact values this test expects (0.1 + 0.2 is 0.3, not 0.30000000000000004)
    const day2 = new Date(base.getTime() + DAY).toISOString();
    expect(rows.map((r) => [r.window_start, r['group.region'], r.value]).sort()).toEqual(
      [
        [base.toISOString(), 'eu', '0.3'],
        [base.toISOString(), 'us, "west"', '1.5'],
        [day2, 'eu', '2.25'],
      ].sort(),
    );
    for (const r of rows)
      expect(r).toMatchObject({
        customer_id: U,
        metric_id: 'bytes',
        metric_version: '1',
        aggregation: 'sum',
        window: 'day',
        time_zone: 'UTC',
      });
    // the quoted group value is written as RFC 4180 says
    expect(csv.text).toContain(',"us, ""west""",1.5\r\n');

    // Accept: text/csv gives the same file; format=json (or no Accept) stays JSON
    const viaAccept = await getRaw(org.apiKey, `/v1/usage?${range}`, { accept: 'text/csv' });
    expect(viaAccept.text).toBe(csv.text);
    expect((await getRaw(org.apiKey, `/v1/usage?${range}&format=json`, { accept: 'text/csv' })).headers.get('content-type')).toMatch(
      /application\/json/,
    );
    expect(
      (await getRaw(org.apiKey, `/v1/usage?${range}`, { accept: 'application/json, text/csv;q=0.5' })).headers.get('content-type'),
    ).toMatch(/application\/json/);
    // no window: one row per group over the range, window_start empty
    const whole = records((await getRaw(org.apiKey, `/v1/usage?${range.replace('&window=day', '')}&format=csv`)).text);
    expect(whole.rows.map((r) => [r.window_start, r['group.region'], r.value]).sort()).toEqual(
      [
        ['', 'eu', '2.55'],
        ['', 'us, "west"', '1.5'],
      ].sort(),
    );
    // another organization asking for the same customer and metric id sees nothing of this one
    expect((await getRaw(other.apiKey, `/v1/usage?${range}&format=csv`)).status).toBe(404); // it has no metric "bytes"
    const otherCalls = records(
      (
        await getRaw(
          other.apiKey,
          `/v1/usage?customer_id=${A}&metric_id=calls&from=${q(new Date(Date.now() - 40 * DAY))}&to=${q(new Date())}&format=csv`,
        )
      ).text,
    );
    expect(otherCalls.rows.map((r) => r.value)).toEqual(['2']);
  });
});

describe('invoice CSV export', () => {
  it('one row per invoice line with the JSON amounts, quoting, filters, keyset pages, one organization only', async () => {
    const res = await getRaw(org.apiKey, '/v1/invoices/export.csv');
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers.get('content-disposition')).toMatch(
      new RegExp(`^attachment; filename="invoices-${org.orgId}-\\d{4}-\\d{2}-\\d{2}\\.csv"$`),
    );
    const { header, rows } = records(res.text);
    expect(header).toEqual([...INVOICE_CSV_COLUMNS]);

    // every JSON invoice of the organization, line by line
    const invoices = (await org.api.get('/v1/invoices?limit=200')).body.data as any[];
    const expected = invoices.flatMap((inv) =>
      (inv.line_items as any[]).map((l, i) => ({
        invoice_id: inv.invoice_id,
        number: inv.number ?? '',
        status: inv.status,
        customer_id: inv.customer_id,
        currency: inv.currency,
        invoice_total: inv.total,
        line_index: String(i),
        line_kind: l.kind,
        metric_id: l.metric_id ?? '',
        metric_version: l.metric_version === undefined || l.metric_version === null ? '' : String(l.metric_version),
        quantity: l.quantity,
        amount: l.amount_due,
        amount_exact: l.amount,
      })),
    );
    const pick = (r: Record<string, string>) => Object.fromEntries(Object.keys(expected[0]!).map((k) => [k, r[k]]));
    const byLine = (a: Record<string, string | undefined>, b: Record<string, string | undefined>) =>
      a.invoice_id! < b.invoice_id! ? -1 : a.invoice_id! > b.invoice_id! ? 1 : Number(a.line_index) - Number(b.line_index);
    expect(rows.map(pick).sort(byLine)).toEqual(expected.sort(byLine));
    expect(rows.length).toBeGreaterThanOrEqual(6);
    // per invoice, the line amounts add up to the total
    for (const inv of invoices) {
      const cents = rows.filter((r) => r.invoice_id === inv.invoice_id).reduce((s, r) => s + BigInt(r.amount!.replace('.', '')), 0n);
      expect(cents).toBe(BigInt(inv.total.replace('.', '')));
    }

    // A: the in-advance start fee 5.00; its period close: 7 calls x 0.10 under version 1 and the next period's 5.00
    const aRows = rows.filter((r) => r.customer_id === A);
    expect(aRows.map((r) => [r.line_kind, r.metric_id, r.metric_version, r.quantity, r.unit_amount, r.amount]).sort()).toEqual(
      [
        ['flat_fee', '', '', '1', '5', '5.00'],
        ['usage', 'calls', '1', '7', '0.1', '0.70'],
        ['flat_fee', '', '', '1', '5', '5.00'],
      ].sort(),
    );
    expect(rows.find((r) => r.customer_id === B && r.line_kind === 'usage')).toMatchObject({
      metric_version: '2',
      quantity: '4',
      amount: '0.40',
    });
    // the customer name with a comma and a quote: quoted, quotes doubled, read back intact
    for (const r of aRows) expect(r.customer_name).toBe(NAME);
    expect(res.text).toContain(`,"Acme, ""Intl"" Ltd",`);
    // periods are the invoice's and the line's
    const closeRow = aRows.find((r) => r.line_kind === 'usage')!;
    expect(closeRow.invoice_period_start).toBe(subA.close.period_start);
    expect(closeRow.line_period_start).toBe(subA.close.period_start);

    // no row of the other organization (which has a customer with the same id), and its export has only its own
    const mine = new Set(invoices.map((i) => i.invoice_id));
    expect(new Set(rows.map((r) => r.invoice_id))).toEqual(mine);
    const theirs = records((await getRaw(other.apiKey, '/v1/invoices/export.csv')).text).rows;
    expect(theirs.length).toBeGreaterThan(0);
    expect(theirs.filter((r) => mine.has(r.invoice_id!))).toEqual([]);
    expect(new Set(theirs.map((r) => r.customer_name))).toEqual(new Set(['Other org customer']));

    // filters: customer, status, period and created ranges; ?format=csv and Accept: text/csv on the list are the same export
    const onlyA = records((await getRaw(org.apiKey, `/v1/invoices/export.csv?customer_id=${A}`)).text).rows;
    expect(onlyA).toEqual(aRows);
    expect((await getRaw(org.apiKey, `/v1/invoices?customer_id=${A}&format=csv`)).text).toBe(
      (await getRaw(org.apiKey, `/v1/invoices/export.csv?customer_id=${A}`)).text,
    );
    expect((await getRaw(org.apiKey, `/v1/invoices?customer_id=${A}`, { accept: 'text/csv' })).text).toBe(
      (await getRaw(org.apiKey, `/v1/invoices/export.csv?customer_id=${A}`)).text,
    );
    const finalized = records((await getRaw(org.apiKey, '/v1/invoices/export.csv?status=finalized')).text).rows;
    expect(new Set(finalized.map((r) => r.status))).toEqual(new Set(['finalized']));
    expect(new Set(finalized.map((r) => r.invoice_id))).toEqual(
      new Set(invoices.filter((i) => i.status === 'finalized').map((i) => i.invoice_id)),
    );
    // period_start in [period_from, period_to): the first periods' invoices (start fee + close) have period_start = the start
    const periodRows = records(
      (await getRaw(org.apiKey, `/v1/invoices/export.csv?period_from=${q(subA.start)}&period_to=${q(new Date(subA.start.getTime() + 1))}`))
        .text,
    ).rows;
    expect(new Set(periodRows.map((r) => r.invoice_id))).toEqual(
      new Set(invoices.filter((i) => i.period_start === subA.start.toISOString()).map((i) => i.invoice_id)),
    );
    expect(records((await getRaw(org.apiKey, `/v1/invoices/export.csv?created_to=${q(new Date(0))}`)).text).rows).toEqual([]);
    expect(records((await getRaw(org.apiKey, `/v1/invoices/export.csv?created_from=${q(new Date(0))}`)).text).rows).toEqual(rows);
    // the same date filters on the JSON list
    expect((await org.api.get(`/v1/invoices?created_to=${q(new Date(0))}`)).body.data).toEqual([]);
    expect((await getRaw(org.apiKey, '/v1/invoices/export.csv?created_from=yesterday')).status).toBe(400);

    // keyset pages of one invoice give the same file as the route's pages
    const stream = invoiceCsvStream(
      billing.deps.pool,
      org.orgId,
      {},
      (err) => {
        throw err;
      },
      1,
    );
    let paged = '';
    for await (const chunk of stream) paged += String(chunk);
    expect(paged).toBe(res.text);
  });
});
