// Catalog (read-only): billable metrics, features and plans of the organization.
import { html } from 'htm/preact';
import type { Feature, Metric, Plan, PlanEntitlement } from '@meterline/contracts';
import { api, type Page } from '../api.ts';
import { day } from '../format.ts';
import { useLoad } from '../hooks.ts';
import { Problem } from '../ui.ts';

export function CatalogPage() {
  const metrics = useLoad(() => api.get<Page<Metric>>('/v1/metrics', { limit: 200 }), []);
  const features = useLoad(() => api.get<Page<Feature>>('/v1/features', { limit: 200 }), []);
  const plans = useLoad(() => api.get<Page<Plan>>('/v1/plans', { limit: 200 }), []);
  return html`<section>
    <h1>Catalog</h1>
    <h2>Metrics</h2>
    ${metrics.error ? html`<${Problem} error=${metrics.error} />` : null}
    <table class="grid" data-testid="metrics-table">
      <thead><tr><th>Metric</th><th>Name</th><th>Event</th><th>Aggregation</th><th>Property</th><th>Filters</th><th>Group by</th><th>Version</th></tr></thead>
      <tbody>
        ${metrics.data?.data.length === 0 ? html`<tr><td colspan="8" class="muted">No metrics.</td></tr>` : null}
        ${(metrics.data?.data ?? []).map(
          (
            m,
          ) => html`<tr key=${m.metric_id}><td class="mono">${m.metric_id}</td><td>${m.name ?? '—'}</td><td>${m.event_name}</td><td>${m.aggregation}</td>
            <td>${m.property ?? '—'}</td><td><code class="props">${m.filters.length ? JSON.stringify(m.filters) : '—'}</code></td><td>${m.group_by.join(', ') || '—'}</td><td>${m.version}</td></tr>`,
        )}
      </tbody>
    </table>
    <h2>Features</h2>
    ${features.error ? html`<${Problem} error=${features.error} />` : null}
    <table class="grid" data-testid="features-table">
      <thead><tr><th>Feature</th><th>Name</th><th>Type</th><th>Metric</th><th>Created</th></tr></thead>
      <tbody>
        ${features.data?.data.length === 0 ? html`<tr><td colspan="5" class="muted">No features.</td></tr>` : null}
        ${(features.data?.data ?? []).map(
          (f) =>
            html`<tr key=${f.feature_id}><td class="mono">${f.feature_id}</td><td>${f.name ?? '—'}</td><td>${f.type}</td><td>${f.metric_id ?? '—'}</td><td>${day(f.created_at)}</td></tr>`,
        )}
      </tbody>
    </table>
    <h2>Plans</h2>
    ${plans.error ? html`<${Problem} error=${plans.error} />` : null}
    <table class="grid" data-testid="plans-table">
      <thead><tr><th>Plan</th><th>Name</th><th>Version</th><th>Interval</th><th class="num">Flat fee</th><th>Components</th><th>Entitlements</th></tr></thead>
      <tbody>
        ${plans.data?.data.length === 0 ? html`<tr><td colspan="7" class="muted">No plans.</td></tr>` : null}
        ${(plans.data?.data ?? []).map(
          (
            p,
          ) => html`<tr key=${p.plan_id}><td class="mono">${p.plan_id}</td><td>${p.name}</td><td>${p.current_version}</td><td>${p.interval}</td>
            <td class="num">${p.flat_fee} ${p.currency} <span class="muted small">${p.flat_fee_timing}</span></td>
            <td class="small">${p.components.map((c) => String((c as { metric_id?: string }).metric_id ?? '')).join(', ') || '—'}</td>
            <td class="small">${p.entitlements.map(describeEntitlement).join(', ') || '—'}</td></tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

function describeEntitlement(e: PlanEntitlement): string {
  if (e.limit === undefined || e.limit === null) return e.feature_id;
  return `${e.feature_id} ≤ ${e.limit.toLocaleString('en-US')}${e.limit_type === 'soft' ? ' (soft)' : ''}`;
}
