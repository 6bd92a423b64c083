// Small TypeBox helpers that keep the JSON Schema exactly as the services have always written it
// (`type: ['string', 'null']`, `enum: [...]`) while giving precise Static<> types.
import { Type, type SchemaOptions, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';

/** `{ type: [T's type, 'null'], ...T's keywords }`: the same JSON Schema as before, typed `Static<T> | null`. */
export function Nullable<T extends TSchema>(schema: T, options: SchemaOptions = {}): TUnsafe<Static<T> | null> {
  const { type, ...rest } = schema as unknown as { type?: string | string[] } & Record<string, unknown>;
  if (typeof type !== 'string') throw new TypeError('Nullable needs a schema with a single `type`');
  const nullableEnum = Array.isArray(rest.enum) ? { enum: [...(rest.enum as unknown[]), null] } : {};
  return Type.Unsafe<Static<T> | null>({ ...rest, ...nullableEnum, ...options, type: [type, 'null'] });
}

/** `{ type: 'string', enum: values }` typed as the union of the values. */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

/** A free-form JSON object (`additionalProperties: true`), typed as V (default Record<string, unknown>). */
export function FreeObject<V = Record<string, unknown>>(options: SchemaOptions = {}): TUnsafe<V> {
  return Type.Unsafe<V>({ ...options, type: 'object', additionalProperties: true });
}
