// Entitlement checks: "may this customer do this now?".
//   usage        = max(Redis ledger, ClickHouse usage for the usage window) (gauges: ledger ?? ClickHouse)
//   is_granted   = feature in an active subscription's plan, and for hard limits usage + requested <= limit
//   send_event   = the grant and the consumption are one atomic Redis script; the consumption is then
//                  produced to Kafka like a gateway event (refunded if that fails).
// See usage/ledger.ts for why the ledger and the aggregates agree.
import type { Entitlement } from '@meterline/contracts';
import type { MetricDefinition, UsageEvent } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ApiError, badRequest, notFound } from '../http/errors.ts';
import * as featureStore from '../features/store.ts';
import * as metricStore from '../metrics/store.ts';
import { usageWindow } from '../periods.ts';
import type { PlanEntitlement } from '../plans/store.ts';
import { newIdempotencyId } from '../usage/recorder.ts';
import type { LedgerKey } from '../usage/ledger.ts';
import { customerSnapshot, type CustomerSnapshot } from './snapshot.ts';

export type DeniedReason =
  | 'no_active_subscription'
  | 'feature_not_in_plan'
  | 'usage_limit_exceeded'
  | 'requested_usage_exceeds_limit'
  | null;

/** The entitlement answer: the wire contract's type (defined once in @meterline/contracts). */
export type { Entitlement };

interface Grant {
  sub: CustomerSnapshot['subscriptions'][number];
  ent: PlanEntitlement;
}

/** The most generous grant among active subscriptions: unlimited beats any limit, then the largest limit. */
function bestGrant(snap: CustomerSnapshot, featureId: string): Grant | null {
  let best: Grant | null = null;
  for (const sub of snap.subscriptions) {
    const ent = sub.plan.entitlements.find((e) => e.feature_id === featureId);
    if (!ent) continue;
    const lim = ent.limit ?? null;
    if (!best) {
      best = { sub, ent };
      continue;
    }
    const bl = best.ent.limit ?? null;
    if (bl === null) continue;
    if (lim === null || lim > bl) best = { sub, ent };
  }
  return best;
}

const sumRows = (m: MetricDefinition, rows: { value: number }[]) =>
  m.aggregation === 'max' || m.aggregation === 'latest'
    ? rows.reduce((a, r) => Math.max(a, r.value), 0)
    : rows.reduce((a, r) => a + r.value, 0);

/** ClickHouse usage for a window, cached for usageTtlMs (see cache.ts). */
export async function clickhouseUsage(
  deps: Deps,
  orgId: string,
  customerId: string,
  m: metricStore.MetricRow,
  start: Date,
  end: Date | null,
): Promise<number> {
  const def = metricStore.toDefinition(orgId, m);
  const key = `${orgId}\u0000${customerId}\u0000usage\u0000${m.metric_id}\u0000${m.version}\u0000${start.getTime()}`;
  return deps.cache.usage.get(key, async () => {
    const to = end ?? new Date(deps.now().getTime() + deps.config.gateway.maxFutureMs + 1);
    return sumRows(def, await deps.usage.query({ metric: def, customerId, from: start, to, window: null }));
  });
}

interface Evaluated {
  ent: Entitlement;
  ledgerKey: LedgerKey | null;
  metric: metricStore.MetricRow | null;
  limit: number | null;
  gauge: boolean;
  chUsage: number;
}

async function evaluate(
  deps: Deps,
  orgId: string,
  snap: CustomerSnapshot,
  feature: featureStore.FeatureRow,
  requested: number,
  consume: boolean,
): Promise<Evaluated> {
  const base: Entitlement = {
    customer_id: snap.customer.customer_id,
    feature_id: feature.feature_id,
    feature_type: feature.type,
    is_granted: false,
    access_denied_reason: null,
    usage_limit: null,
    limit_type: null,
    has_unlimited_usage: false,
    current_usage: null,
    requested_usage: requested,
    remaining: null,
    included_usage: null,
    reset_period: null,
    usage_period_start: null,
    usage_period_end: null,
    subscription_id: null,
  };
  const none = (reason: DeniedReason): Evaluated => ({
    ent: { ...base, access_denied_reason: reason },
    ledgerKey: null,
    metric: null,
    limit: null,
    gauge: false,
    chUsage: 0,
  });
  if (snap.subscriptions.length === 0) return none('no_active_subscription');
  const grant = bestGrant(snap, feature.feature_id);
  if (!grant || feature.archived_at) return none('feature_not_in_plan');
  base.subscription_id = grant.sub.row.subscription_id;
  if (feature.type === 'boolean')
    return {
      ent: { ...base, is_granted: true, has_unlimited_usage: true },
      ledgerKey: null,
      metric: null,
      limit: null,
      gauge: false,
      chUsage: 0,
    };

  const m = snap.metrics.get(feature.metric_id!);
  if (!m) return none('feature_not_in_plan');
  const reset = grant.ent.reset_period ?? 'billing_period';
  const now = deps.now();
  const win = usageWindow(
    reset,
    { startDate: grant.sub.row.start_date, periodStart: grant.sub.row.current_period_start, periodEnd: grant.sub.row.current_period_end },
    now,
  );
  const limit = grant.ent.limit ?? null;
  const hard = (grant.ent.limit_type ?? 'hard') === 'hard';
  const component = grant.sub.plan.components.find((c) => c.metric_id === m.metric_id);
  const chUsage = await clickhouseUsage(deps, orgId, snap.customer.customer_id, m, win.start, win.end);
  const gauge = m.aggregation === 'latest';
  const ledgerKey: LedgerKey = {
    orgId,
    customerId: snap.customer.customer_id,
    featureId: feature.feature_id,
    metricVersion: m.version,
    windowStartMs: win.start.getTime(),
  };
  const r = await deps.ledger.checkAndConsume(ledgerKey, {
    clickhouseUsage: chUsage,
    required: requested,
    limit: hard ? limit : null,
    consume,
    gauge,
  });
  const usageBefore = consume && r.allowed ? r.usage - requested : r.usage;
  const ent: Entitlement = {
    ...base,
    is_granted: r.allowed,
    access_denied_reason: r.allowed ? null : usageBefore >= (limit ?? Infinity) ? 'usage_limit_exceeded' : 'requested_usage_exceeds_limit',
    usage_limit: limit,
    limit_type: grant.ent.limit_type ?? 'hard',
    has_unlimited_usage: limit === null,
    current_usage: r.usage,
    remaining: limit === null ? null : Math.max(0, limit - r.usage),
    included_usage: component ? Number(component.free_units ?? 0) : null,
    reset_period: reset,
    usage_period_start: win.start.toISOString(),
    usage_period_end: win.end?.toISOString() ?? null,
  };
  return { ent, ledgerKey, metric: m, limit, gauge, chUsage };
}

/** The feature, cached with the catalog; "not found" is cached too, for at most 1 s (cache.ts). */
async function featureOrThrow(deps: Deps, orgId: string, featureId: string) {
  const f = (await deps.cache.customers.get(`${orgId}\u0000\u0000feature\u0000${featureId}`, () =>
    featureStore.getFeature(deps.pool, orgId, featureId),
  )) as featureStore.FeatureRow | null;
  if (!f) throw notFound('feature', featureId);
  return f;
}

export async function entitlement(deps: Deps, orgId: string, customerId: string, featureId: string, requested = 1) {
  const [snap, feature] = await Promise.all([customerSnapshot(deps, orgId, customerId), featureOrThrow(deps, orgId, featureId)]);
  return (await evaluate(deps, orgId, snap, feature, requested, false)).ent;
}

export async function allEntitlements(deps: Deps, orgId: string, customerId: string) {
  const snap = await customerSnapshot(deps, orgId, customerId);
  const ids = [...new Set(snap.subscriptions.flatMap((s) => s.plan.entitlements.map((e) => e.feature_id)))].sort();
  const out: Entitlement[] = [];
  for (const id of ids) {
    const f = snap.features.get(id);
    if (f && !f.archived_at) out.push((await evaluate(deps, orgId, snap, f, 1, false)).ent);
  }
  return out;
}

/** Properties that make an event pass the metric's filters (so the aggregator counts it). */
export function satisfyingProperties(filters: MetricDefinition['filters']): Record<string, string | number> {
  const props: Record<string, string | number> = {};
  for (const f of filters) {
    switch (f.operator) {
      case 'equals':
        props[f.property] = f.value;
        break;
      case 'in':
        props[f.property] = f.values[0]!;
        break;
      case 'eq':
      case 'gte':
      case 'lte':
        props[f.property] = f.value;
        break;
      case 'gt':
        props[f.property] = f.value + 1;
        break;
      case 'lt':
        props[f.property] = f.value - 1;
        break;
      case 'not_in':
        props[f.property] = `__meterline_${f.values.join('').length}_${Date.now()}`;
        break;
      case 'neq':
        props[f.property] = f.value + 1;
        break;
    }
  }
  return props;
}

/** How a request's events get their idempotency ids (see usage/idempotency.ts). */
export interface ConsumeOptions {
  eventId?: (index: number) => string;
}

/** The events that record `amount` units of a metric (what the aggregator will count). */
export function consumptionEvents(
  orgId: string,
  customerId: string,
  m: metricStore.MetricRow,
  amount: number,
  gaugeValue: number,
  nowMs: number,
  extra: Record<string, string | number | boolean> = {},
  /** Event i's idempotency id (derived from the request's idempotency_key); default: a random id. */
  eventId: (index: number) => string = newIdempotencyId,
): UsageEvent[] {
  const base = { ...extra, ...satisfyingProperties(m.filters) };
  let n = 0;
  const ev = (properties: Record<string, string | number | boolean>): UsageEvent => ({
    organizationId: orgId,
    customerId,
    eventName: m.event_name,
    idempotencyId: eventId(n++),
    timeCreatedMs: nowMs,
    receivedAtMs: nowMs,
    properties,
    source: 'api',
  });
  switch (m.aggregation) {
    case 'count':
      if (!Number.isInteger(amount) || amount < 0 || amount > 1000)
        throw badRequest('a count metric consumes a whole number of units (0..1000) per call');
      return Array.from({ length: amount }, () => ev(base));
    case 'sum':
      return amount === 0 ? [] : [ev({ ...base, [m.property!]: amount })];
    case 'unique_count':
      if (!Number.isInteger(amount) || amount < 0 || amount > 1000)
        throw badRequest('a unique_count metric consumes a whole number of units (0..1000) per call');
      return Array.from({ length: amount }, () => {
        const e = ev(base);
        e.properties[m.property!] = e.idempotencyId;
        return e;
      });
    case 'max':
    case 'latest':
      return [ev({ ...base, [m.property!]: gaugeValue })];
  }
}

export async function check(
  deps: Deps,
  orgId: string,
  input: {
    customer_id: string;
    feature_id: string;
    required_balance?: number;
    send_event?: boolean;
    properties?: Record<string, string | number | boolean>;
  },
  opts: ConsumeOptions = {},
) {
  const required = input.required_balance ?? 1;
  const [snap, feature] = await Promise.all([
    customerSnapshot(deps, orgId, input.customer_id),
    featureOrThrow(deps, orgId, input.feature_id),
  ]);
  const consume = !!input.send_event && feature.type === 'metered';
  if (consume) {
    const m = snap.metrics.get(feature.metric_id!);
    if (m && (m.aggregation === 'count' || m.aggregation === 'unique_count') && (!Number.isInteger(required) || required > 1000))
      throw badRequest('required_balance must be a whole number up to 1000 for count metrics');
  }
  const e = await evaluate(deps, orgId, snap, feature, required, consume);
  let eventsRecorded = 0;
  if (consume && e.ent.is_granted && e.metric && e.ledgerKey) {
    const now = deps.now().getTime();
    const events = consumptionEvents(
      orgId,
      input.customer_id,
      e.metric,
      required,
      e.ent.current_usage ?? required,
      now,
      input.properties,
      opts.eventId,
    );
    try {
      await deps.recorder.record(events);
      eventsRecorded = events.length;
    } catch (err) {
      await deps.ledger.refund(e.ledgerKey, required).catch(() => undefined);
      deps.logger.error({ err }, 'recording usage for check failed; grant refunded');
      throw new ApiError(503, 'usage_not_recorded', 'the usage could not be recorded; nothing was consumed, retry');
    }
  }
  const ent = e.ent;
  return {
    allowed: ent.is_granted,
    customer_id: ent.customer_id,
    feature_id: ent.feature_id,
    required_balance: required,
    balance: ent.usage_limit === null || ent.current_usage === null ? null : ent.usage_limit - ent.current_usage,
    usage: ent.current_usage,
    included_usage: ent.usage_limit,
    unlimited: ent.has_unlimited_usage,
    event_recorded: eventsRecorded > 0,
    events_recorded: eventsRecorded,
    entitlement: ent,
  };
}

export async function customerAccess(
  deps: Deps,
  orgId: string,
  q: { customer_id: string; feature_name?: string; event_name?: string; event_limit_type?: 'free' | 'total' },
) {
  if (!!q.feature_name === !!q.event_name) throw badRequest('pass exactly one of feature_name or event_name');
  if (q.feature_name) {
    const ent = await entitlement(deps, orgId, q.customer_id, q.feature_name, 0);
    return {
      customer_id: q.customer_id,
      feature_name: q.feature_name,
      access: ent.is_granted && (ent.usage_limit === null || (ent.current_usage ?? 0) < ent.usage_limit || ent.limit_type === 'soft'),
      access_denied_reason: ent.access_denied_reason,
      entitlement: ent,
    };
  }
  const limitType = q.event_limit_type ?? 'total';
  const snap = await customerSnapshot(deps, orgId, q.customer_id);
  const per: {
    metric_id: string;
    plan_id: string;
    usage: number;
    free_units: number | null;
    total_limit: number | null;
    access: boolean;
  }[] = [];
  for (const sub of snap.subscriptions) {
    const metricIds = new Set(sub.plan.components.map((c) => c.metric_id));
    for (const ent of sub.plan.entitlements) {
      const f = snap.features.get(ent.feature_id);
      if (f?.metric_id) metricIds.add(f.metric_id);
    }
    for (const id of metricIds) {
      const m = snap.metrics.get(id);
      if (!m || m.event_name !== q.event_name) continue;
      const comp = sub.plan.components.find((c) => c.metric_id === id);
      const ents = sub.plan.entitlements.filter(
        (e) => snap.features.get(e.feature_id)?.metric_id === id && (e.limit_type ?? 'hard') === 'hard',
      );
      const total =
        ents.length === 0 || ents.some((e) => e.limit === null || e.limit === undefined)
          ? null
          : Math.min(...ents.map((e) => e.limit as number));
      const reset = ents[0]?.reset_period ?? 'billing_period';
      const win = usageWindow(
        limitType === 'free' ? 'billing_period' : reset,
        { startDate: sub.row.start_date, periodStart: sub.row.current_period_start, periodEnd: sub.row.current_period_end },
        deps.now(),
      );
      let usage = await clickhouseUsage(deps, orgId, q.customer_id, m, win.start, win.end);
      // include units consumed by checks that the aggregates may not show yet
      for (const e of ents) {
        const r = await deps.ledger.checkAndConsume(
          { orgId, customerId: q.customer_id, featureId: e.feature_id, metricVersion: m.version, windowStartMs: win.start.getTime() },
          { clickhouseUsage: usage, required: 0, limit: null, consume: false, gauge: m.aggregation === 'latest' },
        );
        usage = m.aggregation === 'latest' ? r.usage : Math.max(usage, r.usage); // gauges: the SET value, not the older max
      }
      const free = comp ? Number(comp.free_units ?? 0) : null;
      const access = limitType === 'free' ? free !== null && usage < free : total === null || usage < total;
      per.push({ metric_id: id, plan_id: sub.plan.plan_id, usage, free_units: free, total_limit: total, access });
    }
  }
  return {
    customer_id: q.customer_id,
    event_name: q.event_name,
    event_limit_type: limitType,
    access: per.length > 0 && per.every((p) => p.access),
    access_denied_reason:
      per.length === 0
        ? snap.subscriptions.length === 0
          ? 'no_active_subscription'
          : 'event_not_in_plan'
        : per.every((p) => p.access)
          ? null
          : limitType === 'free'
            ? 'free_units_used'
            : 'usage_limit_exceeded',
    usage_per_component: per,
  };
}

/** report_usage / set_usage: DELTA adds, SET makes the value the new usage (gauges such as seats). */
export async function reportUsage(
  deps: Deps,
  orgId: string,
  input: {
    customer_id: string;
    feature_id: string;
    value: number;
    update_behavior?: 'delta' | 'set';
    properties?: Record<string, string | number | boolean>;
  },
  opts: ConsumeOptions = {},
) {
  const behavior = input.update_behavior ?? 'delta';
  const [snap, feature] = await Promise.all([
    customerSnapshot(deps, orgId, input.customer_id),
    featureOrThrow(deps, orgId, input.feature_id),
  ]);
  if (feature.type !== 'metered') throw badRequest(`feature "${feature.feature_id}" is not metered`);
  const m = snap.metrics.get(feature.metric_id!) ?? (await metricStore.getMetric(deps.pool, orgId, feature.metric_id!));
  if (!m) throw notFound('metric', feature.metric_id!);
  const ent = await entitlement(deps, orgId, input.customer_id, feature.feature_id, 0);
  const current = ent.current_usage ?? 0;
  const now = deps.now().getTime();
  let events: UsageEvent[];
  let after: number;
  if (behavior === 'set') {
    if (m.aggregation === 'latest' || m.aggregation === 'max') {
      events = consumptionEvents(orgId, input.customer_id, m, 0, input.value, now, input.properties, opts.eventId);
      after = m.aggregation === 'max' ? Math.max(current, input.value) : input.value;
    } else if (m.aggregation === 'sum') {
      const delta = input.value - current;
      events = consumptionEvents(orgId, input.customer_id, m, delta, 0, now, input.properties, opts.eventId);
      after = input.value;
    } else throw badRequest(`SET needs a metric aggregated by latest, max or sum; "${m.metric_id}" uses ${m.aggregation}`);
  } else {
    if (m.aggregation === 'latest' || m.aggregation === 'max') {
      after = current + input.value;
      events = consumptionEvents(orgId, input.customer_id, m, 0, after, now, input.properties, opts.eventId);
    } else {
      if (input.value < 0 && m.aggregation !== 'sum') throw badRequest('a negative delta needs a sum metric');
      events = consumptionEvents(orgId, input.customer_id, m, input.value, 0, now, input.properties, opts.eventId);
      after = current + input.value;
    }
  }
  await deps.recorder.record(events).catch((err) => {
    deps.logger.error({ err }, 'report usage failed');
    throw new ApiError(503, 'usage_not_recorded', 'the usage could not be recorded; retry');
  });
  if (ent.usage_period_start) {
    const key = {
      orgId,
      customerId: input.customer_id,
      featureId: feature.feature_id,
      metricVersion: m.version,
      windowStartMs: Date.parse(ent.usage_period_start),
    };
    if (m.aggregation === 'latest') await deps.ledger.set(key, after);
    else await deps.ledger.add(key, after - current);
  }
  return {
    customer_id: input.customer_id,
    feature_id: feature.feature_id,
    update_behavior: behavior,
    previous_usage: current,
    current_usage: after,
    events_recorded: events.length,
    usage_limit: ent.usage_limit,
    over_limit: ent.usage_limit !== null && after > ent.usage_limit,
  };
}

export async function usageSeries(
  deps: Deps,
  orgId: string,
  q: {
    customer_id: string;
    feature_id?: string;
    metric_id?: string;
    from: string;
    to: string;
    window?: 'hour' | 'day' | null;
    group_by?: boolean;
  },
) {
  let metricId = q.metric_id;
  if (!!q.feature_id === !!q.metric_id) throw badRequest('pass exactly one of feature_id or metric_id');
  if (q.feature_id) {
    const f = await featureStore.getFeature(deps.pool, orgId, q.feature_id);
    if (!f) throw notFound('feature', q.feature_id);
    if (!f.metric_id) throw badRequest(`feature "${q.feature_id}" is not metered`);
    metricId = f.metric_id;
  }
  const m = await metricStore.getMetric(deps.pool, orgId, metricId!);
  if (!m) throw notFound('metric', metricId!);
  const from = new Date(q.from);
  const to = new Date(q.to);
  if (!(to.getTime() > from.getTime())) throw badRequest('to must be after from');
  const window = q.window ?? null;
  const maxBuckets = 10_000;
  if (window && (to.getTime() - from.getTime()) / (window === 'hour' ? 3_600_000 : 86_400_000) > maxBuckets)
    throw badRequest(`range too long for window ${window} (at most ${maxBuckets} buckets)`);
  const def = metricStore.toDefinition(orgId, m);
  // metric_version_status: 'ready' = totals include events from before this version was defined;
  // 'backfilling'/'pending' = the aggregator is still recomputing older events (new events count at once).
  const [rows, versionStatus] = await Promise.all([
    deps.usage.query({ metric: def, customerId: q.customer_id, from, to, window, includeGroups: !!q.group_by }),
    deps.usage.versionStatus(def),
  ]);
  return {
    customer_id: q.customer_id,
    metric_id: m.metric_id,
    feature_id: q.feature_id ?? null,
    aggregation: m.aggregation,
    window,
    from: from.toISOString(),
    to: to.toISOString(),
    metric_version: m.version,
    metric_version_status: versionStatus,
    total: sumRows(def, rows),
    data: rows.map((r) => ({ window_start: r.windowStart?.toISOString() ?? null, groups: r.groups, value: r.value })),
  };
}
