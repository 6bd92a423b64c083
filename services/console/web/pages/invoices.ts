// Invoices: the list with status (GET /v1/invoices, filter by status) and one invoice: its lines and the
// invoice document (GET /v1/invoices/:id/document, HTML fetched with the key and shown in a sandboxed
// iframe: no scripts, no navigation, nothing it contains can reach the console's session).
import { html } from 'htm/preact';
import type { Invoice } from '@meterline/contracts';
import { api, seg, type Page } from '../api.ts';
import { day, money, when } from '../format.ts';
import { navigate, useLoad } from '../hooks.ts';
import { Badge, Loading, Problem } from '../ui.ts';
import { InvoiceRows } from './customers.ts';

const STATUSES = ['draft', 'finalized', 'paid', 'void', 'uncollectible'];
const PAGE = 50;

export function InvoicesPage({ params }: { params: URLSearchParams }) {
  const status = params.get('status') ?? '';
  const offset = Number(params.get('offset') ?? 0) || 0;
  const list = useLoad(() => api.get<Page<Invoice>>('/v1/invoices', { status, limit: PAGE, offset }), [status, offset]);
  const go = (s: string, o = 0) =>
    navigate(`/invoices?${new URLSearchParams({ ...(s ? { status: s } : {}), ...(o ? { offset: String(o) } : {}) })}`);
  return html`<section>
    <h1>Invoices</h1>
    <form class="filters" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Status
        <select name="status" value=${status} onChange=${(e: Event) => go((e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
    </form>
    ${list.error ? html`<${Problem} error=${list.error} />` : null}
    ${list.data ? html`<${InvoiceRows} invoices=${list.data.data} showCustomer=${true} />` : html`<${Loading} />`}
    <div class="pager">
      ${offset > 0 ? html`<button onClick=${() => go(status, Math.max(0, offset - PAGE))}>← Previous</button>` : null}
      ${list.data?.has_more ? html`<button onClick=${() => go(status, offset + PAGE)}>Next →</button>` : null}
    </div>
  </section>`;
}

export function InvoicePage({ id }: { id: string }) {
  const inv = useLoad(() => api.get<Invoice>(`/v1/invoices/${seg(id)}`), [id]);
  const doc = useLoad(() => api.getText(`/v1/invoices/${seg(id)}/document`, 'text/html'), [id]);
  if (inv.error) return html`<${Problem} error=${inv.error} />`;
  const i = inv.data;
  if (!i) return html`<${Loading} />`;
  return html`<section>
    <p class="crumbs"><a href="#/invoices">Invoices</a> /</p>
    <h1 data-testid="invoice-title">${i.number ? `Invoice ${i.number}` : 'Draft invoice'} <${Badge} status=${i.status} /></h1>
    <dl class="facts">
      <div><dt>Customer</dt><dd><a href=${`#/customers/${seg(i.customer_id)}`}>${i.customer_id}</a></dd></div>
      <div><dt>Period</dt><dd>${day(i.period_start)} – ${day(i.period_end)}</dd></div>
      <div><dt>Total</dt><dd data-testid="invoice-total">${money(i.total, i.currency)}</dd></div>
      <div><dt>Finalized</dt><dd>${when(i.finalized_at)}</dd></div>
      <div><dt>Paid</dt><dd>${when(i.paid_at)}</dd></div>
    </dl>
    <h2>Document</h2>
    ${doc.error ? html`<${Problem} error=${doc.error} />` : null}
    ${doc.data ? html`<iframe class="document" sandbox="" title="Invoice document" srcdoc=${doc.data} data-testid="invoice-document"></iframe>` : null}
  </section>`;
}
