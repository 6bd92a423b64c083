// Same-origin forwarding of the public API (/v1/*) to the service that owns each path (upstreams.ts), so
// the browser needs no CORS and the API key travels only as a request header (kept in sessionStorage by
// the SPA), never in a URL, a cookie or a log line. Only the headers the API uses are forwarded both
// ways; every upstream call has a deadline (504) and an unreachable upstream is a 502 naming it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import type { Logger } from '@meterline/core';
import { routeFor, type UpstreamName } from './upstreams.ts';

const REQUEST_HEADERS = ['x-api-key', 'authorization', 'content-type', 'accept', 'idempotency-key'] as const;
const RESPONSE_HEADERS = ['content-type', 'retry-after', 'content-disposition', 'location'] as const;

export interface ProxyDeps {
  urls: Record<UpstreamName, string>;
  timeoutMs: number;
  logger: Logger;
  upstreamErrors: Counter<'upstream' | 'kind'>;
}

export function proxyRoutes(deps: ProxyDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    // bodies are forwarded byte for byte: the upstream validates them
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

    const forward = async (req: FastifyRequest, reply: FastifyReply) => {
      const [path, query = ''] = req.url.split('?', 2) as [string, string?];
      const route = routeFor(path);
      if (!route) return reply.code(404).send({ error: 'not_found', message: `${path} is not part of the public API` });
      if (!route.methods.includes(req.method))
        return reply.code(405).send({ error: 'method_not_allowed', message: `${req.method} ${path} is not forwarded` });
      const headers: Record<string, string> = {};
      for (const h of REQUEST_HEADERS) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const target = `${deps.urls[route.upstream]}${path}${query ? `?${query}` : ''}`;
      let res: Response;
      try {
        res = await fetch(target, {
          method: req.method,
          headers,
          body: req.method === 'GET' || req.method === 'HEAD' ? undefined : ((req.body as Buffer | undefined) ?? undefined),
          signal: AbortSignal.timeout(deps.timeoutMs),
          redirect: 'manual',
        });
      } catch (err) {
        const timedOut = (err as Error).name === 'TimeoutError';
        deps.upstreamErrors.inc({ upstream: route.upstream, kind: timedOut ? 'timeout' : 'unreachable' });
        deps.logger.warn({ upstream: route.upstream, path, err: (err as Error).message }, 'upstream call failed');
        return reply.code(timedOut ? 504 : 502).send({
          error: timedOut ? 'upstream_timeout' : 'upstream_unavailable',
          message: `${route.upstream} did not answer`,
          upstream: route.upstream,
        });
      }
      const body = Buffer.from(await res.arrayBuffer());
      reply.code(res.status);
      for (const h of RESPONSE_HEADERS) {
        const v = res.headers.get(h);
        if (v !== null) reply.header(h, v);
      }
      // answers are per organization: never kept by a shared cache or the browser's back/forward cache
      reply.header('cache-control', 'no-store');
      return reply.send(body);
    };
    app.all('/v1/*', forward);
  };
}
