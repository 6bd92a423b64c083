// Property-based fuzzing of the whole ingest path: generated events (any Unicode including astral
// characters, lone surrogates and control characters, long strings, odd numbers, odd timestamps, odd
// keys, wrong types) are posted over HTTP to the real gateway → Kafka → aggregator → ClickHouse.
// Every event must be either rejected at the gateway with a field error, or stored byte-for-byte
// (read back from `events`) and counted exactly once in the aggregates; the pipeline keeps moving.
// FUZZ_EVENTS sets the number of events (default 1,500 in `npm test`; `npm run fuzz:events` runs 10,000).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { queryUsage, sqlString, type MetricDefinition } from '@meterline/core';
import { testConfig } from '../support/env.ts';
import { uniqueId } from '../support/fixtures.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import { waitFor } from '../support/wait.ts';

const EVENTS = Number(process.env.FUZZ_EVENTS ?? 1500);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2_147_483_647);
const run = uniqueId('fuzz');
const cfg = testConfig({
  KAFKA_EVENTS_TOPIC: `${run}.events`,
  KAFKA_DEAD_LETTER_TOPIC: `${run}.dlq`,
  AGGREGATOR_GROUP_ID: `${run}.aggregator`,
  GATEWAY_PORT: '0',
  AGGREGATOR_PORT: '0',
  AGGREGATOR_METRIC_POLL_MS: '200',
});

/** Valid but unusual event names; each gets a count metric, so every accepted event must count once. */
const NAMES = ['api_call', 'naïve événement', '😀 astral 𝄞', 'quote\'s "and" \\back', 'x'.repeat(255), '日本語'];

// ---- generators ---------------------------------------------------------------------------------
const oddChar = fc.constantFrom(
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0085',
  '\u009f',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\n',
  '\t',
  '\r',
  '😀',
  '𝄞',
  'é',
  'e\u0301',
  '"',
  '\\',
  "'",
  '\u2028',
  '\u2029',
  '\ufeff',
  '\ufffd',
  '\uffff',
  '%00',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal "${x}" is one of the odd strings sent
  '${x}',
  '</script>',
  ' ',
);
const oddString = (maxLength: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: Math.min(maxLength, 40) }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: Math.min(maxLength, 40) }) },
    {
      weight: 2,
      arbitrary: fc.array(fc.oneof(oddChar, fc.string({ unit: 'grapheme-ascii', maxLength: 4 })), { maxLength: 12 }).map((a) => a.join('')),
    },
    { weight: 1, arbitrary: fc.integer({ min: maxLength - 2, max: maxLength + 2 }).map((n) => 'é'.repeat(Math.max(0, n))) },
  );
const oddNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-310, 1.7976931348623157e308, -1e308, 1e21, 0.1, 2 ** 53 + 2, 1e-7),
);
const oddValue = fc.oneof(
  { weight: 4, arbitrary: oddString(1030) },
  { weight: 3, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom(null, [], {}, [1, 'a'], { nested: { deep: 1 } }) },
);
const recentTime = fc.integer({ min: -30 * 86_400_000, max: 3_600_000 }).map((d) => new Date(Date.now() + d));
const oddTime = fc.oneof(
  { weight: 4, arbitrary: recentTime.map((d) => d.toISOString()) },
  { weight: 1, arbitrary: recentTime.map((d) => d.toISOString().replace('Z', '+05:30')) },
  { weight: 1, arbitrary: recentTime.map((d) => d.toISOString().replace(/\.\d+Z$/, '.123456789Z')) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '2024-02-30T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '1969-12-31T23:59:59Z',
      '9999-12-31T23:59:59Z',
      '2026-06-30T23:59:60Z',
      'yesterday',
      '',
      '2026-01-01',
      1_700_000_000_000,
      null,
      '2026-01-01T00:00:00',
    ),
  },
);
const props = fc.dictionary(
  fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }) },
    { weight: 2, arbitrary: oddString(130) },
  ),
  oddValue,
  { maxKeys: 8 },
);
const event = fc.record(
  {
    event_name: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...NAMES) },
      { weight: 2, arbitrary: oddString(256) },
      { weight: 1, arbitrary: fc.constantFrom(42, null, ['a']) },
    ),
    customer_id: fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom('c1', 'c2', 'klant-ü', '客户', 'c 😀') },
      { weight: 2, arbitrary: oddString(256) },
    ),
    time_created: fc.option(oddTime, { nil: undefined }),
    properties: fc.option(fc.oneof({ weight: 6, arbitrary: props }, { weight: 1, arbitrary: fc.constantFrom(null, 'text', [1], 7) }), {
      nil: undefined,
    }),
    idempotency_suffix: fc.option(oddString(250), { nil: undefined }),
  },
  { requiredKeys: ['event_name', 'customer_id'] },
);

/** RFC 3339 to epoch ms as the contract says (fraction truncated to ms), independently of the gateway. */
function expectedTimeMs(s: string): number | null {
  const t = Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isFinite(t) ? t : null;
}

interface Sent {
  idempotencyId: string;
  customerId: string;
  eventName: string;
  propertiesJson: string;
  timeMs: number | null;
}

describe('fuzzing the ingest path end to end', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline(cfg, async ({ pool, org }) => {
      for (const [i, name] of NAMES.entries()) {
        await pool.query(
          `INSERT INTO billable_metrics (organization_id, metric_id, version, event_name, aggregation, property) VALUES ($1, $2, 1, $3, 'count', NULL)`,
          [org.organizationId, `m${i}`, name],
        );
      }
    });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it(`${EVENTS} generated events: each rejected with a field error or stored exactly and counted once`, async () => {
    const { ch, org, gateway, aggregator } = p;
    const samples = fc.sample(event, { numRuns: EVENTS, seed: SEED });
    const accepted: Sent[] = [];
    const reasons = new Map<string, number>();
    for (let b = 0; b < samples.length; b += 100) {
      const batch = samples.slice(b, b + 100).map((s, j) => {
        const { idempotency_suffix, ...rest } = s;
        // unique ids (a generated one when absent), so "counted once" is well defined
        return idempotency_suffix === undefined ? rest : { ...rest, idempotency_id: `${b + j}:${idempotency_suffix}` };
      });
      let res: Response;
      for (;;) {
        res = await fetch(`${gateway.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': org.apiKey },
          body: JSON.stringify(batch),
        });
        if (res.status !== 503) break; // a real dependency hiccup: retry the whole batch, as clients do
      }
      expect([200, 207, 400], `batch ${b}: HTTP ${res.status}`).toContain(res.status);
      const body = (await res.json()) as {
        results: {
          index: number;
          status: string;
          idempotency_id?: string;
          errors?: { field: string; reason: string; message: string }[];
        }[];
      };
      expect(body.results, JSON.stringify(body).slice(0, 500)).toHaveLength(batch.length);
      for (const r of body.results) {
        const sent = batch[r.index]!;
        if (r.status === 'accepted') {
          const p = sent.properties ?? {};
          accepted.push({
            idempotencyId: r.idempotency_id!,
            customerId: sent.customer_id as string,
            eventName: sent.event_name as string,
            propertiesJson: JSON.stringify(p),
            timeMs: typeof sent.time_created === 'string' ? expectedTimeMs(sent.time_created) : null,
          });
        } else {
          expect(r.status, `event ${JSON.stringify(sent).slice(0, 200)}`).toBe('rejected');
          expect(r.errors!.length).toBeGreaterThan(0);
          for (const e of r.errors!) {
            expect(typeof e.field).toBe('string');
            expect(e.reason).toMatch(/^[a-z_]+$/);
            expect(e.message.length).toBeGreaterThan(0);
            reasons.set(e.reason, (reasons.get(e.reason) ?? 0) + 1);
          }
        }
      }
    }
    console.log(
      `[fuzz-events] seed ${SEED}: ${samples.length} events, ${accepted.length} accepted, ${samples.length - accepted.length} rejected; reasons ${JSON.stringify(Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1])))}`,
    );
    expect(accepted.length).toBeGreaterThan(samples.length * 0.2);

    // stored byte-for-byte, each exactly once
    const rows = await waitFor(
      async () => {
        const rs = await ch.query({
          query: `SELECT idempotency_id, customer_id, event_name, properties, time_created_ms FROM events FINAL WHERE organization_id = ${sqlString(org.organizationId)}`,
          format: 'JSONEachRow',
        });
        return rs.json<{ idempotency_id: string; customer_id: string; event_name: string; properties: string; time_created_ms: string }>();
      },
      (r) => r.length >= accepted.length,
      { what: `${accepted.length} stored events`, timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(rows).toHaveLength(accepted.length);
    const byId = new Map(rows.map((r) => [r.idempotency_id, r]));
    for (const a of accepted) {
      const r = byId.get(a.idempotencyId);
      expect(r, `stored ${JSON.stringify(a).slice(0, 200)}`).toBeDefined();
      expect(r!.customer_id).toBe(a.customerId);
      expect(r!.event_name).toBe(a.eventName);
      expect(r!.properties).toBe(a.propertiesJson);
      if (a.timeMs !== null) expect(Number(r!.time_created_ms)).toBe(a.timeMs);
    }

    // counted exactly once in the aggregates (expected counts from what the gateway accepted)
    const expected = new Map<string, number>();
    for (const a of accepted) {
      const i = NAMES.indexOf(a.eventName);
      if (i >= 0) expected.set(`m${i}|${a.customerId}`, (expected.get(`m${i}|${a.customerId}`) ?? 0) + 1);
    }
    const actual = async () => {
      const got = new Map<string, number>();
      for (const [i, name] of NAMES.entries()) {
        const metric: MetricDefinition = {
          organizationId: org.organizationId,
          metricId: `m${i}`,
          version: 1,
          eventName: name,
          aggregation: 'count',
          property: null,
          filters: [],
          groupBy: [],
        };
        for (const r of await queryUsage(ch, { metric, from: new Date(0), to: new Date(Date.now() + 2 * 86_400_000) }))
          if (r.value !== 0) got.set(`m${i}|${r.customerId}`, r.value);
      }
      return got;
    };
    const sortEntries = (m: Map<string, number>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
    const got = await waitFor(actual, (g) => JSON.stringify(sortEntries(g)) === JSON.stringify(sortEntries(expected)), {
      what: 'aggregates equal to the accepted events',
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(sortEntries(got)).toEqual(sortEntries(expected));

    // the pipeline kept moving: nothing dead-lettered, consumer ready
    const dl = await ch.query({
      query: `SELECT count() AS c FROM dead_letters WHERE kafka_topic = ${sqlString(cfg.kafka.eventsTopic)}`,
      format: 'JSONEachRow',
    });
    expect((await dl.json<{ c: string }>())[0]!.c).toBe('0');
    expect((await aggregator.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});
