// Input guards: the ONE place that checks every text, object key, number and date a client sends
// (body, path params, query string) before anything reaches Postgres, Redis, Kafka or ClickHouse.
// Registered on the root app (installInputGuards), so every route inherits it; a route's JSON
// schema then checks shapes and per-field ranges (see INPUT_LIMITS and money.ts for amounts).
//
//   - every string and object key: well-formed Unicode (no unpaired UTF-16 surrogate, which Postgres
//     and UTF-8 encoders cannot store) and no NUL (Postgres text/jsonb cannot hold U+0000);
//   - identifiers (path params, `*_id` fields, event/feature names, metric property names, event
//     property keys): additionally no C0/C1 control characters or DEL, at most 255 characters;
//   - numbers: finite (JSON `1e309` parses to Infinity; ajv's coerceTypes turns the string "Infinity"
//     into Infinity), not subnormal (5e-324: ClickHouse 18.16 cannot parse it, see core's isSqlNumber),
//     checked again after schema coercion (preHandler);
//   - dates (`start_date`, `end_date`, `from`, `to`, `effective_at`, `expires_at`, `as_of`, `redeem_by`;
//     camelCase spellings too): parseable and within 1970-01-01..2100-01-01
//     (ClickHouse DateTime and the period arithmetic);
//   - nesting at most 32 levels (Postgres jsonb and our own walkers stay far from their stack limits).
// A violation is a 400 `validation_error` whose message names the field, e.g.
// `body/metadata/k contains an unpaired UTF-16 surrogate (not valid Unicode text)`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EVENT_LIMITS, identifierProblem, MIN_NORMAL_NUMBER, TEXT_PROBLEM_MESSAGE, textValueProblem } from '@meterline/core';
import { ApiError } from './errors.ts';
import { snakeCase } from './friendly.ts';

export const INPUT_LIMITS = {
  identifierMaxLength: 255,
  maxDepth: 32,
  minTimeMs: 0,
  /** 2100-01-01T00:00:00Z, inside ClickHouse DateTime's range (…2106-02-07): the event contract's bound. */
  maxTimeMs: EVENT_LIMITS.maxTimeMs,
} as const;

const IDENTIFIER_KEYS = new Set(['event_name', 'feature_name', 'property', 'group_by']);
const DATE_KEYS = new Set(['start_date', 'end_date', 'from', 'to', 'effective_at', 'expires_at', 'as_of', 'redeem_by']);

type Where = 'body' | 'params' | 'querystring';

/** JSON-pointer-like path segment; keys that are themselves invalid are shown JSON-escaped. */
function seg(key: string): string {
  const safe = identifierProblem(key) === null && key.length <= 80;
  return safe ? key.replace(/~/g, '~0').replace(/\//g, '~1') : JSON.stringify(key.slice(0, 80)).slice(1, -1);
}

// The text rules are core's event contract (the gateway's too); only the messages are billing's.
function textProblem(s: string, identifier: boolean): string | null {
  const value = textValueProblem(s);
  if (value === 'invalid_unicode') return TEXT_PROBLEM_MESSAGE.invalid_unicode;
  if (value === 'invalid_characters') return 'contains a NUL character';
  if (identifier) {
    if (identifierProblem(s)) return TEXT_PROBLEM_MESSAGE.invalid_characters;
    if (s.length > INPUT_LIMITS.identifierMaxLength)
      return `is too long (an identifier has at most ${INPUT_LIMITS.identifierMaxLength} characters)`;
  }
  return null;
}

// by the snake_case form: camelCase keys are read as their snake_case property (http/friendly.ts)
const isIdentifierKey = (key: string) => {
  const k = snakeCase(key);
  return k.endsWith('_id') || IDENTIFIER_KEYS.has(k);
};

function dateProblem(s: string): string | null {
  const t = Date.parse(s);
  if (!Number.isFinite(t)) return 'is not a valid date-time';
  if (t < INPUT_LIMITS.minTimeMs || t >= INPUT_LIMITS.maxTimeMs)
    return 'is out of range (1970-01-01T00:00:00Z ≤ date < 2100-01-01T00:00:00Z)';
  return null;
}

export interface InputProblem {
  path: string;
  message: string;
}

/**
 * The first problem of a request part (`{ path, message }`), or null. Identifier rules apply to path
 * params, query keys, `*_id` fields and IDENTIFIER_KEYS; inside `metadata` and event `properties`
 * values are free text (property keys are identifiers, as in the gateway's event contract).
 * Iterative on purpose: a deeply nested body must not overflow the stack.
 */
export function inputProblem(root: unknown, where: Where, opts: { numbersOnly?: boolean } = {}): InputProblem | null {
  type Item = { v: unknown; path: string; key: string | null; identifier: boolean; depth: number; free: 'metadata' | 'properties' | null };
  const stack: Item[] = [{ v: root, path: where, key: null, identifier: where === 'params', depth: 0, free: null }];
  while (stack.length) {
    const { v, path, key, identifier, depth, free } = stack.pop()!;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path, message: 'must be a finite number' };
      if (v !== 0 && Math.abs(v) < MIN_NORMAL_NUMBER)
        return { path, message: 'is too close to 0 (subnormal numbers are not accepted: use 0 or |x| >= 2.2250738585072014e-308)' };
      continue;
    }
    if (typeof v === 'string') {
      if (opts.numbersOnly) continue;
      const p = textProblem(v, identifier);
      if (p) return { path, message: p };
      if (key !== null && free === null && DATE_KEYS.has(snakeCase(key)) && where !== 'params') {
        const d = dateProblem(v);
        if (d) return { path, message: d };
      }
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= INPUT_LIMITS.maxDepth) return { path, message: `is nested too deeply (at most ${INPUT_LIMITS.maxDepth} levels)` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}/${i}`, key, identifier, depth: depth + 1, free });
      continue;
    }
    const entries = Object.entries(v as Record<string, unknown>);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, child] = entries[i]!;
      const childPath = `${path}/${seg(k)}`;
      const childFree = free ?? (where === 'body' && depth === 0 && (k === 'metadata' || k === 'properties') ? k : null);
      if (!opts.numbersOnly) {
        const keyIsId = where !== 'body' || (free === 'properties' && depth === 1);
        const kp = textProblem(k, keyIsId);
        if (kp) return { path: childPath, message: `(key) ${kp}` };
      }
      const childIsId = childFree === null && (where === 'params' || isIdentifierKey(k));
      stack.push({ v: child, path: childPath, key: k, identifier: childIsId, depth: depth + 1, free: childFree });
    }
  }
  return null;
}

function guard(numbersOnly: boolean) {
  return async (req: FastifyRequest): Promise<void> => {
    const parts = [
      ['params', req.params],
      ['querystring', req.query],
      ['body', req.body],
    ] as const;
    // after validation only the coerced parts can hold new numbers: bodies are validated without
    // coercion (http/validation.ts), so they are walked once
    for (const [where, value] of numbersOnly ? parts.slice(0, 2) : parts) {
      const p = inputProblem(value, where, { numbersOnly });
      if (p)
        throw new ApiError(400, 'validation_error', `${p.path} ${p.message}`, [
          { field: p.path.slice(where.length + 1), reason: 'invalid_input', path: p.path, message: p.message },
        ]);
    }
  };
}

/**
 * Registers the guards on the root instance (before the routes): text/keys/ids/dates/numbers before
 * schema validation, and the numbers of params and query strings once more after ajv's type coercion.
 */
export function installInputGuards(app: FastifyInstance): void {
  app.addHook('preValidation', guard(false));
  app.addHook('preHandler', guard(true));
}
