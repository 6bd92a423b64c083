// Schema validation per HTTP part. Bodies are JSON: their types are checked, never coerced, so
// `"limit": null` stays null (= unlimited) and `"name": 5` is a 400 instead of the string "5".
// Query strings and path params are text on the wire: those are coerced to the schema's type
// ("50" -> 50, "true" -> true, `?x=1` -> ["1"] where an array is expected).
// Both ajv instances are configured like Fastify's own (ajv-formats for date-time etc., defaults applied,
// unknown properties refused by `additionalProperties: false` rather than silently removed).
// Before ajv runs, every part goes through http/friendly.ts (dates YYYY-MM-DD, camelCase keys, enum
// case, unknown fields named with a suggestion); ajv's own errors get the same friendly messages.
// An empty or absent body is `{}` when the schema accepts `{}` (e.g. POST …/cancel with no body).
import type { FastifyInstance, FastifySchema } from 'fastify';
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { normalizeInput, unknownFieldMessage } from './friendly.ts';

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv;

// verbose: errors carry their parentSchema (the allowed properties of an unknown field's object)
const COMMON: Options = { removeAdditional: false, useDefaults: true, allErrors: false, allowUnionTypes: true, verbose: true };

export function createValidators() {
  const body = addFormats(new Ajv({ ...COMMON, coerceTypes: false }));
  const text = addFormats(new Ajv({ ...COMMON, coerceTypes: 'array' }));
  return { body, text };
}

const DATE_TIME_MESSAGE = 'must be a date-time (RFC 3339, e.g. "2026-01-01T00:00:00Z") or a date ("2026-01-01" = 00:00 UTC that day)';

/** ajv's messages, made to name what is allowed (unknown fields, formats, enums). */
export function friendlyErrors(errors: ErrorObject[]): ErrorObject[] {
  return errors.map((e) => {
    if (e.keyword === 'additionalProperties') {
      const field = String((e.params as { additionalProperty?: unknown }).additionalProperty);
      const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
      return { ...e, message: unknownFieldMessage(field, Object.keys(props ?? {})) };
    }
    if (e.keyword === 'format' && (e.params as { format?: string }).format === 'date-time') return { ...e, message: DATE_TIME_MESSAGE };
    if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues ?? [];
      return { ...e, message: `must be one of: ${allowed.map((a) => JSON.stringify(a)).join(', ')}` };
    }
    return e;
  });
}

type PartValidator = ((data: unknown, ctx?: unknown) => boolean | { value: unknown }) & {
  errors?: ErrorObject[] | null;
  schemaEnv?: unknown;
};

/** ajv's validator for one part, with http/friendly.ts in front and friendly messages behind. */
export function friendlyValidator(ajv: Ajv, schema: object, httpPart: string | undefined): PartValidator {
  const check: ValidateFunction = ajv.compile(schema);
  const wantsObject = (schema as { type?: unknown }).type === 'object';
  const run: PartValidator = (data, ctx) => {
    run.errors = null;
    if (data === null && httpPart === 'body' && wantsObject) {
      const empty = {};
      if (check(empty)) return { value: empty };
    }
    const { value, errors } = normalizeInput(schema as Record<string, unknown>, data);
    if (errors.length > 0) {
      run.errors = errors as ErrorObject[];
      return false;
    }
    const ok = ctx === undefined ? check(value) : (check as (d: unknown, c: unknown) => boolean)(value, ctx);
    if (!ok) {
      run.errors = friendlyErrors(check.errors ?? []);
      return false;
    }
    return value === data ? true : { value };
  };
  return run;
}

/** Installs the per-part validator compiler on `app` (call before registering routes). */
export function installValidators(app: FastifyInstance): void {
  const { body, text } = createValidators();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    friendlyValidator(httpPart === 'body' ? body : text, schema as FastifySchema & object, httpPart),
  );
  // an empty body with Content-Type: application/json is no body (then `{}` where the schema allows it)
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, raw, done) => {
    const s = raw as string;
    if (s.trim().length === 0) return done(null, undefined);
    return json(req, s, done);
  });
}
