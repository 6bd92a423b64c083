// Fuzz test driven by billing's own OpenAPI document (GET /docs/json): for every route, requests with
// bodies generated from the route's JSON schema (valid-looking values mixed with hostile ones), path
// params (real ids of seeded rows, another organization's ids, %00, %ED%A0%80, very long, `..`,
// unicode) and query strings likewise, sent with the organization's key mostly, sometimes another
// organization's key or a missing/invalid one. Invariant: billing never answers >= 500 for anything a
// client sends, and is still ready afterwards.
//
// BILLING_FUZZ_REQUESTS (default 1500) sets the number of requests (`npm run fuzz:billing` runs 10,000);
// BILLING_FUZZ_SEED replays a run. The count and the status histogram are printed and written to
// .cache/billing/fuzz-latest.json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ADMIN_SECRET, createOrg, startTestBilling } from './helpers.ts';
import type { BillingHandle } from '../src/index.ts';

const REQUESTS = Number(process.env.BILLING_FUZZ_REQUESTS ?? 1500);
const SEED = Number(process.env.BILLING_FUZZ_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 8;

let billing: BillingHandle;
let url: string;
let keyA: string;
let keyB: string;
let orgA: string;
let orgB: string;
/** Real ids by field name (org A), and org B's ids for cross-tenant probes. */
const ids: Record<string, string[]> = {};
const foreignIds: Record<string, string[]> = {};

// ---------- wire format: JSON text we control (lone surrogates escaped, raw number tokens) ----------

class Raw {
  constructor(readonly text: string) {}
}
function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

// ---------- hostile values ----------

const HOSTILE_STRINGS = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfff',
  '\udc00\ud800',
  'ok\ud83d',
  '\u0001\u001f\u007f\u0085\u009f',
  '\t\n\r',
  '😀🂡𝔘',
  '\u202eevil',
  '..',
  '../../etc/passwd',
  'x'.repeat(300),
  'y'.repeat(5000),
  'z'.repeat(70_000),
  'Infinity',
  '-Infinity',
  'NaN',
  '1e309',
  '-1e309',
  '-0',
  '99999999999999999999999999',
  '-1',
  '0.0000000000001',
  '1.5',
  '1e3',
  '',
  ' ',
  "' OR 1=1 --",
  '\\',
  '%00',
  'null',
  'true',
  '0x10',
  '٣',
  '１２',
  '2024-02-30T00:00:00Z',
  '2024-01-01T23:59:60Z',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '2200-01-01T00:00:00Z',
  '1969-12-31T23:59:59Z',
  'ÿ',
  '\ufeff',
  '\uffff',
  '\u{10ffff}',
];
const HOSTILE_NUMBERS: unknown[] = [
  0,
  -0,
  -1,
  1,
  1.5,
  0.1,
  1e15,
  1e15 + 1,
  1e16,
  1e21,
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER,
  2 ** 31,
  2 ** 31 - 1,
  2 ** 53 + 1,
  2 ** 63,
  -(2 ** 63),
  1e-300,
  5e-324,
  new Raw('1e309'),
  new Raw('-1e309'),
  new Raw('-0'),
  new Raw('1E400'),
  new Raw('123456789012345678901234567890123'),
  new Raw('0.1e-400'),
];
function deep(n: number, kind: 'array' | 'object'): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}
const HOSTILE_OTHER: unknown[] = [
  null,
  true,
  false,
  [],
  {},
  [1, 'a', null],
  { a: 1 },
  { '': 1 },
  { '\u0000': 1 },
  { '\ud800': 'x' },
  { __proto__: { polluted: 1 } },
  new Raw('{"__proto__":{"x":1}}'),
  { constructor: { prototype: 1 } },
  deep(40, 'object'),
  deep(40, 'array'),
  deep(3000, 'array'),
  Array.from({ length: 2000 }, (_, i) => i),
  Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])),
];
const hostileValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_NUMBERS) },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_OTHER) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.double() },
);

// ---------- schema -> arbitrary ----------

type Schema = Record<string, any>;

function idArb(field: string): fc.Arbitrary<string> {
  const real = ids[field] ?? [];
  const foreign = foreignIds[field] ?? [];
  return fc.oneof(
    { weight: real.length ? 6 : 0, arbitrary: real.length ? fc.constantFrom(...real) : fc.constant('none') },
    { weight: foreign.length ? 1 : 0, arbitrary: foreign.length ? fc.constantFrom(...foreign) : fc.constant('none') },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,24}$/) },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  );
}

const dateArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true })
      .map((d) => d.toISOString()),
  },
  {
    weight: 1,
    arbitrary: fc
      .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true })
      .map((d) => d.toISOString()),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '2024-01-01',
      '2024-01-01T00:00:00+14:00',
      '2024-01-01T00:00:00.123456789Z',
      '+275760-09-13T00:00:00Z',
      'yesterday',
    ),
  },
);

function stringArb(s: Schema, field: string): fc.Arbitrary<unknown> {
  if (field.endsWith('_id') || field === 'feature_name') return idArb(field === 'feature_name' ? 'feature_id' : field);
  if (s.format === 'date-time') return dateArb;
  if (s.enum) return fc.constantFrom(...s.enum);
  if (typeof s.pattern === 'string') {
    if (s.pattern.includes('[0-9]'))
      return fc.oneof(fc.stringMatching(/^[0-9]{1,4}(\.[0-9]{1,4})?$/), fc.stringMatching(/^[0-9]{1,30}(\.[0-9]{1,20})?$/));
    if (s.pattern.includes('A-Za-z]{3}')) return fc.constantFrom('USD', 'EUR', 'JPY', 'BHD', 'usd', 'XXX');
    if (s.pattern.includes('@')) return fc.oneof(fc.emailAddress(), fc.string());
  }
  if (field === 'event_name') return fc.constantFrom(...(ids.event_name ?? ['api_call']), 'other_event');
  if (field === 'property') return fc.constantFrom('tokens', 'region', 'x');
  return fc.string({ unit: 'grapheme', maxLength: 30 });
}

function numberArb(s: Schema): fc.Arbitrary<unknown> {
  const int = s.type === 'integer' || (Array.isArray(s.type) && s.type.includes('integer'));
  const base = int
    ? fc.integer({ min: -5, max: 20_000 })
    : fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.double({ min: 0, max: 1e6, noNaN: true }));
  return fc.oneof(
    { weight: 5, arbitrary: base },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_NUMBERS) },
    { weight: 1, arbitrary: fc.constantFrom('1', '10', 'Infinity', '1e309', '-0') },
  );
}

function mergeThen(base: Schema, branch: Schema): Schema {
  return {
    ...base,
    ...branch,
    properties: { ...(base.properties ?? {}), ...(branch.properties ?? {}) },
    required: [...new Set([...(base.required ?? []), ...(branch.required ?? [])])],
    allOf: undefined,
  };
}

function arbFor(s: Schema | undefined, field: string, depth: number): fc.Arbitrary<unknown> {
  if (!s || depth > 6) return hostileValue;
  const good = goodArbFor(s, field, depth);
  return fc.oneof({ weight: 9, arbitrary: good }, { weight: 1, arbitrary: hostileValue });
}

function goodArbFor(s: Schema, field: string, depth: number): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  if (Array.isArray(s.allOf) && s.allOf.some((x: Schema) => x.then)) {
    return fc.constantFrom(...s.allOf.filter((x: Schema) => x.then)).chain((b: Schema) => goodArbFor(mergeThen(s, b.then), field, depth));
  }
  if (s.anyOf || s.oneOf) return fc.oneof(...(s.anyOf ?? s.oneOf).map((x: Schema) => goodArbFor(x, field, depth)));
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : ['object'];
  return fc.oneof(
    ...types.map((t) => {
      switch (t) {
        case 'null':
          return fc.constant(null);
        case 'boolean':
          return fc.boolean();
        case 'string':
          return stringArb(s, field);
        case 'number':
        case 'integer':
          return numberArb({ ...s, type: t });
        case 'array':
          return fc.array(arbFor(s.items, field, depth + 1), { maxLength: field === 'tiers' ? 4 : 3 });
        default:
          return objectArb(s, depth);
      }
    }),
  );
}

function objectArb(s: Schema, depth: number): fc.Arbitrary<unknown> {
  const props: Record<string, Schema> = s.properties ?? {};
  const required = new Set<string>(s.required ?? []);
  const shape: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, ps] of Object.entries(props)) shape[k] = arbFor(ps, k, depth + 1);
  const rec = Object.keys(shape).length ? fc.record(shape, { requiredKeys: [...required].filter((k) => k in shape) }) : fc.constant({});
  const freeform = s.additionalProperties === true || (typeof s.additionalProperties === 'object' && s.additionalProperties);
  const extra = fc.dictionary(
    fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('k', '\u0000', '\ud800', 'a\u0001', 'x'.repeat(300), '__proto__', 'constructor'),
    ),
    freeform ? fc.oneof(fc.string({ unit: 'grapheme' }), fc.integer(), hostileValue) : hostileValue,
    { maxKeys: 3 },
  );
  return fc.tuple(rec, fc.integer({ min: 0, max: 9 }), extra).map(([r, roll, x]) => {
    const out = { ...(r as object) } as Record<string, unknown>;
    if (roll === 0 || freeform) Object.assign(out, x); // unknown keys sometimes (always for free-form objects)
    if (roll === 1) {
      const ks = Object.keys(out);
      if (ks.length) delete out[ks[0]!];
    } // a required key missing
    return out;
  });
}

// ---------- mutations of known-valid requests (reach the handlers, then break one thing) ----------

/** Valid bodies and query objects by operation ("POST /v1/plans"), recorded while seeding plus a few by hand. */
const bodyExamples: Record<string, unknown[]> = {};
const queryExamples: Record<string, Record<string, unknown>[]> = {};

function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) paths(x, [...at, i], out);
  else if (v !== null && typeof v === 'object' && !(v instanceof Raw)) for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/** Deep-copies `example` and applies one change: nothing (valid), replace a node by a hostile value, delete a key, add a key. */
function mutate(example: unknown): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.nat(), fc.integer({ min: 0, max: 9 }), hostileValue, fc.constantFrom('extra', '\u0000', 'k\ud800', '__proto__'))
    .map(([pick, action, hostile, key]) => {
      const copy = JSON.parse(JSON.stringify(example)) as unknown;
      if (action <= 2) return copy; // unchanged: valid request against real rows
      const all = paths(copy);
      const at = all[pick % all.length]!;
      if (at.length === 0) return action === 3 ? hostile : copy;
      let parent = copy as Record<string | number, unknown>;
      for (const k of at.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
      const last = at[at.length - 1]!;
      if (action <= 7) parent[last] = hostile;
      else if (action === 8 && !Array.isArray(parent)) delete parent[last];
      else if (!Array.isArray(parent)) parent[key] = hostile;
      return copy;
    });
}

// ---------- requests ----------

interface Op {
  method: string;
  path: string;
  params: { name: string; in: string; schema: Schema }[];
  body?: Schema;
  admin: boolean;
}
interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  op: string;
}

const PATH_HOSTILE = [
  '%00',
  'c1%00x',
  '%ED%A0%80',
  'x%ED%B0%80y',
  '%F0%9F%98%80',
  '%C3%BC',
  '%FF',
  '%C0%AF',
  '%E2%80%AE',
  '..',
  '%2e%2e',
  '%2F',
  'a%2Fb',
  '%25',
  '%',
  'a%2',
  '%u0000',
  'x'.repeat(300),
  'y'.repeat(3000),
  '%01%1F%7F',
  '%C2%85',
  'Infinity',
  '1e309',
  '-1',
  '0',
  '99999999999999999999',
  '2147483648',
  '%20',
  '+',
];

function pathParamArb(p: { name: string; schema: Schema }, op: Op): fc.Arbitrary<string> {
  // archiving an organization (admin DELETE) only ever hits a throwaway one: org A must keep working
  // destructive calls (archive, cancel, plan change) hit rows seeded for them, so the rows the other
  // requests use stay live; archiving an organization only ever hits a throwaway one
  const destructive = op.method === 'delete' || op.path.endsWith('/cancel') || (op.method === 'patch' && p.name === 'subscription_id');
  const real = destructive ? (ids[`doomed_${p.name}`] ?? []) : (ids[p.name] ?? []);
  const foreign = foreignIds[p.name] ?? [];
  const choices: { weight: number; arbitrary: fc.Arbitrary<string> }[] = [
    { weight: 3, arbitrary: fc.constantFrom(...PATH_HOSTILE) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/) },
  ];
  if (p.schema?.type === 'integer') choices.push({ weight: 4, arbitrary: fc.constantFrom('1', '2', '3') });
  if (real.length) choices.push({ weight: 6, arbitrary: fc.constantFrom(...real).map(encodeURIComponent) });
  if (foreign.length) choices.push({ weight: 1, arbitrary: fc.constantFrom(...foreign).map(encodeURIComponent) });
  return fc.oneof(...choices);
}

const QUERY_HOSTILE = [
  '%00',
  'a%00b',
  '%ED%A0%80',
  '%FF',
  '%',
  '1e309',
  'Infinity',
  '-1',
  '1.5',
  '99999999999999999999',
  'x'.repeat(3000),
  '%01',
  '',
  'null',
  'true',
  '%F0%9F%98%80',
];

function queryArb(op: Op): fc.Arbitrary<string> {
  const qs = op.params.filter((p) => p.in === 'query');
  const entry = (p: { name: string; schema: Schema }) =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: arbFor(p.schema, p.name, 1).map(
          (v) =>
            `${p.name}=${encodeURIComponent(typeof v === 'string' ? v.replace(/[\ud800-\udfff]/g, '') : v instanceof Raw ? v.text : (JSON.stringify(v) ?? ''))}`,
        ),
      },
      { weight: 2, arbitrary: fc.constantFrom(...QUERY_HOSTILE).map((v) => `${p.name}=${v}`) },
      { weight: 1, arbitrary: fc.constantFrom(`${p.name}=1&${p.name}=2`, `${p.name}[]=1`, `${p.name}`, `${p.name}[a]=b`) },
    );
  const parts = qs.map((p) =>
    fc.option(entry(p), {
      nil: undefined,
      freq: (op.params.find((x) => x.name === p.name) as { required?: boolean } | undefined)?.required ? 8 : 2,
    }),
  );
  const extra = fc.option(fc.constantFrom('unknown=1', '%00=1', '%ED%A0%80=x', '__proto__[x]=1', 'constructor=1'), {
    freq: 5,
    nil: undefined,
  });
  const generated = fc.tuple(...parts, extra).map((xs) => xs.filter((x): x is string => !!x).join('&'));
  const examples = queryExamples[`${op.method.toUpperCase()} ${op.path}`] ?? [];
  if (!examples.length) return generated;
  const fromExample = fc
    .constantFrom(...examples)
    .chain(mutate)
    .map((q) =>
      (q && typeof q === 'object' && !Array.isArray(q) ? Object.entries(q as Record<string, unknown>) : [['q', q]])
        .map(
          ([k, v]) =>
            `${encodeURIComponent(String(k).replace(/[\ud800-\udfff]/g, '%ED%A0%80'))}=${v instanceof Raw ? v.text : encodeURIComponent((typeof v === 'string' ? v : (JSON.stringify(v) ?? '')).replace(/[\ud800-\udfff]/g, ''))}`,
        )
        .join('&'),
    );
  return fc.oneof({ weight: 1, arbitrary: generated }, { weight: 2, arbitrary: fromExample });
}

function authArb(admin: boolean): fc.Arbitrary<Record<string, string>> {
  if (admin)
    return fc.constantFrom<Record<string, string>>(
      { 'x-admin-secret': ADMIN_SECRET },
      { 'x-admin-secret': ADMIN_SECRET },
      { 'x-admin-secret': 'wrong' },
      {},
    );
  return fc.oneof(
    { weight: 17, arbitrary: fc.constant({ 'x-api-key': keyA }) },
    { weight: 1, arbitrary: fc.constant({ 'x-api-key': keyB }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Record<string, string>>(
        {},
        { 'x-api-key': 'ml_invalid' },
        { authorization: `Bearer ${keyA}x` },
        { authorization: 'Basic Zm9vOmJhcg==' },
        { 'x-api-key': '' },
      ),
    },
  );
}

function bodyArb(op: Op): fc.Arbitrary<{ body?: string | Buffer; type?: string }> {
  if (op.method === 'get') return fc.constant({});
  if (!op.body) {
    return fc.oneof(
      { weight: 9, arbitrary: fc.constant({}) },
      { weight: 1, arbitrary: fc.constant({ body: '{"x":1}', type: 'application/json' }) },
    );
  }
  const json = arbFor(op.body, 'body', 0).map((v) => ({ body: toJson(v), type: 'application/json' }));
  const examples = bodyExamples[`${op.method.toUpperCase()} ${op.path}`] ?? [];
  const mutated = examples.length
    ? fc
        .constantFrom(...examples)
        .chain(mutate)
        .map((v) => ({ body: toJson(v), type: 'application/json' }))
    : json;
  return fc.oneof(
    { weight: 10, arbitrary: json },
    { weight: 12, arbitrary: mutated },
    {
      weight: 1,
      arbitrary: fc.constantFrom<{ body?: string | Buffer; type?: string }>(
        { body: 'not json', type: 'application/json' },
        { body: '{"a":', type: 'application/json' },
        { body: '', type: 'application/json' },
        { body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xed, 0xa0, 0x80, 0x22, 0x7d]), type: 'application/json' },
        { body: '1e309', type: 'application/json' },
        { body: '{"customer_id":"x"}', type: 'text/plain' },
        { body: '{"customer_id":"x"}', type: 'application/json; charset=utf-16' },
        { body: '[]', type: 'application/json' },
        { body: 'null', type: 'application/json' },
        { body: '"str"', type: 'application/json' },
        {},
        { body: `{"a":"${'x'.repeat(1_100_000)}"}`, type: 'application/json' },
      ),
    },
  );
}

function requestArb(op: Op): fc.Arbitrary<Req> {
  const pathParams = op.params.filter((p) => p.in === 'path');
  const pathArb = pathParams.length
    ? fc
        .tuple(...pathParams.map((p) => pathParamArb(p, op)))
        .map((vals) => pathParams.reduce((p, param, i) => p.replace(`{${param.name}}`, vals[i]!), op.path))
    : fc.constant(op.path);
  return fc.tuple(pathArb, queryArb(op), authArb(op.admin), bodyArb(op)).map(([path, q, auth, b]) => ({
    method: op.method.toUpperCase(),
    url: `${path}${q ? `?${q}` : ''}`,
    op: `${op.method.toUpperCase()} ${op.path}`,
    headers: { ...auth, ...(b.type ? { 'content-type': b.type } : {}) },
    ...(b.body !== undefined ? { body: b.body } : {}),
  }));
}

async function send(r: Req): Promise<{ status: number; text: string }> {
  const res = await fetch(url + r.url, { method: r.method, headers: r.headers, body: r.body });
  return { status: res.status, text: await res.text() };
}

// ---------- setup: two organizations with real rows ----------

async function seed(api: Awaited<ReturnType<typeof createOrg>>['api'], into: Record<string, string[]>, suffix: string) {
  const add = (k: string, v: string) => {
    (into[k] ??= []).push(v);
  };
  const ok = (r: { status: number; body: unknown }, what: string) => {
    if (r.status >= 300) throw new Error(`seed ${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as Record<string, any>;
  };
  const rawPost = api.post;
  api = {
    ...api,
    post: (p: string, b?: unknown) => {
      if (into === ids) (bodyExamples[`POST ${p}`] ??= []).push(b);
      return rawPost(p, b);
    },
  };
  ok(await api.post('/v1/metrics', { metric_id: `calls${suffix}`, event_name: `api_call${suffix}`, aggregation: 'count' }), 'metric');
  ok(
    await api.post('/v1/metrics', {
      metric_id: `tokens${suffix}`,
      event_name: `llm${suffix}`,
      aggregation: 'sum',
      property: 'tokens',
      group_by: ['region'],
      filters: [{ property: 'model', operator: 'in', values: ['a', 'b'] }],
    }),
    'metric2',
  );
  ok(
    await api.post('/v1/metrics', { metric_id: `seats${suffix}`, event_name: `seats${suffix}`, aggregation: 'latest', property: 'n' }),
    'metric3',
  );
  for (const m of ['calls', 'tokens', 'seats']) add('metric_id', `${m}${suffix}`);
  add('event_name', `api_call${suffix}`);
  ok(await api.post('/v1/features', { feature_id: `api${suffix}`, type: 'metered', metric_id: `calls${suffix}` }), 'feature');
  ok(await api.post('/v1/features', { feature_id: `llm${suffix}`, type: 'metered', metric_id: `tokens${suffix}` }), 'feature2');
  ok(await api.post('/v1/features', { feature_id: `seats${suffix}`, type: 'metered', metric_id: `seats${suffix}` }), 'feature3');
  ok(await api.post('/v1/features', { feature_id: `sso${suffix}`, type: 'boolean' }), 'feature4');
  for (const f of ['api', 'llm', 'seats', 'sso']) add('feature_id', `${f}${suffix}`);
  for (const [plan, fee, timing] of [
    ['pro', '49.00', 'in_advance'],
    ['team', '10', 'in_arrears'],
  ] as const) {
    ok(
      await api.post('/v1/plans', {
        plan_id: `${plan}${suffix}`,
        name: plan,
        interval: 'month',
        flat_fee: fee,
        flat_fee_timing: timing,
        components: [
          {
            metric_id: `calls${suffix}`,
            free_units: 100,
            pricing: {
              model: 'graduated',
              tiers: [
                { up_to: 1000, unit_price: '0.01' },
                { up_to: null, unit_price: '0.001', flat_fee: '1' },
              ],
            },
          },
          {
            metric_id: `tokens${suffix}`,
            pricing: { model: 'per_unit', unit_price: '0.0004' },
            group_prices: [{ group: { region: 'eu' }, pricing: { model: 'package', package_size: 1000, package_price: '2' } }],
          },
        ],
        entitlements: [
          { feature_id: `api${suffix}`, limit: 1000 },
          { feature_id: `llm${suffix}`, limit: null },
          { feature_id: `seats${suffix}`, limit: 5, limit_type: 'soft', reset_period: 'never' },
          { feature_id: `sso${suffix}` },
        ],
      }),
      'plan',
    );
    add('plan_id', `${plan}${suffix}`);
  }
  for (const c of ['c1', 'c2', 'c3']) {
    ok(
      await api.post('/v1/customers', {
        customer_id: `${c}${suffix}`,
        name: c,
        email: `${c}@example.com`,
        balance: '5.00',
        metadata: { tier: 'gold' },
      }),
      'customer',
    );
    add('customer_id', `${c}${suffix}`);
  }
  for (const [c, plan] of [
    ['c1', 'pro'],
    ['c2', 'team'],
    ['c3', 'pro'],
  ]) {
    const s = ok(await api.post('/v1/subscriptions', { customer_id: `${c}${suffix}`, plan_id: `${plan}${suffix}` }), 'subscription');
    add('subscription_id', s.subscription_id);
  }
  const inv = ok(await api.get('/v1/invoices'), 'invoices');
  for (const i of inv.data) add('invoice_id', i.invoice_id);
  const k = ok(await api.post('/v1/api_keys', { name: 'sacrificial' }), 'key');
  add('key_id', k.key_id);
  add('version', '1');
}

beforeAll(async () => {
  ({ billing } = await startTestBilling({ env: { LOG_LEVEL: 'error' } }));
  url = billing.url;
  const a = await createOrg(url);
  const b = await createOrg(url);
  keyA = a.apiKey;
  keyB = b.apiKey;
  orgA = a.orgId;
  orgB = b.orgId;
  await seed(a.api, ids, '');
  await seed(b.api, foreignIds, '_b');
  const from = new Date(Date.now() - 3 * 3_600_000).toISOString();
  const to = new Date(Date.now() + 3_600_000).toISOString();
  Object.assign(bodyExamples, {
    'POST /v1/check': [
      { customer_id: 'c1', feature_id: 'api', required_balance: 2, send_event: true, properties: { region: 'eu' } },
      { customer_id: 'c3', feature_id: 'llm', required_balance: 10.5, send_event: true },
      { customer_id: 'c2', feature_id: 'sso' },
    ],
    'POST /v1/usage': [
      { customer_id: 'c1', feature_id: 'llm', value: 100, update_behavior: 'delta', properties: { model: 'a' } },
      { customer_id: 'c1', feature_id: 'seats', value: 3, update_behavior: 'set' },
      { customer_id: 'c3', feature_id: 'api', value: 2 },
    ],
    'PATCH /v1/customers/{customer_id}': [{ name: 'New', email: 'n@example.com', balance: '7.25', metadata: { a: { b: [1, 'x'] } } }],
    'PATCH /v1/plans/{plan_id}': [
      { flat_fee: '59.00', trial_days: 7 },
      { components: (bodyExamples['POST /v1/plans']![0] as { components: unknown }).components },
    ],
    'PATCH /v1/metrics/{metric_id}': [{ name: 'renamed' }, { filters: [{ property: 'size', operator: 'gt', value: 10 }] }],
    'PATCH /v1/features/{feature_id}': [{ name: 'renamed' }],
    'PATCH /v1/subscriptions/{subscription_id}': [
      { turn_off_auto_renew: true },
      { replace_immediately_type: 'change_subscription_plan', plan_id: 'team' },
      { replace_immediately_type: 'end_current_subscription_and_bill', plan_id: 'pro' },
    ],
    'POST /v1/subscriptions/{subscription_id}/cancel': [{ type: 'end_current_subscription_and_bill' }],
  });
  (bodyExamples['POST /v1/subscriptions'] ??= []).push({
    customer_id: 'c2',
    plan_id: 'pro',
    start_date: from,
    end_date: to,
    subscription_id: 'sub_fuzz',
    auto_renew: false,
  });
  Object.assign(queryExamples, {
    'GET /v1/usage': [
      { customer_id: 'c1', metric_id: 'tokens', from, to, window: 'hour', group_by: true },
      { customer_id: 'c3', feature_id: 'api', from, to },
    ],
    'GET /v1/customer_access': [
      { customer_id: 'c1', feature_name: 'api' },
      { customer_id: 'c1', event_name: 'api_call', event_limit_type: 'free' },
    ],
    'GET /v1/customers/{customer_id}/entitlements/{feature_id}': [{ requested_usage: 5 }],
    'GET /v1/invoices': [{ customer_id: 'c1', limit: 5, offset: 0 }],
    'GET /v1/subscriptions': [{ customer_id: 'c1', status: 'active', plan_id: 'pro' }],
    'GET /v1/customers': [{ include_archived: true, email: 'c1@example.com' }],
  });
  ids.organization_id = [orgA];
  ids.doomed_organization_id = [(await createOrg(url)).orgId];
  // rows for the destructive calls (see pathParamArb)
  const seedOk = async (p: string, b: unknown) => {
    const r = await a.api.post(p, b);
    if (r.status >= 300) throw new Error(`seed ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  for (let i = 0; i < 4; i++) {
    (ids.doomed_customer_id ??= []).push((await seedOk('/v1/customers', { customer_id: `doomed_c${i}` })).customer_id);
    (ids.doomed_subscription_id ??= []).push(
      (
        await seedOk('/v1/subscriptions', { customer_id: i % 2 ? 'c1' : `doomed_c${i}`, plan_id: i % 2 ? 'team' : 'pro' }).catch(() =>
          seedOk('/v1/subscriptions', { customer_id: `doomed_c${i}`, plan_id: 'team' }),
        )
      ).subscription_id,
    );
    (ids.doomed_feature_id ??= []).push((await seedOk('/v1/features', { feature_id: `doomed_f${i}`, type: 'boolean' })).feature_id);
    (ids.doomed_metric_id ??= []).push(
      (await seedOk('/v1/metrics', { metric_id: `doomed_m${i}`, event_name: 'doomed', aggregation: 'count' })).metric_id,
    );
    (ids.doomed_plan_id ??= []).push((await seedOk('/v1/plans', { plan_id: `doomed_p${i}`, name: 'doomed', interval: 'month' })).plan_id);
  }
  ids.doomed_key_id = ids.key_id!;
  foreignIds.organization_id = [orgB];
});
afterAll(async () => {
  await billing?.stop();
});

describe('billing fuzz (OpenAPI-driven)', () => {
  it('the exact cases of issue #9 answer 400 validation_error naming the field', async () => {
    const post = (path: string, body: string) =>
      send({ method: 'POST', url: path, headers: { 'x-api-key': keyA, 'content-type': 'application/json' }, body, op: '' });
    const expect400 = async (r: Promise<{ status: number; text: string }>, field: string) => {
      const { status, text } = await r;
      expect(status, text).toBe(400);
      const body = JSON.parse(text);
      expect(body.error.code, text).toBe('validation_error');
      expect(body.error.message, text).toContain(field);
    };
    await expect400(
      post('/v1/customers', '{"customer_id":"x1","metadata":{"k":"\\ud800"}}'),
      'body/metadata/k contains an unpaired UTF-16 surrogate',
    );
    await expect400(
      post('/v1/customers', '{"customer_id":"x1","metadata":{"\\udc00":1}}'),
      'body/metadata/\\udc00 (key) contains an unpaired UTF-16 surrogate',
    );
    await expect400(post('/v1/customers', '{"customer_id":"x","name":"a\\u0000b"}'), 'body/name contains a NUL character');
    await expect400(post('/v1/customers', '{"customer_id":"x","balance":"99999999999999999999999999"}'), 'body/balance');
    await expect400(
      send({ method: 'GET', url: '/v1/customers/c1%00x', headers: { 'x-api-key': keyA }, op: '' }),
      'params/customer_id contains a NUL character',
    );
    // (path params longer than 100 characters get 414 from the router before any hook)
    await expect400(
      send({ method: 'GET', url: `/v1/invoices?customer_id=${'x'.repeat(300)}`, headers: { 'x-api-key': keyA }, op: '' }),
      'querystring/customer_id is too long',
    );
    await expect400(
      send({ method: 'GET', url: '/v1/invoices?customer_id=a%01b', headers: { 'x-api-key': keyA }, op: '' }),
      'querystring/customer_id contains control characters',
    );
    const plan = (tier: string) =>
      `{"plan_id":"p_bad","name":"x","interval":"month","components":[{"metric_id":"calls","pricing":{"model":"graduated","tiers":[{"up_to":${tier},"unit_price":"1"},{"up_to":null,"unit_price":"1"}]}}]}`;
    for (const t of ['"Infinity"', '"1e309"', '1e309', '1.5', '0', '1e16', '"-0"'])
      await expect400(post('/v1/plans', plan(t)), 'body/components/0/pricing/tiers/0/up_to');
    await expect400(
      post('/v1/plans', '{"plan_id":"p_bad","name":"x","interval":"month","flat_fee":"99999999999999999999999"}'),
      'body/flat_fee',
    );
    await expect400(post('/v1/usage', `{"customer_id":"c1","feature_id":"api","value":1e309}`), 'body/value');
    await expect400(post('/v1/usage', `{"customer_id":"c1","feature_id":"api","value":"Infinity"}`), 'body/value');
    await expect400(post('/v1/check', `{"customer_id":"c1","feature_id":"api","required_balance":1e16}`), 'body/required_balance');
    await expect400(
      post('/v1/check', `{"customer_id":"c1","feature_id":"api","properties":{"a\\u0001":"x"}}`),
      'body/properties/a\\u0001 (key) contains control characters',
    );
    await expect400(
      post('/v1/subscriptions', '{"customer_id":"c1","plan_id":"pro","start_date":"2024-01-01T23:59:60Z"}'),
      'body/start_date',
    );
    await expect400(post('/v1/customers', `{"customer_id":"x","metadata":${toJson(deep(40, 'object'))}}`), 'nested too deeply');
    // a plan row that predates the limits (huge flat fee written directly): subscribing is refused, not a 500
    await billing.deps.pool.query(`INSERT INTO plans (organization_id, plan_id) VALUES ($1, 'legacy_huge')`, [orgA]);
    await billing.deps.pool.query(
      `INSERT INTO plan_versions (organization_id, plan_id, version, name, billing_interval, currency, flat_fee, flat_fee_timing, trial_days, components, entitlements)
       VALUES ($1, 'legacy_huge', 1, 'legacy', 'month', 'USD', '99999999999999999999999'::numeric, 'in_advance', 0, '[]', '[]')`,
      [orgA],
    );
    const sub = await post('/v1/subscriptions', '{"customer_id":"c2","plan_id":"legacy_huge"}');
    expect(sub.status, sub.text).toBe(400);
  });

  it(`${REQUESTS} generated requests: no 5xx, still ready`, async () => {
    const doc = JSON.parse((await send({ method: 'GET', url: '/docs/json', headers: {}, op: '' })).text) as {
      paths: Record<
        string,
        Record<
          string,
          {
            parameters?: Op['params'];
            requestBody?: { content: Record<string, { schema: Schema }> };
            security?: { adminSecret?: unknown }[];
          }
        >
      >;
    };
    const ops: Op[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1') && !path.startsWith('/admin')) continue;
      for (const [method, op] of Object.entries(methods)) {
        ops.push({
          method,
          path,
          params: op.parameters ?? [],
          body: op.requestBody?.content['application/json']?.schema,
          admin: path.startsWith('/admin'),
        });
      }
    }
    expect(ops.length).toBeGreaterThan(30);
    const reqs = fc.sample(fc.constantFrom(...ops).chain(requestArb), { numRuns: REQUESTS, seed: SEED });
    const histogram: Record<string, number> = {};
    const perRoute: Record<string, Record<string, number>> = {};
    const failures: { req: Omit<Req, 'body'> & { body?: string }; status: number; text: string }[] = [];
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < reqs.length) {
          const r = reqs[next++]!;
          let status: number;
          let text: string;
          try {
            ({ status, text } = await send(r));
          } catch (err) {
            status = 599;
            text = `client error: ${(err as Error).message}`;
          }
          histogram[status] = (histogram[status] ?? 0) + 1;
          (perRoute[r.op] ??= {})[status] = ((perRoute[r.op] ??= {})[status] ?? 0) + 1;
          if (status >= 500)
            failures.push({
              req: { ...r, body: typeof r.body === 'string' ? r.body.slice(0, 500) : r.body ? `<${r.body.length} bytes>` : undefined },
              status,
              text: text.slice(0, 300),
            });
        }
      }),
    );
    const ready = await send({ method: 'GET', url: '/readyz', headers: {}, op: '' });
    const summary = {
      seed: SEED,
      requests: reqs.length,
      routes: ops.length,
      ms: Date.now() - started,
      histogram,
      fivexx: failures.length,
      perRoute,
      failures: failures.slice(0, 20),
    };
    // eslint-disable-next-line no-console
    console.log(
      `billing fuzz: seed ${SEED}, ${reqs.length} requests over ${ops.length} routes in ${summary.ms} ms, status histogram ${JSON.stringify(histogram)}, 5xx ${failures.length}`,
    );
    const dir = fileURLToPath(new URL('../../../.cache/billing/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}fuzz-latest.json`, JSON.stringify(summary, null, 2));
    expect(failures, JSON.stringify(failures.slice(0, 5), null, 2)).toEqual([]);
    expect(ready.status).toBe(200);
    // the fuzz reached the handlers, not only the validators
    expect(
      Object.entries(histogram)
        .filter(([s]) => s.startsWith('2'))
        .reduce((n, [, c]) => n + c, 0),
    ).toBeGreaterThan(reqs.length * 0.05);
  });
});
