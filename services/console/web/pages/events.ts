// Events debugger: a live tail of the organization's latest stored events (aggregator GET
// /v1/debug/events, polled every 2 s), filters by customer and event name, the dead letters with their
// reason, and a form that posts a test event through the gateway and shows its answer per event
// (accepted / duplicate / rejected with the field): stored events are the accepted ones, a duplicate is
// answered to its producer and not stored again.
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import type { EventResult, IngestSummary } from '@meterline/contracts';
import { api, ApiError } from '../api.ts';
import { when } from '../format.ts';
import { useInterval, useLoad } from '../hooks.ts';
import { Badge, Problem } from '../ui.ts';

interface DebugEvent {
  customer_id: string;
  entity_id: string | null;
  event_name: string;
  idempotency_id: string;
  time_created: string;
  ingested_at: string;
  properties: Record<string, unknown>;
  source: string;
}
interface DeadLetter {
  customer_id: string;
  event_name: string;
  idempotency_id: string;
  reason: string;
  error: string;
  dead_lettered_at: string;
}
type IngestResult = EventResult;

export function EventsPage({ params }: { params: URLSearchParams }) {
  const [customer, setCustomer] = useState(params.get('customer_id') ?? '');
  const [eventName, setEventName] = useState(params.get('event_name') ?? '');
  const [applied, setApplied] = useState({ customer, eventName });
  const [live, setLive] = useState(true);
  const [tab, setTab] = useState<'events' | 'dead'>('events');
  const events = useLoad(
    () =>
      api.get<{ events: DebugEvent[] }>('/v1/debug/events', { customer_id: applied.customer, event_name: applied.eventName, limit: 100 }),
    [applied],
  );
  const dead = useLoad(
    () =>
      tab === 'dead'
        ? api.get<{ dead_letters: DeadLetter[] }>('/v1/debug/dead-letters', {
            customer_id: applied.customer,
            event_name: applied.eventName,
            limit: 100,
          })
        : Promise.resolve(undefined),
    [applied, tab],
  );
  useInterval(() => (tab === 'events' ? events.reload() : dead.reload()), 2_000, live);

  const apply = (e: Event) => {
    e.preventDefault();
    setApplied({ customer: customer.trim(), eventName: eventName.trim() });
  };

  return html`<section>
    <h1>Events</h1>
    <form class="filters" onSubmit=${apply}>
      <label>Customer <input name="customer_id" value=${customer} onInput=${(e: Event) => setCustomer((e.target as HTMLInputElement).value)} placeholder="any" /></label>
      <label>Event name <input name="event_name" value=${eventName} onInput=${(e: Event) => setEventName((e.target as HTMLInputElement).value)} placeholder="any" /></label>
      <button type="submit">Filter</button>
      <label class="inline"><input type="checkbox" name="live" checked=${live} onChange=${(e: Event) => setLive((e.target as HTMLInputElement).checked)} /> Live (every 2 s)</label>
    </form>
    <${SendEvent} onSent=${events.reload} />
    <nav class="tabs">
      <button class=${tab === 'events' ? 'active' : ''} onClick=${() => setTab('events')}>Latest events</button>
      <button class=${tab === 'dead' ? 'active' : ''} onClick=${() => setTab('dead')} data-testid="tab-dead-letters">Dead letters</button>
    </nav>
    ${tab === 'events' ? html`<${EventTable} state=${events} />` : html`<${DeadLetterTable} state=${dead} />`}
  </section>`;
}

function EventTable({ state }: { state: ReturnType<typeof useLoad<{ events: DebugEvent[] }>> }) {
  if (state.error && !state.data) return html`<${Problem} error=${state.error} />`;
  const rows = state.data?.events ?? [];
  return html`<table class="grid" data-testid="events-table">
    <thead><tr><th>Time (UTC)</th><th>Customer</th><th>Event</th><th>Properties</th><th>Idempotency id</th><th>Source</th><th>Status</th></tr></thead>
    <tbody>
      ${rows.length === 0 ? html`<tr><td colspan="7" class="muted">${state.loading ? 'Loading…' : 'No events yet.'}</td></tr>` : null}
      ${rows.map(
        (e) => html`<tr key=${e.idempotency_id} data-testid="event-row">
          <td class="nowrap">${when(e.time_created)}</td>
          <td><a href=${`#/customers/${encodeURIComponent(e.customer_id)}`}>${e.customer_id}</a>${e.entity_id ? html` <span class="muted">/ ${e.entity_id}</span>` : null}</td>
          <td>${e.event_name}</td>
          <td><code class="props">${JSON.stringify(e.properties)}</code></td>
          <td class="mono small">${e.idempotency_id}</td>
          <td>${e.source}</td>
          <td><${Badge} status="accepted" /></td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function DeadLetterTable({ state }: { state: ReturnType<typeof useLoad<{ dead_letters: DeadLetter[] } | undefined>> }) {
  if (state.error && !state.data) return html`<${Problem} error=${state.error} />`;
  const rows = state.data?.dead_letters ?? [];
  return html`<table class="grid" data-testid="dead-letters-table">
    <thead><tr><th>Dead-lettered (UTC)</th><th>Customer</th><th>Event</th><th>Reason</th><th>Error</th><th>Idempotency id</th></tr></thead>
    <tbody>
      ${rows.length === 0 ? html`<tr><td colspan="6" class="muted">${state.loading ? 'Loading…' : 'No dead letters.'}</td></tr>` : null}
      ${rows.map(
        (d, i) => html`<tr key=${`${d.idempotency_id}-${i}`} data-testid="dead-letter-row">
          <td class="nowrap">${when(d.dead_lettered_at)}</td><td>${d.customer_id}</td><td>${d.event_name}</td>
          <td><${Badge} status=${d.reason} /></td><td class="small">${d.error}</td><td class="mono small">${d.idempotency_id}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

/** Posts one event through the gateway (POST /v1/events) and lists the answers of this tab's sends. */
function SendEvent({ onSent }: { onSent: () => void }) {
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState({ customer_id: '', event_name: '', idempotency_id: '', properties: '{}' });
  const [sent, setSent] = useState<Array<{ at: string; event: string; result: IngestResult }>>([]);
  const [error, setError] = useState<unknown>(null);
  const field = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const properties = JSON.parse(form.properties || '{}') as Record<string, unknown>;
      const body = {
        customer_id: form.customer_id,
        event_name: form.event_name,
        properties,
        ...(form.idempotency_id ? { idempotency_id: form.idempotency_id } : {}),
      };
      let summary: IngestSummary;
      try {
        summary = await api.post<IngestSummary>('/v1/events', body);
      } catch (err) {
        // a rejected event is a 400 whose body still names the field (the gateway's per-event answer)
        const b = err instanceof ApiError ? (err.body as Partial<IngestSummary>) : undefined;
        if (!b?.results?.length) throw err;
        summary = b as IngestSummary;
      }
      const result = summary.results[0] as IngestResult;
      setSent((s) => [{ at: new Date().toISOString(), event: `${form.event_name} · ${form.customer_id}`, result }, ...s].slice(0, 20));
      onSent();
    } catch (err) {
      setError(err);
    }
  };
  if (!open)
    return html`<p><button class="link" onClick=${() => setOpen(true)} data-testid="open-send-event">Send a test event…</button></p>`;
  return html`<form class="card send" onSubmit=${submit} data-testid="send-event">
    <h2>Send a test event (through the gateway)</h2>
    <div class="row">
      <label>Customer <input name="send_customer_id" required value=${form.customer_id} onInput=${field('customer_id')} /></label>
      <label>Event name <input name="send_event_name" required value=${form.event_name} onInput=${field('event_name')} /></label>
      <label>Idempotency id <input name="send_idempotency_id" value=${form.idempotency_id} onInput=${field('idempotency_id')} placeholder="generated" /></label>
    </div>
    <label>Properties (JSON) <textarea name="send_properties" rows="2" value=${form.properties} onInput=${field('properties')}></textarea></label>
    <button type="submit">Send</button>
    ${error ? html`<${Problem} error=${error} />` : null}
    ${
      sent.length
        ? html`<table class="grid small" data-testid="sent-results"><tbody>
        ${sent.map(
          (s) => html`<tr><td class="nowrap">${when(s.at)}</td><td>${s.event}</td><td><${Badge} status=${s.result.status} /></td>
            <td class="mono small">${s.result.idempotency_id ?? ''}</td><td class="small">${(s.result.errors ?? []).map((x) => `${x.field}: ${x.message}`).join('; ')}</td></tr>`,
        )}
      </tbody></table>`
        : null
    }
  </form>`;
}
