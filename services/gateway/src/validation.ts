// Validation and normalization of one incoming event (the public event contract).
// Pure functions: no I/O, the clock is passed in, so every rule is unit-testable.
import { randomUUID } from 'node:crypto';
import {
  EVENT_LIMITS,
  identifierProblem,
  TEXT_PROBLEM_MESSAGE,
  textValueProblem,
  type Properties,
  type PropertyValue,
} from '@meterline/core';

/** Hard limits of the event contract, defined in core (documented in services/gateway/README.md). */
export const LIMITS = EVENT_LIMITS;

export interface TimeRules {
  /** Events may be at most this far in the future (ms). */
  maxFutureMs: number;
  /** Events may be at most this old (ms). */
  backfillWindowMs: number;
}

/** An event that passed validation: everything but the organization (which comes from the API key). */
export interface ValidEvent {
  eventName: string;
  customerId: string;
  /** The customer's entity (seat, workspace), when sent: the same rules as customer_id. */
  entityId?: string;
  idempotencyId: string;
  /** True when the client sent no id and the gateway generated one (never a duplicate). */
  idempotencyIdGenerated: boolean;
  timeCreatedMs: number;
  properties: Properties;
}

export interface FieldError {
  /** The offending field as a path: `customer_id`, `properties.plan`, or `` for the event itself. */
  field: string;
  /** Machine-readable reason code (see README). */
  reason: string;
  /** Human-readable explanation. */
  message: string;
}

export type ValidationResult = { ok: true; event: ValidEvent } | { ok: false; errors: FieldError[] };

// RFC 3339 date-time: full date, 'T' (or 't' / space), full time, fraction optional, offset required.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Parses an RFC 3339 timestamp to epoch ms (UTC), or returns null. Offsets are converted to UTC. */
export function parseRfc3339(s: string): number | null {
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return null;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return null;
  const fraction = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  let ms = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), fraction);
  if (m[9]) {
    const offH = Number(m[10]);
    const offM = Number(m[11]);
    if (offH > 23 || offM > 59) return null;
    const offset = (offH * 60 + offM) * 60_000;
    ms = m[9] === '+' ? ms - offset : ms + offset;
  }
  return Number.isFinite(ms) ? ms : null;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function identifier(
  raw: Record<string, unknown>,
  names: [primary: string, alias?: string],
  maxLength: number,
  errors: FieldError[],
  required: boolean,
): string | undefined {
  const [primary, alias] = names;
  let field = primary;
  let value = raw[primary];
  if (alias !== undefined && raw[alias] !== undefined && raw[alias] !== null) {
    if (value !== undefined && value !== null && value !== raw[alias]) {
      errors.push({ field: primary, reason: 'conflicting_alias', message: `${primary} and ${alias} are both set and differ` });
      return undefined;
    }
    if (value === undefined || value === null) {
      value = raw[alias];
      field = alias;
    }
  }
  if (value === undefined || value === null) {
    if (required) errors.push({ field: primary, reason: 'required', message: `${primary} is required` });
    return undefined;
  }
  if (typeof value !== 'string') {
    errors.push({ field, reason: 'must_be_string', message: `${field} must be a string` });
    return undefined;
  }
  if (value.trim().length === 0) {
    errors.push({ field, reason: 'empty', message: `${field} must not be empty` });
    return undefined;
  }
  if (value.length > maxLength) {
    errors.push({ field, reason: 'too_long', message: `${field} is longer than ${maxLength} characters` });
    return undefined;
  }
  const problem = identifierProblem(value);
  if (problem) {
    errors.push({ field, reason: problem, message: `${field} ${TEXT_PROBLEM_MESSAGE[problem]}` });
    return undefined;
  }
  return value;
}

function validateProperties(value: unknown, errors: FieldError[]): Properties | undefined {
  if (value === undefined || value === null) return Object.create(null) as Properties;
  if (!isPlainObject(value)) {
    errors.push({ field: 'properties', reason: 'must_be_object', message: 'properties must be a JSON object' });
    return undefined;
  }
  const keys = Object.keys(value);
  if (keys.length > LIMITS.maxProperties) {
    errors.push({
      field: 'properties',
      reason: 'too_many_properties',
      message: `properties has ${keys.length} keys; at most ${LIMITS.maxProperties} are allowed`,
    });
    return undefined;
  }
  // Null prototype: a key named "__proto__" stays an ordinary key.
  const out = Object.create(null) as Properties;
  const before = errors.length;
  for (const key of keys) {
    const v = value[key];
    const field = `properties.${key}`;
    if (key.length === 0) {
      errors.push({ field, reason: 'empty_key', message: 'property keys must not be empty' });
      continue;
    }
    if (key.length > LIMITS.propertyKeyMaxLength) {
      errors.push({
        field: `properties.${key.slice(0, 32).toWellFormed()}…`,
        reason: 'key_too_long',
        message: `property keys are at most ${LIMITS.propertyKeyMaxLength} characters`,
      });
      continue;
    }
    const keyProblem = identifierProblem(key);
    // the field path is shown with the bad characters made visible, never echoed raw
    if (keyProblem) {
      errors.push({
        field: `properties.${JSON.stringify(key).slice(1, -1)}`,
        reason: keyProblem === 'invalid_unicode' ? 'key_invalid_unicode' : 'key_invalid_characters',
        message: `property key ${TEXT_PROBLEM_MESSAGE[keyProblem]}`,
      });
      continue;
    }
    if (typeof v === 'string') {
      if (v.length > LIMITS.propertyValueMaxLength) {
        errors.push({
          field,
          reason: 'value_too_long',
          message: `string property values are at most ${LIMITS.propertyValueMaxLength} characters`,
        });
        continue;
      }
      const valueProblem = textValueProblem(v);
      if (valueProblem) {
        errors.push({
          field,
          reason: valueProblem,
          message: `${field} ${valueProblem === 'invalid_characters' ? 'contains a NUL character' : TEXT_PROBLEM_MESSAGE[valueProblem]}`,
        });
        continue;
      }
      out[key] = v;
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) {
        errors.push({ field, reason: 'invalid_number', message: `${field} must be a finite number` });
        continue;
      }
      out[key] = v;
    } else if (typeof v === 'boolean') {
      out[key] = v;
    } else {
      errors.push({
        field,
        reason: 'must_be_scalar',
        message: `${field} must be a string, number or boolean (got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v})`,
      });
    }
  }
  return errors.length === before ? out : undefined;
}

/**
 * The path of the first `__proto__` key in a parsed JSON value, or null. Bodies are parsed with
 * JSON.parse, which makes such a key an ordinary own property (it never touches a prototype); the event
 * or message holding one is refused (reason `forbidden_key`) rather than passed on, so no later code can
 * be tricked into prototype poisoning — and the other events of the batch are still accepted.
 */
export function forbiddenKeyPath(value: unknown, prefix = '', depth = 0): string | null {
  if (value === null || typeof value !== 'object' || depth > 64) return null;
  for (const [k, v] of Object.entries(value)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    if (k === '__proto__') return path;
    const inner = forbiddenKeyPath(v, path, depth + 1);
    if (inner !== null) return inner;
  }
  return null;
}

export function forbiddenKeyError(path: string): FieldError {
  return { field: path, reason: 'forbidden_key', message: `${path}: "__proto__" keys are not accepted` };
}

/**
 * Validates one event as sent by a client. `nowMs` is the receive time: it fills a missing
 * time_created and anchors the future / backfill rules.
 */
export function validateEvent(raw: unknown, nowMs: number, rules: TimeRules): ValidationResult {
  if (!isPlainObject(raw)) {
    return { ok: false, errors: [{ field: '', reason: 'not_an_object', message: 'each event must be a JSON object' }] };
  }
  const forbidden = forbiddenKeyPath(raw);
  if (forbidden !== null) return { ok: false, errors: [forbiddenKeyError(forbidden)] };
  const errors: FieldError[] = [];
  const eventName = identifier(raw, ['event_name'], LIMITS.eventNameMaxLength, errors, true);
  const customerId = identifier(raw, ['customer_id'], LIMITS.customerIdMaxLength, errors, true);
  const idempotencyId = identifier(raw, ['idempotency_id', 'idempotency_key'], LIMITS.idempotencyIdMaxLength, errors, false);
  const entityId = identifier(raw, ['entity_id'], LIMITS.entityIdMaxLength, errors, false);

  let timeCreatedMs: number | undefined = nowMs;
  let timeField = 'time_created';
  let timeValue = raw.time_created;
  if (raw.timestamp !== undefined && raw.timestamp !== null) {
    if (timeValue !== undefined && timeValue !== null && timeValue !== raw.timestamp) {
      errors.push({ field: 'time_created', reason: 'conflicting_alias', message: 'time_created and timestamp are both set and differ' });
      timeCreatedMs = undefined;
    } else {
      timeValue = raw.timestamp;
      timeField = 'timestamp';
    }
  }
  if (timeCreatedMs !== undefined && timeValue !== undefined && timeValue !== null) {
    const parsed = typeof timeValue === 'string' ? parseRfc3339(timeValue) : null;
    if (parsed === null) {
      errors.push({
        field: timeField,
        reason: 'invalid_timestamp',
        message: `${timeField} must be an RFC 3339 date-time with offset, e.g. 2024-05-01T12:00:00Z`,
      });
      timeCreatedMs = undefined;
    } else if (parsed > nowMs + rules.maxFutureMs) {
      errors.push({
        field: timeField,
        reason: 'too_far_in_future',
        message: `${timeField} is more than ${formatDuration(rules.maxFutureMs)} in the future`,
      });
      timeCreatedMs = undefined;
    } else if (parsed < nowMs - rules.backfillWindowMs) {
      errors.push({
        field: timeField,
        reason: 'outside_backfill_window',
        message: `${timeField} is older than the backfill window of ${formatDuration(rules.backfillWindowMs)}`,
      });
      timeCreatedMs = undefined;
    } else {
      timeCreatedMs = parsed;
    }
  }
  const properties = validateProperties(raw.properties, errors);

  if (errors.length > 0 || eventName === undefined || customerId === undefined || timeCreatedMs === undefined || properties === undefined) {
    return { ok: false, errors };
  }
  return {
    ok: true,
    event: {
      eventName,
      customerId,
      ...(entityId !== undefined ? { entityId } : {}),
      idempotencyId: idempotencyId ?? randomUUID(),
      idempotencyIdGenerated: idempotencyId === undefined,
      timeCreatedMs,
      properties,
    },
  };
}

function formatDuration(ms: number): string {
  const day = 86_400_000;
  if (ms % day === 0) return `${ms / day} day${ms === day ? '' : 's'}`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

/** The request body forms accepted by POST /v1/events: one event, an array, or { batch: [...] }. */
export function eventsOfBody(body: unknown): { events: unknown[] } | { error: string } {
  if (Array.isArray(body)) return { events: body };
  if (isPlainObject(body)) {
    if ('batch' in body) {
      return Array.isArray(body.batch) ? { events: body.batch } : { error: '"batch" must be an array of events' };
    }
    return { events: [body] };
  }
  return { error: 'the body must be an event object, an array of events, or { "batch": [ ... ] }' };
}

export type { PropertyValue };
