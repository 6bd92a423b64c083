// Invoice export: GET /v1/invoices/export.csv (also GET /v1/invoices?format=csv or with Accept: text/csv).
// One CSV row per invoice line (an invoice without lines gets one row with empty line fields), with the
// invoice's id, number, status, reason, customer (id and name), subscription, currency, period and total.
// Filters are the list's: customer_id, subscription_id, status, created_from/created_to (created_at in
// [from, to)), period_from/period_to (period_start in [from, to)); limit/offset do not apply: every
// matching invoice is exported.
//
// Streamed: invoices are read in keyset pages of PAGE_SIZE in invoice_id order (the primary key
// (organization_id, invoice_id): every page is an index range scan, so an export is linear in its size;
// a (created_at, invoice_id) keyset had no index and re-sorted the organization's invoices per page),
// each a short query of its own (no transaction or connection is held while the client downloads), and
// each page is written out before the next is read, pulled by the response stream (backpressure): memory
// is one page whatever the export's size. Each invoice appears once (ids never change); one created during
// an export appears when its id sorts after the export's position. Status is as read by its page.
// Scoped to the API key's organization (organization_id in every query). Money: decimal strings
// (fromMinor of the stored minor units, and the line's exact amount), never floats.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ErrorResponse, ListInvoicesQuery } from '@meterline/contracts';
import type { PgPool } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { badRequest } from '../http/errors.ts';
import { typed } from '../http/typed.ts';
import { Decimal, fromMinor } from '../money.ts';
import type { InvoiceLine, InvoiceRow, InvoiceStatus } from '../invoices/store.ts';
import { csvHeaders, csvRow } from './csv.ts';

export const PAGE_SIZE = 500;

export interface InvoiceExportFilter {
  customer_id?: string;
  subscription_id?: string;
  status?: InvoiceStatus;
  created_from?: string;
  created_to?: string;
  period_from?: string;
  period_to?: string;
}

export const INVOICE_CSV_COLUMNS = [
  'invoice_id',
  'number',
  'status',
  'reason',
  'customer_id',
  'customer_name',
  'subscription_id',
  'currency',
  'invoice_period_start',
  'invoice_period_end',
  'invoice_total',
  'created_at',
  'finalized_at',
  'line_index',
  'line_kind',
  'description',
  'metric_id',
  'metric_version',
  'group',
  'line_period_start',
  'line_period_end',
  'quantity',
  'unit_amount',
  'amount',
  'amount_exact',
] as const;

type ExportRow = Pick<
  InvoiceRow,
  | 'invoice_id'
  | 'number'
  | 'status'
  | 'reason'
  | 'customer_id'
  | 'subscription_id'
  | 'currency'
  | 'period_start'
  | 'period_end'
  | 'total_minor'
  | 'line_items'
  | 'created_at'
  | 'finalized_at'
> & { customer_name: string | null };

/** A date-time filter as a Date (400 when it is not one). */
function instant(name: string, v: string | undefined): Date | null {
  if (v === undefined) return null;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw badRequest(`${name} must be a date-time`);
  return d;
}

export function exportFilter(q: InvoiceExportFilter) {
  return {
    customer_id: q.customer_id ?? null,
    subscription_id: q.subscription_id ?? null,
    status: q.status ?? null,
    created_from: instant('created_from', q.created_from),
    created_to: instant('created_to', q.created_to),
    period_from: instant('period_from', q.period_from),
    period_to: instant('period_to', q.period_to),
  };
}

/** One keyset page after invoice id `after`: a range scan of the primary key (organization_id, invoice_id). */
async function page(pool: PgPool, orgId: string, f: ReturnType<typeof exportFilter>, after: string | null, pageSize: number) {
  const { rows } = await pool.query<ExportRow>(
    `SELECT i.invoice_id, i.number, i.status, i.reason, i.customer_id, c.name AS customer_name, i.subscription_id, i.currency,
            i.period_start, i.period_end, i.total_minor::text AS total_minor, i.line_items, i.created_at, i.finalized_at
       FROM invoices i
       LEFT JOIN customers c ON c.organization_id = i.organization_id AND c.customer_id = i.customer_id
      WHERE i.organization_id = $1
        AND ($2::text IS NULL OR i.customer_id = $2) AND ($3::text IS NULL OR i.subscription_id = $3) AND ($4::text IS NULL OR i.status = $4)
        AND ($5::timestamptz IS NULL OR i.created_at >= $5) AND ($6::timestamptz IS NULL OR i.created_at < $6)
        AND ($7::timestamptz IS NULL OR i.period_start >= $7) AND ($8::timestamptz IS NULL OR i.period_start < $8)
        AND ($9::text IS NULL OR i.invoice_id > $9)
      ORDER BY i.invoice_id
      LIMIT $10`,
    [orgId, f.customer_id, f.subscription_id, f.status, f.created_from, f.created_to, f.period_from, f.period_to, after, pageSize],
  );
  return rows;
}

const iso = (d: Date | null) => d?.toISOString() ?? '';

/** amount / quantity (12 decimals, half-even); empty when the quantity is 0 or not a number. */
function unitAmount(l: InvoiceLine): string {
  try {
    const q = new Decimal(l.quantity);
    if (q.isZero()) return '';
    return new Decimal(l.amount).div(q).toDecimalPlaces(12).toFixed();
  } catch {
    return '';
  }
}

/** The CSV rows of one invoice. */
export function invoiceCsvRows(inv: ExportRow): string {
  const cur = inv.currency.trim();
  const head = [
    inv.invoice_id,
    inv.number,
    inv.status,
    inv.reason,
    inv.customer_id,
    inv.customer_name,
    inv.subscription_id,
    cur,
    iso(inv.period_start),
    iso(inv.period_end),
    fromMinor(inv.total_minor, cur),
    iso(inv.created_at),
    iso(inv.finalized_at),
  ];
  if (inv.line_items.length === 0) return csvRow([...head, '', '', '', '', '', '', '', '', '', '', '', '']);
  return inv.line_items
    .map((raw, i) => {
      const l = raw as InvoiceLine & { period_start?: string; period_end?: string };
      const group = l.group && Object.keys(l.group).length ? JSON.stringify(l.group) : '';
      const usage = l.kind === 'usage' || l.kind === 'usage_adjustment';
      return csvRow([
        ...head,
        i,
        l.kind,
        l.description,
        l.metric_id ?? '',
        usage ? (l.metric_version ?? '') : '',
        group,
        l.period_start ?? iso(inv.period_start),
        l.period_end ?? iso(inv.period_end),
        l.quantity,
        unitAmount(l),
        fromMinor(l.amount_minor, cur),
        l.amount,
      ]);
    })
    .join('');
}

/** The export as a stream of CSV text: the header, then page after page as the consumer reads. */
export function invoiceCsvStream(
  pool: PgPool,
  orgId: string,
  q: InvoiceExportFilter,
  onError: (err: unknown) => void,
  pageSize = PAGE_SIZE,
): Readable {
  const f = exportFilter(q);
  async function* rows() {
    yield csvRow(INVOICE_CSV_COLUMNS);
    let after: string | null = null;
    for (;;) {
      let got: ExportRow[];
      try {
        got = await page(pool, orgId, f, after, pageSize);
      } catch (err) {
        onError(err);
        throw err;
      }
      if (got.length === 0) return;
      yield got.map(invoiceCsvRows).join('');
      if (got.length < pageSize) return;
      after = got[got.length - 1]!.invoice_id;
    }
  }
  return Readable.from(rows(), { objectMode: false });
}

export const invoiceCsvFileName = (orgId: string, now: Date) => `invoices-${orgId}-${now.toISOString().slice(0, 10)}.csv`;

/** Sends the export (filters validated first: a bad filter is a JSON 400, not a broken download). */
export function sendInvoiceCsv(deps: Deps, orgId: string, q: InvoiceExportFilter, reply: FastifyReply): FastifyReply {
  exportFilter(q);
  const stream = invoiceCsvStream(deps.pool, orgId, q, (err) => deps.logger.error({ err, organization: orgId }, 'invoice export failed'));
  return csvHeaders(reply, invoiceCsvFileName(orgId, deps.now())).send(stream as never);
}

export async function invoiceExportRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.get(
    '/v1/invoices/export.csv',
    {
      schema: {
        summary:
          'Invoices as CSV, one row per line (streamed; filters: customer_id, subscription_id, status, created_from/to, period_from/to; limit/offset ignored)',
        tags: ['invoices'],
        querystring: ListInvoicesQuery,
        response: {
          200: { description: 'text/csv; charset=utf-8', content: { 'text/csv': { schema: { type: 'string' } } } },
          400: ErrorResponse,
        },
      },
    },
    async (req, reply) => sendInvoiceCsv(deps, req.orgId, req.query, reply),
  );
}
