// Segment compatibility: maps Segment messages (Webhooks destination payloads and the HTTP tracking API
// used by Segment's SDKs) onto the Meterline event contract, and verifies webhook signatures.
//
// Mapping (see README):
//   messageId → idempotency_id, userId (else anonymousId) → customer_id, event → event_name,
//   timestamp (else originalTimestamp) → time_created, properties → properties FLATTENED:
//   nested objects and arrays become dot keys ({plan:{tier:"pro"}} → "plan.tier", {items:[{sku:"a"}]} →
//   "items.0.sku"); null values are dropped. The flattened result obeys the normal property limits.
//   page / screen → events named "page" / "screen" (the page/screen `name` becomes property "name").
//   identify → upsert of the customer (name, email from traits); group / alias → ignored (not usage).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { identifierProblem, TEXT_PROBLEM_MESSAGE, textValueProblem } from '@meterline/core';
import {
  forbiddenKeyError,
  forbiddenKeyPath,
  LIMITS,
  validateEvent,
  type FieldError,
  type TimeRules,
  type ValidationResult,
} from './validation.ts';

export type SegmentType = 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias';
const SUPPORTED: ReadonlySet<string> = new Set(['track', 'identify', 'page', 'screen', 'group', 'alias']);

export interface CustomerUpsert {
  customerId: string;
  name: string | null;
  email: string | null;
}

export type SegmentMapping =
  | { kind: 'event'; result: ValidationResult }
  | { kind: 'identify'; customer: CustomerUpsert }
  | { kind: 'ignored'; type: string }
  | { kind: 'rejected'; errors: FieldError[] };

const MAX_DEPTH = 16;

/** Our field name → Segment's, so that errors name the field the sender actually sent. */
const SEGMENT_FIELD: Record<string, string> = {
  event_name: 'event',
  customer_id: 'userId',
  idempotency_id: 'messageId',
  time_created: 'timestamp',
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Flattens nested objects/arrays into dot keys. Returns the flat object, or an error when nesting is
 * deeper than MAX_DEPTH or the result would exceed the property count limit.
 */
export function flattenProperties(value: unknown): { ok: true; properties: Record<string, unknown> } | { ok: false; error: FieldError } {
  if (value === undefined || value === null) return { ok: true, properties: Object.create(null) };
  if (!isPlainObject(value)) {
    return { ok: false, error: { field: 'properties', reason: 'must_be_object', message: 'properties must be a JSON object' } };
  }
  const out = Object.create(null) as Record<string, unknown>;
  let count = 0;
  let error: FieldError | null = null;
  const walk = (v: unknown, prefix: string, depth: number): void => {
    if (error) return;
    if (v === null || v === undefined) return;
    if (typeof v === 'object') {
      if (depth >= MAX_DEPTH) {
        error = { field: `properties.${prefix}`, reason: 'too_deep', message: `properties nest deeper than ${MAX_DEPTH} levels` };
        return;
      }
      const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v as Record<string, unknown>);
      for (const [k, x] of entries) walk(x, prefix === '' ? k : `${prefix}.${k}`, depth + 1);
      return;
    }
    if (++count > LIMITS.maxProperties) {
      error = {
        field: 'properties',
        reason: 'too_many_properties',
        message: `properties flatten to more than ${LIMITS.maxProperties} keys`,
      };
      return;
    }
    out[prefix] = v;
  };
  walk(value, '', 0);
  return error ? { ok: false, error } : { ok: true, properties: out };
}

function renameFields(errors: FieldError[]): FieldError[] {
  return errors.map((e) => {
    const renamed = SEGMENT_FIELD[e.field];
    return renamed ? { ...e, field: renamed, message: e.message.replace(e.field, renamed) } : e;
  });
}

const TRAIT_MAX_LENGTH = 255;

/**
 * A text trait, trimmed and cut to 255 characters (never inside a surrogate pair), or null when absent
 * or not a non-empty string. Text Postgres (or a UI, an export) can't store is an error on that trait:
 * `name`-like traits are free text (no NUL, valid Unicode), `email` is an identifier (no controls).
 */
function traitString(
  traits: Record<string, unknown>,
  key: string,
  errors: FieldError[],
  kind: 'text' | 'identifier' = 'text',
): string | null {
  const v = traits[key];
  if (typeof v !== 'string') return null;
  const problem = kind === 'text' ? textValueProblem(v) : identifierProblem(v);
  if (problem) {
    const what = problem === 'invalid_characters' && kind === 'text' ? 'contains a NUL character' : TEXT_PROBLEM_MESSAGE[problem];
    errors.push({ field: `traits.${key}`, reason: problem, message: `traits.${key} ${what}` });
    return null;
  }
  const t = v.trim();
  if (t.length === 0) return null;
  let cut = t.slice(0, TRAIT_MAX_LENGTH);
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return cut;
}

/**
 * Maps one Segment message. `impliedType` is the type given by the endpoint (/v1/track …); messages
 * in /v1/batch and webhooks carry their own `type`.
 */
export function mapSegmentMessage(msg: unknown, nowMs: number, rules: TimeRules, impliedType?: SegmentType): SegmentMapping {
  if (!isPlainObject(msg)) {
    return { kind: 'rejected', errors: [{ field: '', reason: 'not_an_object', message: 'each message must be a JSON object' }] };
  }
  const forbidden = forbiddenKeyPath(msg);
  if (forbidden !== null) return { kind: 'rejected', errors: [forbiddenKeyError(forbidden)] };
  const type = typeof msg.type === 'string' && msg.type !== '' ? msg.type : impliedType;
  if (type === undefined || !SUPPORTED.has(type)) {
    return {
      kind: 'rejected',
      errors: [{ field: 'type', reason: 'unsupported_type', message: `type must be one of ${[...SUPPORTED].join(', ')}` }],
    };
  }
  if (type === 'group' || type === 'alias') return { kind: 'ignored', type };

  const customerId = msg.userId !== undefined && msg.userId !== null && msg.userId !== '' ? msg.userId : msg.anonymousId;
  const timestamp = msg.timestamp ?? msg.originalTimestamp;
  const base = {
    customer_id: typeof customerId === 'number' ? String(customerId) : customerId,
    idempotency_id: msg.messageId,
    time_created: timestamp,
  };

  if (type === 'identify') {
    const check = validateEvent({ ...base, event_name: 'identify' }, nowMs, rules);
    if (!check.ok) return { kind: 'rejected', errors: renameFields(check.errors) };
    const traits = isPlainObject(msg.traits) ? msg.traits : {};
    const errors: FieldError[] = [];
    const first = traitString(traits, 'firstName', errors) ?? traitString(traits, 'first_name', errors);
    const last = traitString(traits, 'lastName', errors) ?? traitString(traits, 'last_name', errors);
    const given = traitString(traits, 'name', errors);
    const email = traitString(traits, 'email', errors, 'identifier');
    if (errors.length > 0) return { kind: 'rejected', errors };
    const name = given ?? (first || last ? [first, last].filter(Boolean).join(' ') : null);
    return { kind: 'identify', customer: { customerId: check.event.customerId, name, email } };
  }

  const flat = flattenProperties(msg.properties);
  if (!flat.ok) return { kind: 'rejected', errors: [flat.error] };
  const properties = flat.properties;
  let eventName: unknown = msg.event;
  if (type === 'page' || type === 'screen') {
    eventName = type;
    if (typeof msg.name === 'string' && msg.name !== '' && !('name' in properties)) properties.name = msg.name;
  }
  const result = validateEvent({ ...base, event_name: eventName, properties }, nowMs, rules);
  return { kind: 'event', result: result.ok ? result : { ok: false, errors: renameFields(result.errors) } };
}

/** The request body forms of Segment's endpoints: { batch: [...] } (batch, webhooks), one message, or an array. */
export function segmentMessagesOfBody(body: unknown): { messages: unknown[] } | { error: string } {
  if (Array.isArray(body)) return { messages: body };
  if (isPlainObject(body)) {
    if ('batch' in body) return Array.isArray(body.batch) ? { messages: body.batch } : { error: '"batch" must be an array of messages' };
    return { messages: [body] };
  }
  return { error: 'the body must be a Segment message, an array of messages, or { "batch": [ ... ] }' };
}

/** Hex HMAC-SHA1 of the raw body with the shared secret, compared in constant time. */
export function verifySegmentSignature(rawBody: Buffer, secret: string, signature: string | undefined): boolean {
  if (!signature) return false;
  const expected = createHmac('sha1', secret).update(rawBody).digest();
  const given = Buffer.from(signature.trim(), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function signSegmentBody(rawBody: Buffer | string, secret: string): string {
  return createHmac('sha1', secret).update(rawBody).digest('hex');
}
