// limit/offset pagination for every list: ?limit=1..200 (default 50)&offset=0..10^9 (default 0);
// responses carry { data, limit, offset, has_more, next_offset }. Stores fetch limit+1 rows to know
// has_more. The schemas are @meterline/contracts' PaginationQuery / Page.
import { PAGE_LIMIT_DEFAULT, type Page as PageOf, type PageParams } from '@meterline/contracts';

export interface Page {
  limit: number;
  offset: number;
}

/** The page a validated query asks for (its defaults are already applied by ajv; this is for the types). */
export function pageParams(q: PageParams): Page {
  return { limit: q.limit ?? PAGE_LIMIT_DEFAULT, offset: q.offset ?? 0 };
}

export function pageOf<T>(rows: T[], q: PageParams): PageOf<T> {
  const page = pageParams(q);
  const has_more = rows.length > page.limit;
  return {
    data: rows.slice(0, page.limit),
    limit: page.limit,
    offset: page.offset,
    has_more,
    next_offset: has_more ? page.offset + page.limit : null,
  };
}
