// Usage that invoices (and the subscription detail's "usage so far") price: for each usage component
// of a plan version, the rollup rows of its metric for [from, to) through the UsageReader. Reads only
// (ClickHouse + the metric's definition in Postgres); pricing is invoices/price.ts.
import type { Deps } from '../deps.ts';
import * as metricStore from '../metrics/store.ts';
import type { PlanVersion } from '../plans/store.ts';
import type { PlanComponent, UsageAmount } from '../pricing.ts';
import type { UsageQuery, UsageRow } from './reader.ts';

export interface ComponentUsage {
  component: PlanComponent;
  rows: UsageAmount[];
  /** The metric version whose rollups were read (invoice lines record it: metric_version). */
  metric_version?: number;
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
    out.push({ component: c, rows: rows.map((r) => ({ groups: r.groups, value: r.exact ?? String(r.value) })), metric_version: m.version });
  }
  return out;
}

/** Runs fn over items with at most `limit` at a time. */
export async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/** One usage read a batch answers: a customer's usage of a plan version's components over [from, to). */
export interface UsageNeed {
  orgId: string;
  customerId: string;
  plan: PlanVersion;
  from: Date;
  to: Date;
}

export interface UsageBatch {
  /** The same answer componentUsage gives for this need, or undefined when the batch did not read it. */
  get(need: UsageNeed): ComponentUsage[] | undefined;
  /** Usage queries the batch sent (ClickHouse queries with a batched reader). */
  queries: number;
}

/** Customers per batched query (the IN list of one ClickHouse query). */
export const BATCH_CUSTOMERS = 1000;

/**
 * componentUsage for many needs at once (the scheduler's period closes): each metric definition is read
 * once, and the usage of all customers sharing (metric version, from, to, grouping) is one query with a
 * customer list (core's queryUsage customerIds; GROUP BY customer_id). Readers without queryMany (test
 * fakes) are asked one customer at a time. Reads only.
 */
export async function usageBatch(
  deps: Pick<Deps, 'pool' | 'usage'>,
  needs: readonly UsageNeed[],
  opts: { concurrency?: number } = {},
): Promise<UsageBatch> {
  const metrics = new Map<string, Promise<metricStore.MetricRow | null>>();
  const metricOf = (orgId: string, metricId: string) => {
    const k = `${orgId}\u0000${metricId}`;
    let m = metrics.get(k);
    if (!m) metrics.set(k, (m = metricStore.getMetric(deps.pool, orgId, metricId)));
    return m;
  };
  const groupKey = (orgId: string, m: metricStore.MetricRow, includeGroups: boolean, from: Date, to: Date) =>
    `${orgId}\u0000${m.metric_id}\u0000${m.version}\u0000${includeGroups}\u0000${from.getTime()}\u0000${to.getTime()}`;
  interface Group {
    q: Omit<UsageQuery, 'customerId'>;
    customers: Set<string>;
    rows: Map<string, UsageRow[]>;
  }
  const groups = new Map<string, Group>();
  for (const n of needs) {
    if (n.to.getTime() <= n.from.getTime()) continue;
    for (const c of n.plan.components) {
      const m = await metricOf(n.orgId, c.metric_id);
      if (!m) continue;
      const includeGroups = (c.group_prices ?? []).length > 0;
      const k = groupKey(n.orgId, m, includeGroups, n.from, n.to);
      let g = groups.get(k);
      if (!g) {
        g = {
          q: { metric: metricStore.toDefinition(n.orgId, m), from: n.from, to: n.to, window: null, includeGroups },
          customers: new Set(),
          rows: new Map(),
        };
        groups.set(k, g);
      }
      g.customers.add(n.customerId);
    }
  }
  const tasks: { g: Group; customers: string[] }[] = [];
  for (const g of groups.values()) {
    const all = [...g.customers];
    if (deps.usage.queryMany)
      for (let i = 0; i < all.length; i += BATCH_CUSTOMERS) tasks.push({ g, customers: all.slice(i, i + BATCH_CUSTOMERS) });
    else for (const c of all) tasks.push({ g, customers: [c] });
  }
  await eachLimit(tasks, opts.concurrency ?? 4, async ({ g, customers }) => {
    const rows = deps.usage.queryMany
      ? await deps.usage.queryMany({ ...g.q, customerIds: customers })
      : await deps.usage.query({ ...g.q, customerId: customers[0]! });
    for (const c of customers) if (!g.rows.has(c)) g.rows.set(c, []);
    for (const r of rows) g.rows.get(r.customerId)?.push(r);
  });
  // metric rows are resolved by now: get() is synchronous
  const resolved = new Map<string, metricStore.MetricRow | null>();
  for (const [k, p] of metrics) resolved.set(k, await p);
  return {
    queries: tasks.length,
    get(n) {
      const out: ComponentUsage[] = [];
      for (const c of n.plan.components) {
        const k = `${n.orgId}\u0000${c.metric_id}`;
        if (!resolved.has(k)) return undefined;
        const m = resolved.get(k);
        if (!m) continue;
        let rows: UsageRow[] = [];
        if (n.to.getTime() > n.from.getTime()) {
          const g = groups.get(groupKey(n.orgId, m, (c.group_prices ?? []).length > 0, n.from, n.to));
          const got = g?.rows.get(n.customerId);
          if (!got) return undefined;
          rows = got;
        }
        out.push({
          component: c,
          rows: rows.map((r) => ({ groups: r.groups, value: r.exact ?? String(r.value) })),
          metric_version: m.version,
        });
      }
      return out;
    },
  };
}
