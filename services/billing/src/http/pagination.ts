// limit/offset pagination for every list: ?limit=1..200 (default 50)&offset=0..; responses carry
// { data, limit, offset, has_more, next_offset }. Stores fetch limit+1 rows to know has_more.
export const PAGINATION_QUERY = {
  limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
  offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
} as const;

export interface Page { limit: number; offset: number }

export function pageOf<T>(rows: T[], page: Page) {
  const has_more = rows.length > page.limit;
  return { data: rows.slice(0, page.limit), limit: page.limit, offset: page.offset, has_more, next_offset: has_more ? page.offset + page.limit : null };
}

export function listResponse(item: object) {
  return {
    type: 'object',
    properties: {
      data: { type: 'array', items: item },
      limit: { type: 'integer' },
      offset: { type: 'integer' },
      has_more: { type: 'boolean' },
      next_offset: { type: ['integer', 'null'] },
    },
  };
}
