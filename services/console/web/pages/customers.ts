// Customers: the list (GET /v1/customers) and search (GET /v1/customer_search?q=), and a customer's page:
// subscriptions, entitlements as usage-vs-limit bars, a usage chart per metric (GET /v1/usage per hour or
// day), credits and invoices. Every number shown is the API's, unchanged.
import { html } from 'htm/preact';
import { useMemo, useState } from 'preact/hooks';
import type { CreditGrant, Customer, CustomerDetail, Entitlement, Invoice, Metric, Subscription, UsageSeries } from '@meterline/contracts';
import { api, seg, type Page } from '../api.ts';
import { day, money, qty, when } from '../format.ts';
import { navigate, useLoad } from '../hooks.ts';
import { Badge, Loading, Problem, UsageBar, UsageChart } from '../ui.ts';

const PAGE = 50;

export function CustomersPage({ params }: { params: URLSearchParams }) {
  const q = params.get('q') ?? '';
  const offset = Number(params.get('offset') ?? 0) || 0;
  const [text, setText] = useState(q);
  const list = useLoad(
    () =>
      q
        ? api.get<Page<Customer>>('/v1/customer_search', { q, limit: PAGE, offset })
        : api.get<Page<Customer>>('/v1/customers', { limit: PAGE, offset }),
    [q, offset],
  );
  const go = (next: { q?: string; offset?: number }) => {
    const p = new URLSearchParams();
    if (next.q) p.set('q', next.q);
    if (next.offset) p.set('offset', String(next.offset));
    navigate(`/customers${p.size ? `?${p}` : ''}`);
  };
  return html`<section>
    <h1>Customers</h1>
    <form class="filters" onSubmit=${(e: Event) => {
      e.preventDefault();
      go({ q: text.trim() });
    }}>
      <input type="search" name="q" value=${text} onInput=${(e: Event) => setText((e.target as HTMLInputElement).value)} placeholder="Search id, name or email" aria-label="Search customers" />
      <button type="submit">Search</button>
      ${
        q
          ? html`<button type="button" class="link" onClick=${() => {
              setText('');
              go({});
            }}>Clear</button>`
          : null
      }
    </form>
    ${list.error ? html`<${Problem} error=${list.error} />` : null}
    <table class="grid" data-testid="customers-table">
      <thead><tr><th>Customer</th><th>Name</th><th>Email</th><th>Currency</th><th class="num">Balance</th><th>Created</th></tr></thead>
      <tbody>
        ${list.data?.data.length === 0 ? html`<tr><td colspan="6" class="muted">No customers${q ? ` match “${q}”` : ''}.</td></tr>` : null}
        ${(list.data?.data ?? []).map(
          (c) => html`<tr key=${c.customer_id} data-testid="customer-row">
            <td><a href=${`#/customers/${seg(c.customer_id)}`}>${c.customer_id}</a></td><td>${c.name ?? '—'}</td><td>${c.email ?? '—'}</td>
            <td>${c.currency}</td><td class="num">${c.balance}</td><td>${day(c.created_at)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <div class="pager">
      ${offset > 0 ? html`<button onClick=${() => go({ q, offset: Math.max(0, offset - PAGE) })}>← Previous</button>` : null}
      ${list.data?.has_more ? html`<button onClick=${() => go({ q, offset: offset + PAGE })}>Next →</button>` : null}
    </div>
  </section>`;
}

export function CustomerPage({ id, params }: { id: string; params: URLSearchParams }) {
  const detail = useLoad(() => api.get<CustomerDetail>(`/v1/customers/${seg(id)}`), [id]);
  const entitlements = useLoad(() => api.get<Page<Entitlement>>(`/v1/customers/${seg(id)}/entitlements`, { limit: 200 }), [id]);
  const credits = useLoad(
    () => api.get<{ balance: Record<string, string>; grants: CreditGrant[] }>(`/v1/customers/${seg(id)}/credits`),
    [id],
  );
  if (detail.error) return html`<${Problem} error=${detail.error} />`;
  const c = detail.data;
  if (!c) return html`<${Loading} />`;
  const subs = c.subscriptions as Subscription[];
  const invoices = c.invoices as Invoice[];
  return html`<section>
    <p class="crumbs"><a href="#/customers">Customers</a> /</p>
    <h1 data-testid="customer-title">${c.name ?? c.customer_id} <span class="muted mono">${c.customer_id}</span></h1>
    <dl class="facts">
      <div><dt>Email</dt><dd>${c.email ?? '—'}</dd></div>
      <div><dt>Currency</dt><dd>${c.currency}</dd></div>
      <div><dt>Prepaid balance</dt><dd>${money(c.balance, c.currency)}</dd></div>
      <div><dt>Amount due</dt><dd data-testid="amount-due">${money(c.total_amount_due, c.currency)}</dd></div>
      <div><dt>Created</dt><dd>${when(c.created_at)}</dd></div>
    </dl>

    <h2>Subscriptions</h2>
    <table class="grid" data-testid="subscriptions-table">
      <thead><tr><th>Subscription</th><th>Plan</th><th>Status</th><th>Current period</th><th>Started</th></tr></thead>
      <tbody>
        ${subs.length === 0 ? html`<tr><td colspan="5" class="muted">No subscriptions.</td></tr>` : null}
        ${subs.map(
          (s) => html`<tr key=${s.subscription_id}><td class="mono small">${s.subscription_id}</td><td>${s.plan_id} v${s.plan_version}</td>
            <td><${Badge} status=${s.status} /></td><td>${day(s.current_period_start)} – ${day(s.current_period_end)}</td><td>${day(s.start_date)}</td></tr>`,
        )}
      </tbody>
    </table>

    <h2>Entitlements</h2>
    ${entitlements.error ? html`<${Problem} error=${entitlements.error} />` : null}
    <table class="grid" data-testid="entitlements-table">
      <thead><tr><th>Feature</th><th>Access</th><th class="wide">Usage vs limit</th><th>Period</th></tr></thead>
      <tbody>
        ${entitlements.data?.data.length === 0 ? html`<tr><td colspan="4" class="muted">No entitlements.</td></tr>` : null}
        ${(entitlements.data?.data ?? []).map(
          (e) => html`<tr key=${e.feature_id} data-testid="entitlement-row" data-feature=${e.feature_id}>
            <td>${e.feature_id}</td>
            <td>${e.is_granted ? html`<${Badge} status="granted" />` : html`<${Badge} status=${e.access_denied_reason ?? 'denied'} />`}</td>
            <td>${e.feature_type === 'metered' ? html`<${UsageBar} used=${e.current_usage} limit=${e.usage_limit} unlimited=${e.has_unlimited_usage} />` : html`<span class="muted">boolean</span>`}</td>
            <td class="small">${e.usage_period_start ? `${day(e.usage_period_start)} – ${day(e.usage_period_end)}` : '—'}</td>
          </tr>`,
        )}
      </tbody>
    </table>

    <${UsagePanel} customerId=${id} params=${params} />

    <h2>Credits</h2>
    ${credits.error ? html`<${Problem} error=${credits.error} />` : null}
    <p data-testid="credit-balance">Balance: ${
      Object.entries(credits.data?.balance ?? {})
        .map(([cur, amt]) => money(amt, cur))
        .join(', ') || '—'
    }</p>
    ${
      credits.data?.grants.length
        ? html`<table class="grid"><thead><tr><th>Grant</th><th class="num">Amount</th><th class="num">Remaining</th><th>Status</th><th>Effective</th><th>Expires</th></tr></thead>
        <tbody>${credits.data.grants.map(
          (
            g,
          ) => html`<tr key=${g.grant_id}><td>${g.description ?? g.grant_id}</td><td class="num">${money(g.amount, g.currency)}</td><td class="num">${money(g.remaining, g.currency)}</td>
            <td><${Badge} status=${g.status} /></td><td>${day(g.effective_at)}</td><td>${day(g.expires_at)}</td></tr>`,
        )}</tbody></table>`
        : null
    }

    <h2>Invoices</h2>
    <${InvoiceRows} invoices=${invoices} />
  </section>`;
}

export function InvoiceRows({ invoices, showCustomer = false }: { invoices: Invoice[]; showCustomer?: boolean }) {
  return html`<table class="grid" data-testid="invoices-table">
    <thead><tr><th>Number</th>${showCustomer ? html`<th>Customer</th>` : null}<th>Status</th><th>Reason</th><th>Period</th><th class="num">Total</th><th>Created</th></tr></thead>
    <tbody>
      ${invoices.length === 0 ? html`<tr><td colspan=${showCustomer ? 7 : 6} class="muted">No invoices.</td></tr>` : null}
      ${invoices.map(
        (i) => html`<tr key=${i.invoice_id} data-testid="invoice-row">
          <td><a href=${`#/invoices/${seg(i.invoice_id)}`}>${i.number ?? 'Draft'}</a></td>
          ${showCustomer ? html`<td><a href=${`#/customers/${seg(i.customer_id)}`}>${i.customer_id}</a></td>` : null}
          <td><${Badge} status=${i.status} /></td><td>${i.reason}</td><td>${day(i.period_start)} – ${day(i.period_end)}</td>
          <td class="num">${money(i.total, i.currency)}</td><td>${day(i.created_at)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

const RANGES = { hour: 48 * 3_600_000, day: 30 * 86_400_000 } as const;

/** One metric's usage over time: hour windows over the last 48 h or day windows over the last 30 days. */
function UsagePanel({ customerId, params }: { customerId: string; params: URLSearchParams }) {
  const metrics = useLoad(() => api.get<Page<Metric>>('/v1/metrics', { limit: 200 }), []);
  const [metricId, setMetricId] = useState<string | null>(params.get('metric'));
  const [win, setWin] = useState<'hour' | 'day'>(params.get('window') === 'day' ? 'day' : 'hour');
  const chosen = metricId ?? metrics.data?.data[0]?.metric_id ?? null;
  const series = useLoad(async () => {
    if (!chosen) return undefined;
    const unit = win === 'hour' ? 3_600_000 : 86_400_000;
    const to = new Date(Math.ceil(Date.now() / unit) * unit);
    const from = new Date(to.getTime() - RANGES[win]);
    return api.get<UsageSeries>('/v1/usage', {
      customer_id: customerId,
      metric_id: chosen,
      from: from.toISOString(),
      to: to.toISOString(),
      window: win,
      limit: 200,
    });
  }, [customerId, chosen, win]);
  const s = series.data;
  // the answer's own window (a stale answer stays shown while the next one loads); memoized: the chart
  // is redrawn only for a new answer
  const { xs, ys } = useMemo(() => (s ? fillWindows(s, s.window === 'day' ? 86_400_000 : 3_600_000) : { xs: [], ys: [] }), [s]);
  return html`<div class="usage">
    <h2>Usage over time</h2>
    <form class="filters" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Metric
        <select name="metric" value=${chosen ?? ''} onChange=${(e: Event) => setMetricId((e.target as HTMLSelectElement).value)}>
          ${(metrics.data?.data ?? []).map((m) => html`<option value=${m.metric_id}>${m.name ?? m.metric_id}</option>`)}
        </select>
      </label>
      <label>Per
        <select name="window" value=${win} onChange=${(e: Event) => setWin((e.target as HTMLSelectElement).value as 'hour' | 'day')}>
          <option value="hour">hour (last 48 h)</option><option value="day">day (last 30 days)</option>
        </select>
      </label>
    </form>
    ${metrics.data?.data.length === 0 ? html`<p class="muted">No metrics defined.</p>` : null}
    ${series.error ? html`<${Problem} error=${series.error} />` : null}
    ${
      s
        ? html`<p>Total <strong data-testid="usage-total">${qty(s.total)}</strong> <span class="muted">(${s.aggregation} of ${s.metric_id}, ${day(s.from)} – ${day(s.to)})</span></p>
        <${UsageChart} xs=${xs} ys=${ys} label=${s.metric_id} />`
        : null
    }
  </div>`;
}

/** Every window of the range, with 0 where the series has no point (the API answers non-empty windows). */
export function fillWindows(s: UsageSeries, unit: number): { xs: number[]; ys: number[] } {
  const byStart = new Map<number, number>();
  for (const p of s.data)
    if (p.window_start) byStart.set(Date.parse(p.window_start), (byStart.get(Date.parse(p.window_start)) ?? 0) + p.value);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let t = Date.parse(s.from); t < Date.parse(s.to); t += unit) {
    xs.push(t / 1000);
    ys.push(byStart.get(t) ?? 0);
  }
  return { xs, ys };
}
