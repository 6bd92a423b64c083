// The events debugger asks recent windows first (1 h, 1 day, 31 days, then all, debug-api.ts) and must
// answer exactly what one unbounded "newest first, LIMIT 1 BY Kafka coordinates, LIMIT n" query answers:
// rows older than the first windows still appear when the recent ones hold fewer than `limit`, in order,
// each Kafka record once, another organization's never. Rows are written with the aggregator's own writer
// (insertRaw) into the test ClickHouse database, under organizations and a topic of this file's own.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyCache, createClickHouse, type ClickHouseClient, type UsageEvent } from '@meterline/core';
import { DEBUG_EVENT_WINDOWS_S, debugRoutes } from '../src/debug-api.ts';
import { insertRaw, type RawRow } from '../src/raw-sink.ts';
import { testConfig } from '../../../test/support/env.ts';
import { uniqueId } from '../../../test/support/fixtures.ts';

const config = testConfig();
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const orgA = uniqueId('org_dbgwin_a');
const orgB = uniqueId('org_dbgwin_b');
const topic = uniqueId('t_dbgwin');
const keys: Record<string, string> = { 'key-a': orgA, 'key-b': orgB };
const now = Date.now();

let ch: ClickHouseClient;
let app: FastifyInstance;
let queries = 0;
const stored: RawRow[] = [];

function row(org: string, i: number, tMs: number, customer = 'c1', partition = i % 3, offset = String(1000 + i)): RawRow {
  const event: UsageEvent = {
    organizationId: org,
    customerId: customer,
    eventName: i % 2 === 0 ? 'api_call' : 'llm_call',
    idempotencyId: `${org === orgA ? 'a' : 'b'}-${i}`,
    timeCreatedMs: tMs,
    receivedAtMs: now,
    properties: { i },
    source: 'api',
  };
  return { event, topic, partition, offset };
}

/** The unbounded answer, computed from what was written: newest first, then offset, partition, topic; each record once. */
function expected(filter: (r: RawRow) => boolean, limit: number): string[] {
  const seen = new Set<string>();
  return stored
    .filter((r) => r.event.organizationId === orgA && filter(r))
    .sort(
      (a, b) =>
        b.event.timeCreatedMs - a.event.timeCreatedMs ||
        Number(BigInt(b.offset) - BigInt(a.offset)) ||
        b.partition - a.partition ||
        (a.topic < b.topic ? 1 : a.topic > b.topic ? -1 : 0),
    )
    .filter((r) => {
      const k = `${r.topic}/${r.partition}/${r.offset}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .slice(0, limit)
    .map((r) => `${r.event.idempotencyId}@${r.partition}/${r.offset}`);
}

async function list(query: string, key = 'key-a'): Promise<{ ids: string[]; queries: number }> {
  const before = queries;
  const res = await app.inject({ method: 'GET', url: `/v1/debug/events?${query}`, headers: { 'x-api-key': key } });
  expect(res.statusCode, res.body).toBe(200);
  const events = res.json().events as { idempotency_id: string; kafka_partition: number; kafka_offset: string }[];
  return { ids: events.map((e) => `${e.idempotency_id}@${e.kafka_partition}/${e.kafka_offset}`), queries: queries - before };
}

beforeAll(async () => {
  ch = createClickHouse(config.clickhouse);
  // every query the routes send is counted (how many windows were asked)
  const counting = new Proxy(ch, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (...args: Parameters<ClickHouseClient['query']>) => {
          queries++;
          return target.query(...args);
        };
      return Reflect.get(target, prop, receiver);
    },
  });
  const cache = new ApiKeyCache(async (k) => (keys[k] ? { organizationId: keys[k]!, keyId: k } : null));
  app = Fastify();
  await app.register(debugRoutes({ ch: counting, keys: cache }));
  await app.ready();

  // organization A: 2 rows in the last hour (+1 ahead of now), 3 in the last day, 2 in the last 31 days,
  // 3 older (one 400 days ago), ties on time_created_ms, and one record written twice (a replayed insert)
  const ages = [-30 * MIN, 5 * MIN, 40 * MIN, 3 * HOUR, 3 * HOUR, 20 * HOUR, 3 * DAY, 20 * DAY, 45 * DAY, 90 * DAY, 400 * DAY];
  for (const [i, age] of ages.entries()) stored.push(row(orgA, i, now - age, i % 2 === 0 ? 'c1' : 'c2'));
  stored.push(row(orgA, 11, now - 3 * HOUR, 'c1', 2, '1004')); // same ms and offset as #4, another partition
  stored.push({ ...stored[6]! }); // record #6 (3 days old) stored twice
  // organization B: many recent rows, so its windows would fill first if scoping were lost
  for (let i = 0; i < 150; i++) stored.push(row(orgB, i, now - i * 1000, 'c1', 0, String(5000 + i)));
  await insertRaw(ch, stored);
});

afterAll(async () => {
  await app?.close();
  await ch?.close();
});

describe('events debugger windows', () => {
  it('windows are 1 h, 1 day, 31 days, then all', () => {
    expect(DEBUG_EVENT_WINDOWS_S).toEqual([3_600, 86_400, 31 * 86_400, null]);
  });

  it('answers every limit exactly like the unbounded query, widening only as far as needed', async () => {
    const total = expected(() => true, 1000).length;
    expect(total).toBe(12); // 13 rows, one record twice
    for (let limit = 1; limit <= total + 1; limit++) {
      const got = await list(`limit=${limit}`);
      expect(got.ids, `limit=${limit}`).toEqual(expected(() => true, limit));
      // the last hour holds 3 rows (one ahead of now), the last day 7, the last 31 days 9
      const windows = limit <= 3 ? 1 : limit <= 7 ? 2 : limit <= 9 ? 3 : 4;
      expect(got.queries, `limit=${limit}`).toBe(windows);
    }
    // the default limit (100): all of them, down to the one 400 days old
    const all = await list('');
    expect(all.ids).toEqual(expected(() => true, 100));
    expect(all.ids.at(-1)).toMatch(/^a-10@/);
  });

  it('is the same answer as the single unbounded SQL query', async () => {
    const rs = await ch.query({
      query: `SELECT idempotency_id, kafka_partition, kafka_offset FROM events WHERE organization_id = '${orgA}'
               ORDER BY time_created_ms DESC, kafka_offset DESC, kafka_partition DESC, kafka_topic DESC
               LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset LIMIT 100`,
      format: 'JSONEachRow',
    });
    const direct = (await rs.json<{ idempotency_id: string; kafka_partition: number; kafka_offset: string }>()).map(
      (r) => `${r.idempotency_id}@${r.kafka_partition}/${r.kafka_offset}`,
    );
    expect((await list('limit=100')).ids).toEqual(direct);
  });

  it('widens under customer and event name filters, from a `to` anchor, and stops at `from`', async () => {
    const c2 = (r: RawRow) => r.event.customerId === 'c2';
    expect((await list('customer_id=c2&limit=4')).ids).toEqual(expected(c2, 4));
    const api = (r: RawRow) => r.event.eventName === 'api_call';
    expect((await list('event_name=api_call&limit=5')).ids).toEqual(expected(api, 5));
    // windows anchored at `to` (2 days ago): the 3-day-old row is in its second window, older ones later
    const to = now - 2 * DAY;
    const before = (r: RawRow) => r.event.timeCreatedMs < to;
    for (const limit of [1, 2, 3, 5, 100]) expect((await list(`to=${to}&limit=${limit}`)).ids).toEqual(expected(before, limit));
    // `from` 50 days ago: never past it, whatever the limit
    const from = now - 50 * DAY;
    const since = (r: RawRow) => r.event.timeCreatedMs >= from;
    const got = await list(`from=${new Date(from).toISOString()}&limit=100`);
    expect(got.ids).toEqual(expected(since, 100));
    expect(got.queries).toBe(4); // 1 h, 1 day, 31 days, then `from` itself
    const recent = await list(`from=${now - 10 * MIN}&limit=100`);
    expect(recent.ids).toEqual(expected((r) => r.event.timeCreatedMs >= now - 10 * MIN, 100));
    expect(recent.queries).toBe(1); // `from` is tighter than the first window
  });

  it("never shows another organization's rows", async () => {
    const b = await list('limit=1000', 'key-b');
    expect(b.ids).toHaveLength(150);
    expect(b.ids.every((id) => id.startsWith('b-'))).toBe(true);
    const a = await list('limit=1000');
    expect(a.ids.every((id) => id.startsWith('a-'))).toBe(true);
  });
});
