// Friendly inputs (#15 item 6): what Lotus, Autumn and Stigg users send, accepted where it is
// unambiguous and otherwise refused naming the field and the Meterline way. Schema-driven and generic:
// it walks a request part along its JSON schema (@meterline/contracts) BEFORE ajv validates it
// (http/validation.ts), so every route gets the same rules without per-route code:
//   - dates: a date-time field (`format: date-time`) also takes a date `YYYY-MM-DD`, read as the start
//     of that day in UTC (`2020-01-01` -> `2020-01-01T00:00:00Z`);
//   - camelCase keys: `startDate` is read as `start_date` when `start_date` is a property of that
//     object and the body does not also carry `start_date` (both given: 400 naming the two);
//   - enums are case-insensitive when exactly one allowed value matches (`"SET"` -> `set`,
//     `"Month"` -> `month`);
//   - unknown fields of a closed object (`additionalProperties: false`) are a 400 listing every one,
//     each named, with a suggestion: the Lotus names (`billing_plan_id` -> `plan_id`,
//     `customer_name` -> `name`), a near spelling, or what to do instead (FIELD_HINTS).
// Free-form objects (metadata, event properties) are left exactly as sent.

type Schema = Record<string, unknown>;

/** An ajv-shaped error (ajv's own errors get the same friendly messages in validation.ts). */
export interface FriendlyError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  message: string;
}

/** Fields users of other billing APIs send: the Meterline field (when the object has it) or what to do instead. */
export const FIELD_HINTS: Record<string, { use?: string; hint?: string }> = {
  billing_plan_id: { use: 'plan_id', hint: "Lotus's billing_plan_id is Meterline's plan_id" },
  customer_name: { use: 'name', hint: "Lotus's customer_name is Meterline's name" },
  product_id: { use: 'plan_id', hint: 'products are plans in Meterline: use plan_id' },
  bill_now: {
    hint: 'bill_now is a cancel option: POST /v1/subscriptions/{subscription_id}/cancel (or PATCH /v1/subscriptions/{subscription_id}) with {"revoke_access": true, "bill_now": true}',
  },
  revoke_access: {
    hint: 'revoke_access is a cancel option: POST /v1/subscriptions/{subscription_id}/cancel (or PATCH /v1/subscriptions/{subscription_id})',
  },
  payment_provider_id: {
    hint: 'Meterline customers have no payment-provider id: keep it in metadata, e.g. "metadata": {"payment_provider_id": "cus_123"}; payments carry provider and reference (POST /v1/invoices/{invoice_id}/payments)',
  },
};

export const snakeCase = (k: string) =>
  k
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

// schemas are compiled once per route; their flattened forms are cached (the check hot path walks a small body)
const expanded = new WeakMap<Schema, Schema[]>();
const propsOf = new WeakMap<Schema[], Map<string, Schema[]>>();

/** The schema and every schema it composes (allOf/anyOf/oneOf/then/else), flattened (cached). */
function expand(s: Schema): Schema[] {
  let out = expanded.get(s);
  if (!out) expanded.set(s, (out = expandInto(s, [])));
  return out;
}

function expandInto(s: Schema, out: Schema[]): Schema[] {
  out.push(s);
  for (const k of ['allOf', 'anyOf', 'oneOf'] as const) {
    const list = s[k];
    if (Array.isArray(list)) for (const b of list) if (isObj(b)) expandInto(b as Schema, out);
  }
  for (const k of ['then', 'else'] as const) if (isObj(s[k])) expandInto(s[k] as Schema, out);
  return out;
}

/** At most this many unknown fields are reported per request (each costs a suggestion search). */
export const MAX_UNKNOWN_FIELDS = 20;
/** Longer unknown keys get no "did you mean" (the edit distance is quadratic in the key's length). */
const MAX_SUGGESTED_FIELD_LENGTH = 64;

/** Edit distance with adjacent transpositions (optimal string alignment): "emial" -> "email" is 1. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

/** The property an unknown field most likely meant, or null. */
export function suggestField(field: string, allowed: string[]): string | null {
  const h = FIELD_HINTS[field];
  if (h?.use && allowed.includes(h.use)) return h.use;
  const flat = (s: string) => s.replace(/[_-]/g, '').toLowerCase();
  const same = allowed.find((a) => flat(a) === flat(field));
  if (same) return same;
  let best: string | null = null;
  let bestD = Infinity;
  for (const a of allowed) {
    const dist = editDistance(field.toLowerCase(), a);
    if (dist < bestD) [best, bestD] = [a, dist];
  }
  return best !== null && bestD <= Math.min(2, Math.max(1, Math.floor(field.length / 4))) ? best : null;
}

/** `unknown field "x"; did you mean "y"?` (+ a hint for fields other APIs have), or the allowed list. */
export function unknownFieldMessage(field: string, allowed: string[], suggestion?: string | null): string {
  const s = suggestion !== undefined ? suggestion : suggestField(field, allowed);
  const hint = FIELD_HINTS[field]?.hint;
  if (s) return `unknown field "${field}"; did you mean "${s}"?`;
  if (hint) return `unknown field "${field}": ${hint}`;
  return `unknown field "${field}" (allowed: ${allowed.join(', ') || 'none'})`;
}

function allowedProps(schemas: Schema[]): Map<string, Schema[]> {
  const props = new Map<string, Schema[]>();
  for (const s of schemas) {
    const p = s.properties;
    if (!isObj(p)) continue;
    for (const [k, sub] of Object.entries(p)) if (isObj(sub)) (props.get(k) ?? props.set(k, []).get(k)!).push(sub as Schema);
  }
  return props;
}

const pointer = (path: string, key: string) => `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;

function normalizeString(schemas: Schema[], v: string): string {
  const candidates = new Set<string>();
  let dateTime = false;
  for (const s of schemas) {
    if (Array.isArray(s.enum)) for (const e of s.enum) if (typeof e === 'string') candidates.add(e);
    if (typeof s.const === 'string') candidates.add(s.const);
    if (s.format === 'date-time') dateTime = true;
  }
  if (candidates.size > 0 && !candidates.has(v)) {
    const lower = v.toLowerCase();
    const matches = [...candidates].filter((c) => c.toLowerCase() === lower);
    if (matches.length === 1) return matches[0]!;
  }
  if (dateTime && DATE_ONLY.test(v)) return `${v}T00:00:00Z`;
  return v;
}

function visit(direct: Schema[], v: unknown, path: string, errors: FriendlyError[]): unknown {
  if (direct.length === 0) return v;
  const schemas = direct.length === 1 ? expand(direct[0]!) : direct.flatMap((s) => expand(s));
  if (typeof v === 'string') return normalizeString(schemas, v);
  if (Array.isArray(v)) {
    const items = schemas.flatMap((s) => (isObj(s.items) ? [s.items as Schema] : []));
    if (items.length) for (let i = 0; i < v.length; i++) v[i] = visit(items, v[i], `${path}/${i}`, errors);
    return v;
  }
  if (!isObj(v)) return v;
  let props = propsOf.get(schemas);
  if (!props) {
    props = allowedProps(schemas);
    if (direct.length === 1) propsOf.set(schemas, props);
  }
  if (props.size === 0) return v; // a free-form object (metadata, properties): as sent
  const open = direct.some((s) => s.additionalProperties === true || isObj(s.additionalProperties));
  // closed: a plain object schema that refuses other properties (composed ones are left to ajv)
  const closed = direct.some((s) => s.additionalProperties === false && !s.allOf && !s.anyOf && !s.oneOf && !s.if);
  for (const key of Object.keys(v)) {
    if (props.has(key)) continue;
    const snake = snakeCase(key);
    if (!open && snake !== key && props.has(snake)) {
      if (Object.hasOwn(v, snake)) {
        errors.push({
          instancePath: path,
          schemaPath: '#/additionalProperties',
          keyword: 'additionalProperties',
          params: { additionalProperty: key, duplicateOf: snake },
          message: `unknown field "${key}": "${snake}" is also given (send one of them)`,
        });
        continue;
      }
      v[snake] = v[key];
      delete v[key];
      continue;
    }
    if (closed) {
      // Bounded work and answer size for hostile bodies: the first MAX_UNKNOWN_FIELDS unknown fields are
      // reported (one more error says how many were left out); suggestions only for plausible names.
      if (errors.length >= MAX_UNKNOWN_FIELDS) {
        if (errors.length === MAX_UNKNOWN_FIELDS) {
          errors.push({
            instancePath: path,
            schemaPath: '#/additionalProperties',
            keyword: 'additionalProperties',
            params: { additionalProperty: key },
            message: `more than ${MAX_UNKNOWN_FIELDS} unknown fields; the rest are not listed`,
          });
        }
        continue;
      }
      const allowed = [...props.keys()];
      const suggestion = key.length <= MAX_SUGGESTED_FIELD_LENGTH ? suggestField(key, allowed) : null;
      errors.push({
        instancePath: path,
        schemaPath: '#/additionalProperties',
        keyword: 'additionalProperties',
        params: { additionalProperty: key, ...(suggestion ? { suggestion } : {}), allowed },
        message: unknownFieldMessage(key, allowed, suggestion),
      });
    }
  }
  for (const [key, subs] of props) if (Object.hasOwn(v, key)) v[key] = visit(subs, v[key], pointer(path, key), errors);
  return v;
}

/**
 * Normalizes `data` in place along `schema` (dates, camelCase keys, enum case) and returns the unknown
 * fields it found (empty: go on and validate). The root value itself is returned (a string root may change).
 */
export function normalizeInput(schema: Schema, data: unknown): { value: unknown; errors: FriendlyError[] } {
  const errors: FriendlyError[] = [];
  const value = visit([schema], data, '', errors);
  return { value, errors };
}
