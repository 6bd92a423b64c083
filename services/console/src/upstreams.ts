// Which Meterline service answers which public API path. The console forwards only these (an allowlist,
// not an open proxy): the aggregator's events debugger, the gateway's ingest endpoints and billing's /v1
// API. Admin routes (/admin/*, X-Admin-Secret) are never forwarded: the console is for an organization.
import type { ConsoleConfig } from '@meterline/core';

export type UpstreamName = 'billing' | 'aggregator' | 'gateway';

export interface Route {
  upstream: UpstreamName;
  methods: readonly string[];
}

const INGEST_PATHS = new Set(['/v1/events', '/v1/batch']);

/** The upstream for a request path (without query), or null when the console does not forward it. */
export function routeFor(path: string): Route | null {
  // dot segments (also percent-encoded: fetch's URL parser would resolve them) and backslashes could
  // step out of /v1 on the upstream
  if (!path.startsWith('/v1/') || /\.\.|%2e|\\/i.test(path)) return null;
  if (path.startsWith('/v1/debug/')) return { upstream: 'aggregator', methods: ['GET'] };
  if (INGEST_PATHS.has(path)) return { upstream: 'gateway', methods: ['POST'] };
  return { upstream: 'billing', methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] };
}

export function upstreamUrls(cfg: ConsoleConfig): Record<UpstreamName, string> {
  const strip = (u: string) => u.replace(/\/+$/, '');
  return { billing: strip(cfg.billingUrl), aggregator: strip(cfg.aggregatorUrl), gateway: strip(cfg.gatewayUrl) };
}
