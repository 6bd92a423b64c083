// Customer search (GET /v1/customer_search): the console's and any back office's "find a customer" box.
// A path of its own: /v1/customers/search would shadow a customer whose id is "search".
import { Type, type Static } from '@sinclair/typebox';
import { PaginationQuery } from './common.ts';

export const CUSTOMER_SEARCH_MAX_LENGTH = 200;

export const CustomerSearchQuery = Type.Object(
  {
    q: Type.String({
      minLength: 1,
      maxLength: CUSTOMER_SEARCH_MAX_LENGTH,
      description:
        'case-insensitive text matched anywhere in customer_id, name or email (% and _ are literal); exact id first, then id/name/email prefixes, then other matches',
    }),
    include_archived: Type.Optional(Type.Boolean({ default: false })),
    ...PaginationQuery,
  },
  { additionalProperties: false },
);
export type CustomerSearchParams = Static<typeof CustomerSearchQuery>;
