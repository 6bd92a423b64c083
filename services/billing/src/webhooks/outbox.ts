// The outbox: an event and its deliveries are written in the caller's transaction, with the change that
// caused them (a rolled-back change leaves no event; a committed one always has its event). The worker
// (worker.ts) delivers what is committed. One pending delivery per enabled endpoint of the organization
// subscribed to the type (event_types empty = all) at the moment of the change; with none, nothing is
// written (an endpoint created later does not receive earlier events).
import { randomBytes } from 'node:crypto';
import type { PgClient, PgPool } from '@meterline/core';
import { WEBHOOK_API_VERSION, WEBHOOK_EVENT_TYPES, type WebhookEventType, type WebhookPayload } from '@meterline/contracts';

export { WEBHOOK_API_VERSION, WEBHOOK_EVENT_TYPES, type WebhookEventType };

/** The channel enqueues NOTIFY (collapsed to one per transaction) and the workers LISTEN on. */
export const WAKE_CHANNEL = 'meterline_webhooks';

const ENDPOINTS = `SELECT endpoint_id FROM webhook_endpoints
  WHERE organization_id = $1 AND enabled AND deleted_at IS NULL AND (cardinality(event_types) = 0 OR $2::text = ANY (event_types))`;

/**
 * Enqueues `type` for the organization in `db`'s transaction (pass the transaction client); returns the
 * event id (msg_…, the webhook-id header) — also when no endpoint wants it (then nothing is stored).
 */
export async function enqueueWebhookEvent(
  db: PgClient | PgPool,
  orgId: string,
  type: WebhookEventType,
  data: Record<string, unknown>,
): Promise<string> {
  const id = `msg_${randomBytes(16).toString('base64url')}`;
  const createdAt = new Date();
  const payload: WebhookPayload = {
    id,
    type,
    api_version: WEBHOOK_API_VERSION,
    created_at: createdAt.toISOString(),
    organization_id: orgId,
    data,
  };
  await db.query(
    `WITH eps AS (${ENDPOINTS}),
          ev AS (INSERT INTO webhook_events (organization_id, event_id, type, payload, created_at)
                 SELECT $1, $3, $2, $4::jsonb, $5 WHERE EXISTS (SELECT 1 FROM eps) RETURNING event_id),
          ins AS (INSERT INTO webhook_deliveries (delivery_id, organization_id, event_id, endpoint_id, next_attempt_at, created_at)
                  SELECT 'whd_' || replace(gen_random_uuid()::text, '-', ''), $1, ev.event_id, eps.endpoint_id, $5, $5
                    FROM ev CROSS JOIN eps RETURNING 1)
     -- wakes the workers at commit (LISTEN ${WAKE_CHANNEL}; a rolled-back transaction notifies nothing)
     SELECT pg_notify('${WAKE_CHANNEL}', '') FROM (SELECT 1 FROM ins LIMIT 1) x`,
    [orgId, type, id, JSON.stringify(payload), createdAt],
  );
  return id;
}

/**
 * Enqueues only if some endpoint wants `type`, building the data lazily (`data()` may re-read a row in
 * the transaction): the hot paths (period closes) pay one indexed lookup when nobody listens.
 */
export async function enqueueIfWanted(
  db: PgClient,
  orgId: string,
  type: WebhookEventType,
  data: () => Promise<Record<string, unknown>> | Record<string, unknown>,
): Promise<string | null> {
  const { rowCount } = await db.query(`${ENDPOINTS} LIMIT 1`, [orgId, type]);
  if (!rowCount) return null;
  return enqueueWebhookEvent(db, orgId, type, await data());
}

export const isWebhookEventType = (t: string): t is WebhookEventType => (WEBHOOK_EVENT_TYPES as readonly string[]).includes(t);
