// CSV (RFC 4180) for the exports (GET /v1/usage?format=csv, GET /v1/invoices/export.csv): CRLF line
// ends, a header row, fields quoted when they hold a comma, a double quote, CR or LF (quotes doubled),
// or start/end with a space. Numbers are written by the callers as decimal strings, never floats.
// Formula injection (OWASP "CSV injection"): customer names, descriptions and group values come from
// users and their events; a text cell starting with = + - @ TAB or CR would run as a formula when finance
// opens the file in a spreadsheet, so such a cell gets a leading apostrophe. Numbers are never altered:
// a decimal string such as "-1.00" or "+2" is written as it is.
import type { FastifyReply, FastifyRequest } from 'fastify';

export type CsvValue = string | number | bigint | boolean | null | undefined;

const FORMULA_START = /^[=+\-@\t\r]/;
const DECIMAL = /^[+-]?\d+(\.\d+)?$/;

export function csvField(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v === 'string' && FORMULA_START.test(s) && !DECIMAL.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export const csvRow = (fields: readonly CsvValue[]) => `${fields.map(csvField).join(',')}\r\n`;

/**
 * Whether a request asks for CSV: `format=csv` (wins; `format=json` forces JSON), else an Accept header
 * that ranks text/csv above application/json (q values; an Accept without text/csv, or `*\/*`, is JSON).
 */
export function wantsCsv(req: FastifyRequest, format: string | undefined): boolean {
  if (format) return format === 'csv';
  const accept = req.headers.accept;
  if (!accept) return false;
  let csv = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === 'text/csv') csv = Math.max(csv, q);
    else if (type === 'application/json') json = Math.max(json, q);
  }
  return csv > 0 && csv > json;
}

/** A file name made of [A-Za-z0-9._-] only (ids may hold : @ and anything a query string carries). */
export const safeFileName = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 180);

export function csvHeaders(reply: FastifyReply, fileName: string): FastifyReply {
  return reply
    .type('text/csv; charset=utf-8; header=present')
    .header('content-disposition', `attachment; filename="${safeFileName(fileName)}"`)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-store');
}
