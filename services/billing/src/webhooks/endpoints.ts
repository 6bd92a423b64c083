// Webhook endpoints of an organization: create (the signing secret is answered once), update, delete
// (pending deliveries abandoned), rotate the secret with an overlap during which both secrets sign.
// URLs: http or https only, with a host; private-network and loopback addresses are allowed on purpose
// (Meterline is self-hosted: receivers often live on the same network).
import { newId } from '../orgs/store.ts';
import type { Deps } from '../deps.ts';
import { badRequest, conflict, notFound } from '../http/errors.ts';
import { newSecret } from './secrets.ts';
import * as store from './store.ts';

export function checkUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw badRequest(`url "${raw}" is not a valid URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badRequest('url must be http or https');
  if (!u.hostname) throw badRequest('url needs a host');
  if (u.username || u.password) throw badRequest('url must not carry credentials');
  return u.toString();
}

export async function createEndpoint(
  deps: Deps,
  orgId: string,
  input: { endpoint_id?: string; url: string; event_types?: string[]; description?: string | null; enabled?: boolean },
) {
  const secret = newSecret();
  const id = input.endpoint_id ?? newId('we');
  const row = await store.insertEndpoint(deps.pool, orgId, {
    endpoint_id: id,
    url: checkUrl(input.url),
    description: input.description ?? null,
    event_types: [...new Set(input.event_types ?? [])],
    enabled: input.enabled ?? true,
    secret,
  });
  if (!row) throw conflict(`webhook endpoint "${id}" already exists`);
  return { ...store.endpointJson(row), secret };
}

export async function requireEndpoint(deps: Deps, orgId: string, endpointId: string) {
  const row = await store.getEndpoint(deps.pool, orgId, endpointId);
  if (!row) throw notFound('webhook endpoint', endpointId);
  return row;
}

export async function updateEndpoint(
  deps: Deps,
  orgId: string,
  endpointId: string,
  p: { url?: string; event_types?: string[]; description?: string | null; enabled?: boolean },
) {
  const row = await store.updateEndpoint(deps.pool, orgId, endpointId, {
    ...p,
    url: p.url !== undefined ? checkUrl(p.url) : undefined,
    event_types: p.event_types ? [...new Set(p.event_types)] : undefined,
  });
  if (!row) throw notFound('webhook endpoint', endpointId);
  // disabling abandons what is pending (re-send them from the log after re-enabling)
  if (p.enabled === false) await store.disableEndpoint(deps.pool, orgId, endpointId, 'disabled via the API');
  return store.endpointJson(row);
}

export async function deleteEndpoint(deps: Deps, orgId: string, endpointId: string) {
  const row = await requireEndpoint(deps, orgId, endpointId);
  await store.disableEndpoint(deps.pool, orgId, endpointId, 'deleted', true);
  return { ...store.endpointJson(row), enabled: false, disabled_reason: 'deleted' };
}

export async function rotateSecret(deps: Deps, orgId: string, endpointId: string, overlapSeconds: number) {
  const secret = newSecret();
  const row = await store.rotateSecret(deps.pool, orgId, endpointId, secret, overlapSeconds);
  if (!row) throw notFound('webhook endpoint', endpointId);
  return { ...store.endpointJson(row), secret };
}

export async function resend(deps: Deps, orgId: string, deliveryId: string) {
  const d = await store.getDelivery(deps.pool, orgId, deliveryId);
  if (!d) throw notFound('webhook delivery', deliveryId);
  const ep = await store.getEndpoint(deps.pool, orgId, d.endpoint_id);
  if (!ep?.enabled) throw conflict(`webhook endpoint "${d.endpoint_id}" is disabled or deleted; enable it first`);
  await store.resendDelivery(deps.pool, orgId, deliveryId);
  return store.deliveryJson((await store.getDelivery(deps.pool, orgId, deliveryId))!);
}
