// Events debugger: recent raw events and dead letters of the caller's organization (API key auth),
// newest first. Dead letters that could not be attributed to an organization are visible to no one.
import { apiKeyFromHeaders, sqlNumber, sqlString, type ApiKeyCache, type ClickHouseClient } from '@meterline/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

interface ListQuery {
  customer_id?: string;
  /** events only: one entity of the customer(s) */
  entity_id?: string;
  event_name?: string;
  reason?: string;
  from?: string;
  to?: string;
  limit?: string;
}

function parseTime(v: string | undefined, name: string): number | null {
  if (v === undefined || v === '') return null;
  const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) throw Object.assign(new Error(`${name} must be an ISO-8601 time or epoch milliseconds`), { statusCode: 400 });
  return ms;
}

function parseLimit(v: string | undefined): number {
  if (v === undefined || v === '') return 100;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw Object.assign(new Error('limit must be an integer from 1 to 1000'), { statusCode: 400 });
  return n;
}

/** Look-back windows of the unfiltered-by-time events list, in seconds (null: everything). */
export const DEBUG_EVENT_WINDOWS_S: ReadonlyArray<number | null> = [3_600, 86_400, 31 * 86_400, null];

const iso = (s: string) => new Date(`${s.replace(' ', 'T')}Z`).toISOString();

/** The organization's rows (always), narrowed to a customer and event name when asked. */
function scope(org: string, q: ListQuery): string[] {
  const where = [`organization_id = ${sqlString(org)}`];
  if (q.customer_id) where.push(`customer_id = ${sqlString(q.customer_id)}`);
  if (q.event_name) where.push(`event_name = ${sqlString(q.event_name)}`);
  return where;
}

export function debugRoutes(deps: { ch: ClickHouseClient; keys: ApiKeyCache }) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const auth = async (req: FastifyRequest, reply: FastifyReply): Promise<string | null> => {
      const key = apiKeyFromHeaders(req.headers);
      const owner = key ? await deps.keys.resolve(key) : null;
      if (!owner) {
        await reply.code(401).send({ error: 'unauthorized', message: 'a valid organization API key is required' });
        return null;
      }
      return owner.organizationId;
    };

    app.get('/v1/debug/events', async (req, reply) => {
      const org = await auth(req, reply);
      if (!org) return reply;
      const q = req.query as ListQuery;
      const from = parseTime(q.from, 'from');
      const to = parseTime(q.to, 'to');
      const limit = parseLimit(q.limit);
      const where = scope(org, q);
      if (q.entity_id) where.push(`entity_id = ${sqlString(q.entity_id)}`);
      if (from !== null)
        where.push(`time_created >= toDateTime(${sqlNumber(Math.floor(from / 1000))})`, `time_created_ms >= ${sqlNumber(from)}`);
      if (to !== null) where.push(`time_created <= toDateTime(${sqlNumber(Math.floor(to / 1000))})`, `time_created_ms < ${sqlNumber(to)}`);
      const select = async (lowerS: number | null) => {
        const bounded =
          lowerS === null
            ? where
            : [...where, `time_created >= toDateTime(${sqlNumber(lowerS)})`, `time_created_ms >= ${sqlNumber(lowerS * 1000)}`];
        const rs = await deps.ch.query({
          query: `SELECT customer_id, entity_id, event_name, idempotency_id, time_created_ms, received_at_ms, toString(ingested_at, 'UTC') AS ingested_at, properties, source, kafka_partition, kafka_offset
                    FROM events WHERE ${bounded.join(' AND ')}
                   ORDER BY time_created_ms DESC, kafka_offset DESC, kafka_partition DESC, kafka_topic DESC
                   LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset LIMIT ${sqlNumber(limit)}`,
          format: 'JSONEachRow',
        });
        return rs.json<Record<string, string | number>>();
      };
      // Newest first over all the organization's rows would read and sort every one of them (1.4 s at 1M
      // events). So recent windows first: [anchor - 1 h, ...), then a day, 31 days, then no bound, stopping
      // at the first that yields `limit` rows. The same answer as the unbounded query: a window keeps
      // exactly the rows with time_created_ms >= its bound, i.e. a prefix of the sort order (ties of
      // time_created_ms fall on one side), and LIMIT 1 BY keeps each (topic, partition, offset)'s first row
      // of that order, so a window's deduplicated rows are a prefix of the unbounded deduplicated rows; with
      // `limit` of them they are its first `limit`. The time_created bound (implied: time_created is
      // floor(time_created_ms / 1000), raw-sink.ts) lets ClickHouse skip partitions and granules.
      const anchorS = Math.floor((to ?? Date.now()) / 1000);
      const fromS = from === null ? null : Math.floor(from / 1000);
      let rows: Record<string, string | number>[] = [];
      for (const windowS of DEBUG_EVENT_WINDOWS_S) {
        const lowerS = windowS === null ? null : anchorS - windowS;
        if (lowerS === null || lowerS <= 0 || (fromS !== null && lowerS <= fromS)) {
          rows = await select(null); // no bound left, or `from` (or the epoch) is already the tighter one
          break;
        }
        rows = await select(lowerS);
        if (rows.length >= limit) break;
      }
      return {
        events: rows.map((r) => ({
          customer_id: r.customer_id,
          entity_id: r.entity_id === '' ? null : r.entity_id,
          event_name: r.event_name,
          idempotency_id: r.idempotency_id,
          time_created: new Date(Number(r.time_created_ms)).toISOString(),
          received_at: Number(r.received_at_ms) > 0 ? new Date(Number(r.received_at_ms)).toISOString() : null,
          ingested_at: iso(String(r.ingested_at)),
          properties: JSON.parse(String(r.properties)) as unknown,
          source: r.source,
          kafka_partition: Number(r.kafka_partition),
          kafka_offset: String(r.kafka_offset),
        })),
      };
    });

    app.get('/v1/debug/dead-letters', async (req, reply) => {
      const org = await auth(req, reply);
      if (!org) return reply;
      const q = req.query as ListQuery;
      const from = parseTime(q.from, 'from');
      const to = parseTime(q.to, 'to');
      const where = scope(org, q);
      if (q.reason) where.push(`reason = ${sqlString(q.reason)}`);
      if (from !== null) where.push(`dead_lettered_at >= toDateTime(${sqlNumber(Math.floor(from / 1000))})`);
      if (to !== null) where.push(`dead_lettered_at < toDateTime(${sqlNumber(Math.ceil(to / 1000))})`);
      const rs = await deps.ch.query({
        query: `SELECT customer_id, event_name, idempotency_id, reason, error, payload_base64, kafka_topic, kafka_partition, kafka_offset, toString(dead_lettered_at, 'UTC') AS at
                  FROM dead_letters WHERE ${where.join(' AND ')}
                 ORDER BY dead_lettered_at DESC, kafka_offset DESC LIMIT 1 BY kafka_topic, kafka_partition, kafka_offset LIMIT ${parseLimit(q.limit)}`,
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string | number>>();
      return {
        dead_letters: rows.map((r) => ({
          customer_id: r.customer_id,
          event_name: r.event_name,
          idempotency_id: r.idempotency_id,
          reason: r.reason,
          error: r.error,
          payload_base64: r.payload_base64,
          kafka_topic: r.kafka_topic,
          kafka_partition: Number(r.kafka_partition),
          kafka_offset: String(r.kafka_offset),
          dead_lettered_at: iso(String(r.at)),
        })),
      };
    });
  };
}
