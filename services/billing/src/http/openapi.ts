// A dependency-free OpenAPI 3.0 document built from the JSON schemas every route declares (the same
// schemas Fastify validates with), served at /docs/json, plus a minimal readable page at /docs.
import type { FastifyInstance, RouteOptions } from 'fastify';

interface Collected { method: string; url: string; schema: Record<string, unknown> }

export function collectRoutes(app: FastifyInstance): Collected[] {
  const routes: Collected[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      if (m === 'HEAD' || !r.schema) continue;
      routes.push({ method: m.toLowerCase(), url: r.url, schema: r.schema as Record<string, unknown> });
    }
  });
  return routes;
}

function params(kind: 'path' | 'query', schema: unknown): object[] {
  const s = schema as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  if (!s?.properties) return [];
  return Object.entries(s.properties).map(([name, sch]) => ({ name, in: kind, required: kind === 'path' || (s.required ?? []).includes(name), schema: sch }));
}

export function buildOpenApi(routes: Collected[], info: { title: string; version: string; description: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const s = r.schema as { body?: unknown; querystring?: unknown; params?: unknown; response?: Record<string, unknown>; summary?: string; tags?: string[]; description?: string; security?: unknown };
    const responses: Record<string, unknown> = {};
    for (const [code, body] of Object.entries(s.response ?? { 200: {} })) responses[code] = { description: code, content: { 'application/json': { schema: body } } };
    (paths[path] ??= {})[r.method] = {
      summary: s.summary,
      description: s.description,
      tags: s.tags,
      parameters: [...params('path', s.params), ...params('query', s.querystring)],
      ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: s.body } } } } : {}),
      responses,
      ...(s.security ? { security: s.security } : {}),
    };
  }
  return {
    openapi: '3.0.3',
    info,
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-KEY', description: 'Organization API key (or Authorization: Bearer <key>)' },
        adminSecret: { type: 'apiKey', in: 'header', name: 'X-Admin-Secret' },
      },
    },
    security: [{ apiKey: [] }],
    paths,
  };
}

export function docsPage(doc: ReturnType<typeof buildOpenApi>): string {
  const esc = (t: unknown) => String(t ?? '').replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = Object.entries(doc.paths)
    .flatMap(([p, ops]) => Object.entries(ops).map(([m, op]) => `<tr><td><code>${m.toUpperCase()}</code></td><td><code>${esc(p)}</code></td><td>${esc((op as { summary?: string }).summary)}</td></tr>`))
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(doc.info.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}td{padding:.2rem .6rem;border-bottom:1px solid #ddd}</style></head>
<body><h1>${esc(doc.info.title)} ${esc(doc.info.version)}</h1><p>${esc(doc.info.description)}</p>
<p>Machine-readable OpenAPI 3.0: <a href="/docs/json">/docs/json</a></p><table>${rows}</table></body></html>`;
}
