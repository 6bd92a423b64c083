// The invoice as a document a customer could receive: one self-contained HTML page (inline CSS, no
// external assets, no scripts; a Content-Security-Policy meta forbids both even if a value slipped
// through). Pure: the invoice row, its customer and the organization's name in, a string out.
// Every interpolated value goes through esc(): customer names, emails, descriptions and group values
// come from API users. Amounts are the API's decimal strings (invoiceJson / fromMinor), never floats.
import { fromMinor } from '../money.ts';
import { type InvoiceRow, invoiceJson } from './store.ts';

export interface DocumentCustomer {
  customer_id: string;
  name: string | null;
  email: string | null;
}

export interface InvoiceDocumentInput {
  invoice: InvoiceRow;
  customer: DocumentCustomer | null;
  organizationName: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** HTML-escapes text for element content and quoted attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** 2026-03-01 for a UTC midnight, 2026-03-01 14:05 UTC otherwise. */
export function formatInstant(iso: string | Date | null | undefined): string {
  if (!iso) return '';
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  if (Number.isNaN(d.getTime())) return String(iso);
  const s = d.toISOString();
  return s.endsWith('T00:00:00.000Z') ? s.slice(0, 10) : `${s.slice(0, 10)} ${s.slice(11, 16)} UTC`;
}

const period = (start: string | Date | undefined, end: string | Date | undefined) =>
  start && end ? `${formatInstant(start)} – ${formatInstant(end)}` : '';

const REASONS: Record<string, string> = {
  subscription_start: 'Subscription start',
  period_close: 'Billing period',
  plan_change: 'Plan change',
  plan_change_usage: 'Usage before a plan change',
  cancel: 'Cancellation',
  cancel_credit: 'Cancellation credit',
  usage_adjustment: 'Late usage adjustment',
};

const STYLE = `
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:14px/1.45 "DejaVu Sans","Helvetica Neue",Arial,sans-serif}
.page{position:relative;overflow:hidden;max-width:820px;margin:24px auto;background:#fff;padding:40px 48px;border:1px solid #e5e7eb}
header{display:flex;justify-content:space-between;align-items:flex-start;border-bottom:2px solid #111827;padding-bottom:16px}
.org{font-size:20px;font-weight:700}
h1{margin:0;font-size:22px;text-align:right}
.status{text-align:right;color:#4b5563;margin-top:4px}
.meta{display:flex;justify-content:space-between;gap:24px;margin:24px 0}
.meta h2{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#6b7280;margin:0 0 4px}
.meta dl{margin:0;display:grid;grid-template-columns:auto auto;gap:2px 12px}
.meta dt{color:#6b7280;white-space:nowrap}.meta dd{margin:0}
table{width:100%;border-collapse:collapse;margin-top:8px}
th{text-align:left;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#6b7280;border-bottom:1px solid #d1d5db;padding:6px 8px}
td{border-bottom:1px solid #f3f4f6;padding:8px;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.kind{display:block;color:#6b7280;font-size:12px}
.totals{margin:16px 0 0 auto;width:320px}
.totals td{border:0;padding:4px 8px}
.totals tr.due td{font-weight:700;font-size:16px;border-top:2px solid #111827}
.note{margin-top:32px;color:#6b7280;font-size:12px}
.stamp{position:absolute;top:38%;left:0;right:0;text-align:center;font-size:120px;font-weight:800;letter-spacing:.1em;transform:rotate(-24deg);opacity:.16;pointer-events:none}
.stamp.void{color:#b91c1c}.stamp.paid{color:#15803d}
.draft h1{color:#92400e}
`;

/** The invoice as a self-contained HTML document. */
export function renderInvoiceDocument({ invoice, customer, organizationName }: InvoiceDocumentInput): string {
  const inv = invoiceJson(invoice);
  const cur = inv.currency;
  const draft = inv.status === 'draft';
  const title = draft ? 'Draft invoice' : `Invoice ${inv.number ?? ''}`.trim();
  const due = inv.status === 'finalized' || draft ? inv.total : fromMinor(0, cur);
  const statusLine: Record<string, string> = {
    draft: inv.grace_until
      ? `Draft: not yet issued; usage may still change until ${formatInstant(inv.grace_until)}`
      : 'Draft: not yet issued',
    finalized: 'Issued, payment due',
    paid: `Paid ${formatInstant(inv.paid_at)}`,
    void: `Void ${formatInstant(inv.voided_at)}: nothing is owed`,
    uncollectible: 'Marked uncollectible',
  };
  const stamp = inv.status === 'void' ? 'VOID' : inv.status === 'paid' ? 'PAID' : null;

  const rows = inv.line_items
    .map((l) => {
      const line = l as (typeof inv.line_items)[number] & { group?: Record<string, string>; period_start?: string; period_end?: string };
      const group = line.group && Object.keys(line.group).length ? Object.entries(line.group).map(([k, v]) => `${k}: ${v}`) : [];
      const version = typeof line.metric_version === 'number' ? [`${line.metric_id ?? 'metric'} v${line.metric_version}`] : [];
      const detail = [line.kind.replaceAll('_', ' '), ...group, ...version].join(' · ');
      return `<tr>
<td>${esc(line.description)}<span class="kind">${esc(detail)}</span></td>
<td>${esc(period(line.period_start ?? inv.period_start, line.period_end ?? inv.period_end))}</td>
<td class="num">${esc(line.quantity)}</td>
<td class="num">${esc(line.amount_due)}</td>
</tr>`;
    })
    .join('\n');

  const customerRows = [
    ['Customer ID', customer?.customer_id ?? inv.customer_id],
    ['Name', customer?.name],
    ['Email', customer?.email],
  ]
    .filter(([, v]) => v)
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
    .join('');
  const invoiceRows = [
    ['Number', inv.number ?? 'not yet assigned'],
    ['Issue date', inv.finalized_at ? formatInstant(inv.finalized_at) : 'not yet issued'],
    ['Period', period(inv.period_start, inv.period_end)],
    ['Type', REASONS[inv.reason] ?? inv.reason],
    ['Currency', cur],
  ]
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
    .join('');

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${title} · ${organizationName}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<main class="page${draft ? ' draft' : ''}">
${stamp ? `<div class="stamp ${esc(stamp.toLowerCase())}">${esc(stamp)}</div>` : ''}
<header>
<div class="org">${esc(organizationName)}</div>
<div><h1>${esc(title)}</h1><div class="status">${esc(statusLine[inv.status] ?? inv.status)}</div></div>
</header>
<section class="meta">
<div><h2>Bill to</h2><dl>${customerRows}</dl></div>
<div><h2>Invoice</h2><dl>${invoiceRows}</dl></div>
</section>
<table>
<thead><tr><th>Description</th><th>Period</th><th class="num">Quantity</th><th class="num">Amount (${esc(cur)})</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="4">No charges</td></tr>'}
</tbody>
</table>
<table class="totals">
<tr><td>Total</td><td class="num">${esc(inv.total)} ${esc(cur)}</td></tr>
<tr class="due"><td>Amount due</td><td class="num">${esc(due)} ${esc(cur)}</td></tr>
</table>
<p class="note">Invoice ID ${esc(inv.invoice_id)}${inv.subscription_id ? ` · Subscription ${esc(inv.subscription_id)}` : ''}. Amounts in ${esc(cur)}.</p>
</main>
</body>
</html>
`;
}
