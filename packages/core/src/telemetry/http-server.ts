// HTTP server limits shared by every service: no request can hold a connection longer than
// config.http.requestTimeoutMs (headers: headersTimeoutMs). Node answers 408 (through Fastify's
// clientErrorHandler) and closes the connection when a request is not fully received in time.
//
// How the values reach node (Fastify 5.x, lib/server.js getServerInstance): Fastify creates the server
// with `http.createServer(options.http, handler)` and then assigns `server.requestTimeout =
// options.requestTimeout` (its default is 0 = no timeout, which would undo a value given only in
// `http`), so the request timeout is passed as Fastify's own `requestTimeout` option too.
// `headersTimeout` and `connectionsCheckingInterval` are only read by node at construction, from
// `options.http`; Fastify does not touch them. Node checks for expired requests every
// `connectionsCheckingInterval` ms (default 30 s, far coarser than the timeouts), so it is set from the
// timeouts (a quarter of the shortest, 100 ms … 1 s).
import type { ServerOptions } from 'node:http';
import type { HttpServerConfig } from '../config.ts';

export interface HttpServerOptions {
  requestTimeout: number;
  http: ServerOptions;
}

export function connectionsCheckingIntervalMs(cfg: HttpServerConfig): number {
  return Math.max(100, Math.min(1_000, Math.floor(Math.min(cfg.headersTimeoutMs, cfg.requestTimeoutMs) / 4)));
}

export const DEFAULT_HTTP_SERVER_CONFIG: HttpServerConfig = { requestTimeoutMs: 10_000, headersTimeoutMs: 5_000 };

/** Options to spread into `Fastify({ ...httpServerOptions(config.http), ... })` (missing: the defaults). */
export function httpServerOptions(cfg: HttpServerConfig = DEFAULT_HTTP_SERVER_CONFIG): HttpServerOptions {
  const headersTimeout = Math.min(cfg.headersTimeoutMs, cfg.requestTimeoutMs);
  return {
    requestTimeout: cfg.requestTimeoutMs,
    http: {
      requestTimeout: cfg.requestTimeoutMs,
      headersTimeout,
      connectionsCheckingInterval: connectionsCheckingIntervalMs(cfg),
    },
  };
}
