// GET /v1/customer_search?q=: find an organization's customers by id, name or email. Read-only, one
// parameterized query scoped by organization_id. The text is matched literally (LIKE's % _ \ escaped),
// case-insensitively, anywhere in the three columns; ranking puts the exact id first, then prefixes of
// id / name / email, then the rest, so typing a known id finds it at once among thousands of matches.
// Cost: a scan of the organization's customers (organization_id index), fine for an interactive box;
// a trigram index is the next step for organizations with millions of customers.
import type { FastifyInstance } from 'fastify';
import { Customer, CustomerSearchQuery, ErrorResponse, Page } from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import { customerJson } from './store.ts';

/** The text as a LIKE pattern that matches it literally anywhere (ESCAPE '\'). */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export async function customerSearchRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/customer_search',
    {
      schema: {
        summary: 'Search customers by id, name or email (case-insensitive substring; exact id first, then prefixes)',
        tags: ['customers'],
        querystring: CustomerSearchQuery,
        response: { 200: Page(Customer), 400: ErrorResponse },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageParams(q);
      const text = q.q.toLowerCase();
      const { rows } = await deps.pool.query(
        `SELECT customer_id, name, email, currency, balance_minor, metadata, created_at, updated_at, archived_at
           FROM customers
          WHERE organization_id = $1 AND ($2::boolean OR archived_at IS NULL)
            AND (lower(customer_id) LIKE $3 ESCAPE '\\' OR lower(coalesce(name, '')) LIKE $3 ESCAPE '\\' OR lower(coalesce(email, '')) LIKE $3 ESCAPE '\\')
          ORDER BY CASE WHEN lower(customer_id) = $4 THEN 0
                        WHEN starts_with(lower(customer_id), $4) OR starts_with(lower(coalesce(name, '')), $4) OR starts_with(lower(coalesce(email, '')), $4) THEN 1
                        ELSE 2 END,
                   customer_id
          LIMIT $5 OFFSET $6`,
        [req.orgId, q.include_archived ?? false, containsPattern(text), text, page.limit + 1, page.offset],
      );
      return pageOf(rows.map(customerJson), q);
    },
  );
}
