// GET /v1/customer_search against real billing and Postgres: matches id, name and email case-insensitively,
// ranks the exact id first, treats LIKE wildcards literally, pages, hides archived customers unless asked,
// and never returns another organization's customers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

let billing: BillingHandle;
let a: Awaited<ReturnType<typeof createOrg>>;
let b: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  ({ billing } = await startTestBilling());
  a = await createOrg(billing.url);
  b = await createOrg(billing.url);
  for (const c of [
    { customer_id: 'acme', name: 'Acme Corp', email: 'ops@acme.example' },
    { customer_id: 'acme_2', name: 'Second Acme', email: 'billing@other.example' },
    { customer_id: 'zeta', name: 'Zeta 100% Ltd', email: 'z@zeta.example' },
    { customer_id: 'omega', name: 'Omega', email: 'finance@ACME.example' },
    { customer_id: 'gone', name: 'Acme Gone', email: null },
  ])
    expect((await a.api.post('/v1/customers', c)).status).toBe(201);
  expect((await a.api.del('/v1/customers/gone')).status).toBe(200);
  expect((await b.api.post('/v1/customers', { customer_id: 'acme_b', name: 'Acme of B' })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await billing?.stop();
});

const ids = async (api: typeof a.api, query: string) => {
  const r = await api.get(`/v1/customer_search?${query}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.data as Array<{ customer_id: string }>).map((c) => c.customer_id);
};

describe('customer search', () => {
  it('matches id, name and email case-insensitively; exact id first, then prefixes', async () => {
    // acme: exact id; acme_2: id prefix; omega: email contains ACME (not a prefix)
    expect(await ids(a.api, 'q=ACME')).toEqual(['acme', 'acme_2', 'omega']);
    expect(await ids(a.api, 'q=second')).toEqual(['acme_2']);
    expect(await ids(a.api, 'q=zeta.example')).toEqual(['zeta']);
  });

  it('wildcards are literal', async () => {
    expect(await ids(a.api, `q=${encodeURIComponent('100%')}`)).toEqual(['zeta']);
    expect(await ids(a.api, `q=${encodeURIComponent('%')}`)).toEqual(['zeta']);
    expect(await ids(a.api, 'q=acme_')).toEqual(['acme_2']); // _ is not "any character"
  });

  it('archived customers only when asked; pages', async () => {
    expect(await ids(a.api, 'q=gone')).toEqual([]);
    expect(await ids(a.api, 'q=gone&include_archived=true')).toEqual(['gone']);
    const first = await a.api.get('/v1/customer_search?q=acme&limit=2');
    expect(first.body).toMatchObject({ has_more: true, next_offset: 2 });
    expect(first.body.data.map((c: { customer_id: string }) => c.customer_id)).toEqual(['acme', 'acme_2']);
    expect(await ids(a.api, 'q=acme&limit=2&offset=2')).toEqual(['omega']);
  });

  it("never sees another organization's customers; bad input is a 400", async () => {
    expect(await ids(b.api, 'q=acme')).toEqual(['acme_b']);
    expect(await ids(a.api, 'q=acme_b')).toEqual([]);
    expect((await a.api.get('/v1/customer_search')).status).toBe(400);
    expect((await a.api.get(`/v1/customer_search?q=${'x'.repeat(201)}`)).status).toBe(400);
    expect((await a.api.get('/v1/customer_search?q=acme&nope=1')).status).toBe(400);
  });

  it('hostile text: NUL and very long values are a 4xx; lone surrogates, backslash and quotes match literally (nothing)', async () => {
    for (const q of ['%00', 'acme%00', 'x'.repeat(100_000), 'x'.repeat(201)]) {
      const r = await a.api.get(`/v1/customer_search?q=${q}`);
      expect(r.status, `${q.slice(0, 40)}: ${JSON.stringify(r.body)}`).toBeGreaterThanOrEqual(400);
      expect(r.status, q.slice(0, 40)).toBeLessThan(500);
    }
    // bytes that are not UTF-8 (lone surrogates encoded, %FF) are decoded as U+FFFD and matched literally:
    // no customer has it, so no rows; never a 500
    for (const q of ['%ED%A0%80', 'a%ED%B0%80', '%FF']) expect(await ids(a.api, `q=${q}`)).toEqual([]);
    expect(await ids(a.api, `q=${encodeURIComponent('\\')}`)).toEqual([]);
    expect(await ids(a.api, `q=${encodeURIComponent("'")}`)).toEqual([]);
    expect(await ids(a.api, `q=${encodeURIComponent("' OR '1'='1")}`)).toEqual([]);
    expect(await ids(a.api, `q=${encodeURIComponent('%_\\')}`)).toEqual([]);
    expect(await ids(b.api, `q=${encodeURIComponent('%')}`)).toEqual([]);
  });
});
