// The console service: the SPA's static files, the same-origin /v1 forwarder (proxy.ts) and the ops
// routes. It holds no state and no credentials of its own: every API call carries the signed-in
// organization's key, so the console can do nothing the key cannot.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import {
  createLogger,
  createMetricsRegistry,
  httpServerOptions,
  instrumentHttp,
  opsRoutes,
  type Config,
  type Logger,
} from '@meterline/core';
import { DIST_DIR, ensureBundle, WEB_DIR } from './assets.ts';
import { proxyRoutes } from './proxy.ts';
import { upstreamUrls } from './upstreams.ts';

export interface ConsoleDeps {
  logger?: Logger;
  registry?: Registry;
}

export interface ConsoleHandle {
  app: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

// The SPA loads only its own bundle; the invoice document is shown in a sandboxed srcdoc iframe (no
// scripts), whose inline styles need style-src 'unsafe-inline'.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-src 'self' about:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export async function buildConsole(config: Config, deps: ConsoleDeps = {}) {
  const logger = deps.logger ?? createLogger('console', config.logLevel);
  const registry = deps.registry ?? createMetricsRegistry('console');
  if (await ensureBundle()) logger.info({ dir: DIST_DIR }, 'console bundle rebuilt');
  const indexHtml = readFileSync(join(WEB_DIR, 'index.html'), 'utf8');
  const urls = upstreamUrls(config.console);
  const upstreamErrors = new Counter({
    name: 'meterline_console_upstream_errors_total',
    help: 'Forwarded API calls that got no answer from the upstream, by upstream and kind (timeout, unreachable)',
    labelNames: ['upstream', 'kind'] as const,
    registers: [registry],
  });
  let shuttingDown = false;

  const app = Fastify({ ...httpServerOptions(config.http), logger: false, return503OnClosing: true, forceCloseConnections: 'idle' });
  instrumentHttp(app, registry);
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    if (shuttingDown) reply.header('connection', 'close');
    return payload;
  });

  const probe = (name: keyof typeof urls) => async () => {
    const res = await fetch(`${urls[name]}/readyz`, { signal: AbortSignal.timeout(1_500) });
    if (!res.ok) throw new Error(`${name} not ready (${res.status})`);
  };
  await app.register(
    opsRoutes({
      registry,
      isShuttingDown: () => shuttingDown,
      checks: { billing: probe('billing'), aggregator: probe('aggregator'), gateway: probe('gateway') },
    }),
  );
  await app.register(proxyRoutes({ urls, timeoutMs: config.console.upstreamTimeoutMs, logger, upstreamErrors }));
  await app.register(fastifyStatic, { root: DIST_DIR, prefix: '/assets/', cacheControl: false, index: false });
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.url.startsWith('/assets/')) reply.header('cache-control', 'no-cache'); // revalidate (ETag): a rebuild shows at once
    return payload;
  });
  const sendIndex = async (_req: unknown, reply: import('fastify').FastifyReply) =>
    reply.header('content-security-policy', CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(indexHtml);
  app.get('/', sendIndex);

  async function close(): Promise<void> {
    shuttingDown = true;
    await app.close();
  }
  return { app, close, logger };
}

/** Builds and starts the console on config.console.host/port (port 0: a free port). */
export async function startConsole(config: Config, deps: ConsoleDeps = {}): Promise<ConsoleHandle> {
  const c = await buildConsole(config, deps);
  const address = await c.app.listen({ host: config.console.host, port: config.console.port });
  const url = address.replace('[::1]', 'localhost');
  c.logger.info({ url }, 'console listening');
  let stopping: Promise<void> | null = null;
  return { app: c.app, url, stop: () => (stopping ??= c.close()) };
}
