// The console's forwarder (src/proxy.ts) under hostile paths and queries: NUL bytes, lone UTF-16
// surrogates as UTF-8 bytes, bytes that are not UTF-8, very long values, SQL/LIKE metacharacters. Each is
// a 4xx from the console or forwarded byte for byte (the upstream decides), never a 500, and never to a
// path outside the allowlist. The upstreams are one recording HTTP server on a free port.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../../test/support/env.ts';
import { startConsole, type ConsoleHandle } from '../src/index.ts';

let upstream: Server;
let consoleSvc: ConsoleHandle;
const seen: string[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const config = testConfig({ CONSOLE_PORT: '0' });
  consoleSvc = await startConsole({ ...config, console: { ...config.console, billingUrl: url, aggregatorUrl: url, gatewayUrl: url } });
});

afterAll(async () => {
  await consoleSvc?.stop();
  await new Promise((r) => upstream?.close(r));
});

async function get(pathAndQuery: string): Promise<number> {
  const res = await fetch(consoleSvc.url + pathAndQuery, { headers: { 'x-api-key': 'k' } });
  await res.arrayBuffer();
  return res.status;
}

describe('console forwarder, hostile input', () => {
  it('queries are forwarded byte for byte to the owning upstream (NUL, surrogates, non-UTF-8, LIKE/SQL metacharacters)', async () => {
    for (const q of ['%00', 'a%00b', '%ED%A0%80', '%ED%B0%80', '%FF', '%25', '_', '%5C', '%27%20OR%20%271%27%3D%271', 'x'.repeat(8_000)]) {
      seen.length = 0;
      expect(await get(`/v1/customer_search?q=${q}`), q.slice(0, 40)).toBe(200);
      expect(seen).toEqual([`/v1/customer_search?q=${q}`]);
    }
  });

  it('hostile paths: forwarded as sent inside /v1, or refused with a 4xx; never a 500', async () => {
    for (const p of ['/v1/customers/%00', '/v1/customers/%ED%A0%80', '/v1/customers/%FF', '/v1/customers/%25_%5C']) {
      seen.length = 0;
      const status = await get(p);
      // Fastify refuses a path that does not decode as UTF-8 (400); the rest goes through unchanged
      if (status === 200) expect(seen, p).toEqual([p]);
      else {
        expect(status, p).toBe(400);
        expect(seen, p).toEqual([]);
      }
    }
    for (const p of ['/v1/%2e%2e/admin/organizations', '/v1/customers/..%2Fadmin', '/admin/organizations', '/v1\\..\\admin']) {
      seen.length = 0;
      const status = await get(p);
      expect(status, p).toBeGreaterThanOrEqual(400);
      expect(status, p).toBeLessThan(500);
      expect(seen, p).toEqual([]);
    }
    // a request line longer than Node's header limit (16 KiB): 414/431 from the server, nothing forwarded
    seen.length = 0;
    const long = await get(`/v1/customer_search?q=${'x'.repeat(100_000)}`);
    expect(long).toBeGreaterThanOrEqual(400);
    expect(long).toBeLessThan(500);
    expect(seen).toEqual([]);
  });
});
