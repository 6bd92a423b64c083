// One HTTP metric for every service, so that one alert rule covers them all:
//   meterline_http_request_duration_seconds{service, method, route, status}  (histogram; _count = requests)
// `route` is the route pattern (`/v1/customers/:id`), never the raw URL, so label values stay bounded;
// requests that match no route are `unmatched`.
import type { FastifyInstance } from 'fastify';
import { Histogram, type Registry } from 'prom-client';

export function instrumentHttp(app: FastifyInstance, registry: Registry): void {
  const duration = new Histogram({
    name: 'meterline_http_request_duration_seconds',
    help: 'HTTP requests by route pattern and status code, and their latency',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    duration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}
