// Schema validation per HTTP part. Bodies are JSON: their types are checked, never coerced, so
// `"limit": null` stays null (= unlimited) and `"name": 5` is a 400 instead of the string "5".
// Query strings and path params are text on the wire: those are coerced to the schema's type
// ("50" -> 50, "true" -> true, `?x=1` -> ["1"] where an array is expected).
// Both ajv instances are configured like Fastify's own (ajv-formats for date-time etc., defaults applied,
// unknown properties refused by `additionalProperties: false` rather than silently removed).
import type { FastifyInstance, FastifySchema } from 'fastify';
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv;

const COMMON: Options = { removeAdditional: false, useDefaults: true, allErrors: false, allowUnionTypes: true };

export function createValidators() {
  const body = addFormats(new Ajv({ ...COMMON, coerceTypes: false }));
  const text = addFormats(new Ajv({ ...COMMON, coerceTypes: 'array' }));
  return { body, text };
}

/** Installs the per-part validator compiler on `app` (call before registering routes). */
export function installValidators(app: FastifyInstance): void {
  const { body, text } = createValidators();
  app.setValidatorCompiler(({ schema, httpPart }): ValidateFunction => {
    const ajv = httpPart === 'body' ? body : text;
    return ajv.compile(schema as FastifySchema & object);
  });
}
