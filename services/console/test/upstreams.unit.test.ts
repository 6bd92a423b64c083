// The console forwards only the public API, each path to the service that owns it.
import { describe, expect, it } from 'vitest';
import { routeFor, upstreamUrls } from '../src/upstreams.ts';

describe('routeFor', () => {
  it('debugger to the aggregator (GET only), ingest to the gateway (POST only), the rest of /v1 to billing', () => {
    expect(routeFor('/v1/debug/events')).toEqual({ upstream: 'aggregator', methods: ['GET'] });
    expect(routeFor('/v1/debug/dead-letters')).toEqual({ upstream: 'aggregator', methods: ['GET'] });
    expect(routeFor('/v1/events')).toEqual({ upstream: 'gateway', methods: ['POST'] });
    expect(routeFor('/v1/batch')).toEqual({ upstream: 'gateway', methods: ['POST'] });
    expect(routeFor('/v1/customers/c1/entitlements')?.upstream).toBe('billing');
    expect(routeFor('/v1/customer_search')?.upstream).toBe('billing');
  });

  it('nothing outside /v1: no admin routes, no ops routes, no path tricks', () => {
    for (const p of [
      '/admin/organizations',
      '/metrics',
      '/readyz',
      '/docs/json',
      '/v1',
      '/v1/../admin/organizations',
      '/v1/%2e%2e/admin/organizations',
      '/v1/%2E./metrics',
      '/v1/..\\admin',
      '/v2/x',
    ])
      expect(routeFor(p), p).toBeNull();
  });

  it('upstream URLs lose trailing slashes', () => {
    expect(
      upstreamUrls({
        port: 0,
        host: '',
        billingUrl: 'http://b/',
        aggregatorUrl: 'http://a',
        gatewayUrl: 'http://g//',
        upstreamTimeoutMs: 1,
      }),
    ).toEqual({
      billing: 'http://b',
      aggregator: 'http://a',
      gateway: 'http://g',
    });
  });
});
