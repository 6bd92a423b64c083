// SQL of webhook endpoints and the delivery log (migration 0008_webhooks.sql), and their API JSON.
import type { PgClient, PgPool } from '@meterline/core';

type Db = PgPool | PgClient;

export interface EndpointRow {
  endpoint_id: string;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: string | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const ECOLS =
  'endpoint_id, url, description, event_types, enabled, disabled_reason, secret, previous_secret, previous_secret_expires_at, created_at, updated_at';
const iso = (d: Date | null) => d?.toISOString() ?? null;

/** The public shape (no secret). */
export function endpointJson(r: EndpointRow, now = new Date()) {
  const overlap = r.previous_secret_expires_at && r.previous_secret_expires_at.getTime() > now.getTime();
  return {
    endpoint_id: r.endpoint_id,
    url: r.url,
    description: r.description,
    event_types: r.event_types,
    enabled: r.enabled,
    disabled_reason: r.disabled_reason,
    previous_secret_expires_at: overlap ? iso(r.previous_secret_expires_at) : null,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}

export async function insertEndpoint(
  db: Db,
  orgId: string,
  e: { endpoint_id: string; url: string; description: string | null; event_types: string[]; enabled: boolean; secret: string },
): Promise<EndpointRow | null> {
  const { rows } = await db.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (organization_id, endpoint_id, url, description, event_types, enabled, secret)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING ${ECOLS}`,
    [orgId, e.endpoint_id, e.url, e.description, e.event_types, e.enabled, e.secret],
  );
  return rows[0] ?? null;
}

export async function getEndpoint(db: Db, orgId: string, endpointId: string, lock = false): Promise<EndpointRow | null> {
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ECOLS} FROM webhook_endpoints WHERE organization_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL${lock ? ' FOR UPDATE' : ''}`,
    [orgId, endpointId],
  );
  return rows[0] ?? null;
}

export async function listEndpoints(db: Db, orgId: string, limit: number, offset: number): Promise<EndpointRow[]> {
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ECOLS} FROM webhook_endpoints WHERE organization_id = $1 AND deleted_at IS NULL
      ORDER BY created_at, endpoint_id LIMIT $2 OFFSET $3`,
    [orgId, limit + 1, offset],
  );
  return rows;
}

export async function updateEndpoint(
  db: Db,
  orgId: string,
  endpointId: string,
  p: { url?: string; description?: string | null; event_types?: string[]; enabled?: boolean },
): Promise<EndpointRow | null> {
  const { rows } = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints SET url = coalesce($3, url),
            description = CASE WHEN $4::boolean THEN $5 ELSE description END,
            event_types = coalesce($6::text[], event_types),
            enabled = coalesce($7::boolean, enabled),
            disabled_reason = CASE WHEN $7::boolean THEN NULL WHEN $7::boolean = false THEN 'disabled via the API' ELSE disabled_reason END,
            updated_at = now()
      WHERE organization_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL RETURNING ${ECOLS}`,
    [orgId, endpointId, p.url ?? null, p.description !== undefined, p.description ?? null, p.event_types ?? null, p.enabled ?? null],
  );
  return rows[0] ?? null;
}

/** Disables (410 from the receiver, deletion) and abandons the endpoint's pending deliveries. */
export async function disableEndpoint(db: Db, orgId: string, endpointId: string, reason: string, deleted = false) {
  await db.query(
    `WITH e AS (UPDATE webhook_endpoints SET enabled = false, disabled_reason = $3, updated_at = now(),
                       deleted_at = CASE WHEN $4::boolean THEN now() ELSE deleted_at END
                 WHERE organization_id = $1 AND endpoint_id = $2 RETURNING endpoint_id)
     UPDATE webhook_deliveries SET status = 'abandoned', last_error = coalesce(last_error, $3)
      WHERE organization_id = $1 AND endpoint_id = $2 AND status = 'pending'`,
    [orgId, endpointId, reason, deleted],
  );
}

export async function rotateSecret(db: Db, orgId: string, endpointId: string, secret: string, overlapSeconds: number) {
  const { rows } = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints SET previous_secret = CASE WHEN $4::int > 0 THEN secret ELSE NULL END,
            previous_secret_expires_at = CASE WHEN $4::int > 0 THEN now() + make_interval(secs => $4::int) ELSE NULL END,
            secret = $3, updated_at = now()
      WHERE organization_id = $1 AND endpoint_id = $2 AND deleted_at IS NULL RETURNING ${ECOLS}`,
    [orgId, endpointId, secret, overlapSeconds],
  );
  return rows[0] ?? null;
}

export interface DeliveryRow {
  delivery_id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  status: 'pending' | 'succeeded' | 'failed' | 'abandoned';
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_response_ms: number | null;
  last_response_body: string | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  attempt_log: {
    attempt: number;
    attempted_at: string;
    status_code: number | null;
    response_ms: number;
    response_body: string | null;
    error: string | null;
  }[];
}

const DCOLS = `d.delivery_id, d.event_id, ev.type AS event_type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at,
  d.last_status_code, d.last_response_ms, d.last_response_body, d.last_error, d.delivered_at, d.created_at,
  coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, 'attempted_at', a.attempted_at, 'status_code', a.status_code,
            'response_ms', a.response_ms, 'response_body', a.response_body, 'error', a.error) ORDER BY a.attempt)
     FROM webhook_attempts a WHERE a.delivery_id = d.delivery_id), '[]'::json) AS attempt_log`;

export function deliveryJson(r: DeliveryRow) {
  return {
    delivery_id: r.delivery_id,
    event_id: r.event_id,
    event_type: r.event_type,
    endpoint_id: r.endpoint_id,
    status: r.status,
    attempts: r.attempts,
    next_attempt_at: r.status === 'pending' ? r.next_attempt_at.toISOString() : null,
    last_attempt_at: iso(r.last_attempt_at),
    last_status_code: r.last_status_code,
    last_response_ms: r.last_response_ms,
    last_response_body: r.last_response_body,
    last_error: r.last_error,
    delivered_at: iso(r.delivered_at),
    created_at: r.created_at.toISOString(),
    attempt_log: r.attempt_log.map((a) => ({ ...a, attempted_at: new Date(a.attempted_at).toISOString() })),
  };
}

/** The delivery log of one endpoint, newest first (limit + 1 rows). */
export async function listDeliveries(
  db: Db,
  orgId: string,
  endpointId: string,
  q: { limit: number; offset: number; status?: string; event_type?: string },
): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DCOLS} FROM webhook_deliveries d JOIN webhook_events ev USING (organization_id, event_id)
      WHERE d.organization_id = $1 AND d.endpoint_id = $2 AND ($3::text IS NULL OR d.status = $3) AND ($4::text IS NULL OR ev.type = $4)
      ORDER BY d.created_at DESC, d.delivery_id LIMIT $5 OFFSET $6`,
    [orgId, endpointId, q.status ?? null, q.event_type ?? null, q.limit + 1, q.offset],
  );
  return rows;
}

export async function getDelivery(db: Db, orgId: string, deliveryId: string): Promise<DeliveryRow | null> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DCOLS} FROM webhook_deliveries d JOIN webhook_events ev USING (organization_id, event_id)
      WHERE d.organization_id = $1 AND d.delivery_id = $2`,
    [orgId, deliveryId],
  );
  return rows[0] ?? null;
}

/** Manual re-send: due now, the retry schedule restarts (the attempt log keeps counting). */
export async function resendDelivery(db: Db, orgId: string, deliveryId: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = clock_timestamp(), schedule_base = attempts
      WHERE organization_id = $1 AND delivery_id = $2`,
    [orgId, deliveryId],
  );
  return (r.rowCount ?? 0) > 0;
}
