// Shapes every API shares: the error envelope and limit/offset pages.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Nullable } from './schema.ts';
import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, PAGE_OFFSET_MAX } from './limits.ts';

/** Every 4xx/5xx: `{ error: { code, message, details? } }`. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'machine-readable, e.g. not_found, validation_error, conflict' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { description: 'error' },
);
export type ErrorResponse = Static<typeof ErrorResponse>;

/** Query properties of every list (spread into a route's querystring object). */
export const PaginationQuery = {
  limit: Type.Integer({ minimum: 1, maximum: PAGE_LIMIT_MAX, default: PAGE_LIMIT_DEFAULT }),
  offset: Type.Integer({ minimum: 0, maximum: PAGE_OFFSET_MAX, default: 0 }),
};
export interface PageParams {
  limit?: number;
  offset?: number;
}

export const PageFields = {
  limit: Type.Integer(),
  offset: Type.Integer(),
  has_more: Type.Boolean(),
  next_offset: Nullable(Type.Integer()),
};

/** `{ data: T[], limit, offset, has_more, next_offset }`. */
export const Page = <T extends TSchema>(item: T) => Type.Object({ data: Type.Array(item), ...PageFields });
export interface Page<T> {
  data: T[];
  limit: number;
  offset: number;
  has_more: boolean;
  next_offset: number | null;
}
