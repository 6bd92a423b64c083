// Usage that invoices (and the subscription detail's "usage so far") price: for each usage component
// of a plan version, the rollup rows of its metric for [from, to) through the UsageReader. Reads only
// (ClickHouse + the metric's definition in Postgres); pricing is invoices/price.ts.
import type { Deps } from '../deps.ts';
import * as metricStore from '../metrics/store.ts';
import type { PlanVersion } from '../plans/store.ts';
import type { PlanComponent, UsageAmount } from '../pricing.ts';

export interface ComponentUsage {
  component: PlanComponent;
  rows: UsageAmount[];
}

/** Usage per component of `plan` for one customer over [from, to); components whose metric is gone are skipped. */
export async function componentUsage(
  deps: Pick<Deps, 'pool' | 'usage'>,
  orgId: string,
  customerId: string,
  plan: PlanVersion,
  from: Date,
  to: Date,
): Promise<ComponentUsage[]> {
  const out: ComponentUsage[] = [];
  for (const c of plan.components) {
    const m = await metricStore.getMetric(deps.pool, orgId, c.metric_id);
    if (!m) continue;
    const rows =
      to.getTime() > from.getTime()
        ? await deps.usage.query({
            metric: metricStore.toDefinition(orgId, m),
            customerId,
            from,
            to,
            window: null,
            includeGroups: (c.group_prices ?? []).length > 0,
          })
        : [];
    // the exact decimal text (Decimal(38, 12) rollups), never the JS number: 0.1 + 0.2 is priced as 0.3
    out.push({ component: c, rows: rows.map((r) => ({ groups: r.groups, value: r.exact ?? String(r.value) })) });
  }
  return out;
}
