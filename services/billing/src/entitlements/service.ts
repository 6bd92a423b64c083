// Entitlement checks: "may this customer do this now?".
//   usage        = a ClickHouse reading at a known aggregator watermark + the grants it cannot contain
//                  yet (usage/ledger.ts; the guarantee is in the README, "Usage state")
//   is_granted   = feature in an active subscription's plan, and for hard limits usage + requested <= limit
//   send_event   = decide and consume in one atomic Redis script (a pending grant), produce to Kafka like
//                  a gateway event, then settle the grant at its Kafka offset (refunded if producing fails).
import type { Entitlement } from '@meterline/contracts';
import { isTimeZone, type MetricDefinition, type UsageEvent } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ApiError, badRequest, notFound } from '../http/errors.ts';
import * as featureStore from '../features/store.ts';
import * as metricStore from '../metrics/store.ts';
import { usageWindow, type UsageWindow } from '../periods.ts';
import { bestGrant, grantsFor } from './grants.ts';
import { newIdempotencyId } from '../usage/recorder.ts';
import { ledgerAggregation, type LedgerKey, type UsageReading } from '../usage/ledger.ts';
import { customerSnapshot, type CustomerSnapshot } from './snapshot.ts';
import { afterUsage } from '../alerts/service.ts';
import { activeEntities, requireActiveEntity } from '../entities/service.ts';
import { inForce } from '../promotions/store.ts';

export type DeniedReason =
  | 'no_active_subscription'
  | 'feature_not_in_plan'
  | 'usage_limit_exceeded'
  | 'requested_usage_exceeds_limit'
  | null;

/** The entitlement answer: the wire contract's type (defined once in @meterline/contracts). */
export type { Entitlement };

const sumRows = (m: MetricDefinition, rows: { value: number }[]) =>
  m.aggregation === 'max' || m.aggregation === 'latest'
    ? rows.reduce((a, r) => Math.max(a, r.value), 0)
    : rows.reduce((a, r) => a + r.value, 0);

/** A ClickHouse usage reading for a window: watermarks first, then the query (usage/readings.ts caches it). */
function readUsage(deps: Deps, orgId: string, customerId: string, m: metricStore.MetricRow, win: UsageWindow, entityId?: string) {
  return async (): Promise<UsageReading> => {
    const readAtMs = Date.now();
    const watermarks = await deps.ledger.watermarks(deps.config.kafka.eventsTopic);
    const def = metricStore.toDefinition(orgId, m);
    const to = win.end ?? new Date(deps.now().getTime() + deps.config.gateway.maxFutureMs + 1);
    const usage = sumRows(
      def,
      await deps.usage.query({
        metric: def,
        customerId,
        ...(entityId !== undefined ? { entityId } : {}),
        from: win.start,
        to,
        window: null,
      }),
    );
    return { usage, watermarks, readAtMs };
  };
}

const STALE_RETRIES = 3;

/**
 * The usage of a metric in a window as every billing instance sees it right now, tested against a
 * limit and (when `consume`) consumed in the same atomic step. `grant` is the pending grant to settle
 * or refund.
 */
async function usageDecision(
  deps: Deps,
  orgId: string,
  customerId: string,
  m: metricStore.MetricRow,
  win: UsageWindow,
  p: { required: number; limit: number | null; consume: boolean; entityId?: string },
): Promise<{ allowed: boolean; usage: number; grant: string | null; key: LedgerKey }> {
  // entityId (per_entity entitlements): the entity's own reading and ledger key (entities/, README "Entities")
  const { entityId, ...decision } = p;
  const key: LedgerKey = { orgId, customerId, metricId: m.metric_id, metricVersion: m.version, ...(entityId ? { entityId } : {}) };
  const cacheKey = `${orgId}\u0000${customerId}\u0000${m.metric_id}\u0000${m.version}\u0000${win.start.getTime()}${entityId ? `\u0000${entityId}` : ''}`;
  let newerThan: number | undefined;
  for (let attempt = 0; attempt < STALE_RETRIES; attempt++) {
    const t0 = performance.now();
    const reading = await deps.readings.get(cacheKey, readUsage(deps, orgId, customerId, m, win, entityId || undefined), {
      strict: p.consume,
      newerThanMs: newerThan,
    });
    const t1 = performance.now();
    deps.metrics.checkStageSeconds.observe({ stage: 'reading' }, (t1 - t0) / 1000);
    const out = await deps.ledger.check(key, reading, {
      ...decision,
      aggregation: ledgerAggregation(m.aggregation),
      windowStartMs: win.start.getTime(),
      windowEndMs: win.end?.getTime() ?? null,
      nowMs: deps.now().getTime(),
    });
    deps.metrics.checkStageSeconds.observe({ stage: 'ledger' }, (performance.now() - t1) / 1000);
    if (out.status !== 'stale') return { allowed: out.status === 'allowed', usage: out.usage, grant: out.grant, key };
    deps.metrics.staleReadings.inc();
    newerThan = reading.readAtMs; // the ledger dropped grants this reading would need: read ClickHouse again
  }
  throw new ApiError(503, 'usage_unavailable', 'the aggregator watermarks are behind the usage ledger; retry');
}

interface Evaluated {
  ent: Entitlement;
  /** The pending grant a consuming check took (settle after producing, refund on failure). */
  grant: { key: LedgerKey; member: string } | null;
  metric: metricStore.MetricRow | null;
  /** The entity whose own balance was used (a per_entity entitlement checked with entity_id). */
  ledgerEntity?: string;
  /** The grant in force is per_entity (its plan's entitlement): usage needs an entity. */
  perEntity?: boolean;
}

async function evaluate(
  deps: Deps,
  orgId: string,
  snap: CustomerSnapshot,
  feature: featureStore.FeatureRow,
  requested: number,
  consume: boolean,
  /** The entity the request names (already checked to be active), when any. */
  entityId?: string,
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
    source: null,
    expires_at: null,
    grants: [],
  };
  const none = (reason: DeniedReason): Evaluated => ({ ent: { ...base, access_denied_reason: reason }, grant: null, metric: null });
  const now = deps.now();
  // plans with their add-ons, and promotional grants (grants.ts): the most generous one is in force
  const all = feature.archived_at ? [] : grantsFor(snap, feature.feature_id, now);
  const grant = bestGrant(all);
  if (!grant) return none(snap.subscriptions.length === 0 ? 'no_active_subscription' : 'feature_not_in_plan');
  base.subscription_id = grant.sub?.row.subscription_id ?? null;
  base.source = grant.source;
  base.expires_at = grant.expiresAt?.toISOString() ?? null;
  base.grants = all.flatMap((g) => g.grants);
  if (feature.type === 'boolean') return { ent: { ...base, is_granted: true, has_unlimited_usage: true }, grant: null, metric: null };

  const m = snap.metrics.get(feature.metric_id!);
  if (!m) return none('feature_not_in_plan');
  const reset = grant.reset;
  const win = usageWindow(reset, grant.anchor, now);
  let limit = grant.limit;
  // per_entity (the plan's entitlement): each entity has the limit as its own balance; without an
  // entity a consuming check is refused and a read compares the customer's total with limit x active entities
  const perEntity = !!grant.sub?.plan.entitlements.find((e) => e.feature_id === feature.feature_id)?.per_entity;
  let ledgerEntity: string | undefined;
  if (perEntity && entityId) ledgerEntity = entityId;
  else if (perEntity) {
    if (consume)
      throw new ApiError(
        400,
        'entity_required',
        `feature "${feature.feature_id}" is limited per entity: a consuming check or usage report needs entity_id`,
      );
    if (limit !== null) limit *= (await activeEntities(deps, orgId, snap.customer.customer_id)).size;
  }
  const hard = grant.limitType === 'hard';
  const component = grant.sub?.plan.components.find((c) => c.metric_id === m.metric_id);
  const d = await usageDecision(deps, orgId, snap.customer.customer_id, m, win, {
    required: requested,
    limit: hard ? limit : null,
    consume,
    ...(ledgerEntity ? { entityId: ledgerEntity } : {}),
  });
  const r = { allowed: d.allowed, usage: d.usage };
  const usageBefore = consume && r.allowed ? r.usage - requested : r.usage;
  const ent: Entitlement = {
    ...base,
    is_granted: r.allowed,
    access_denied_reason: r.allowed ? null : usageBefore >= (limit ?? Infinity) ? 'usage_limit_exceeded' : 'requested_usage_exceeds_limit',
    usage_limit: limit,
    limit_type: grant.limitType,
    has_unlimited_usage: limit === null,
    current_usage: r.usage,
    remaining: limit === null ? null : Math.max(0, limit - r.usage),
    included_usage: component ? Number(component.free_units ?? 0) : null,
    reset_period: reset,
    usage_period_start: win.start.toISOString(),
    usage_period_end: win.end?.toISOString() ?? null,
  };
  return {
    ent,
    grant: d.grant ? { key: d.key, member: d.grant } : null,
    metric: m,
    ...(ledgerEntity ? { ledgerEntity } : {}),
    ...(perEntity ? { perEntity } : {}),
  };
}

/** The feature, cached with the catalog; "not found" is cached too, for at most 1 s (cache.ts). */
async function featureOrThrow(deps: Deps, orgId: string, featureId: string) {
  const f = (await deps.cache.customers.get(`${orgId}\u0000\u0000feature\u0000${featureId}`, () =>
    featureStore.getFeature(deps.pool, orgId, featureId),
  )) as featureStore.FeatureRow | null;
  if (!f) throw notFound('feature', featureId);
  return f;
}

export async function entitlement(deps: Deps, orgId: string, customerId: string, featureId: string, requested = 1, entityId?: string) {
  const [snap, feature] = await Promise.all([customerSnapshot(deps, orgId, customerId), featureOrThrow(deps, orgId, featureId)]);
  if (entityId !== undefined) await requireActiveEntity(deps, orgId, customerId, entityId);
  return (await evaluate(deps, orgId, snap, feature, requested, false, entityId)).ent;
}

export async function allEntitlements(deps: Deps, orgId: string, customerId: string) {
  const snap = await customerSnapshot(deps, orgId, customerId);
  const now = deps.now();
  const ids = [
    ...new Set([
      ...snap.subscriptions.flatMap((s) => [
        ...s.plan.entitlements.map((e) => e.feature_id),
        ...(s.addOns ?? []).flatMap((a) => a.plan.entitlements.map((e) => e.feature_id)),
      ]),
      ...(snap.promotions ?? []).filter((p) => inForce(p, now)).map((p) => p.feature_id),
    ]),
  ].sort();
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
  /** The customer's entity the usage belongs to (carried on every event as entity_id). */
  entityId?: string,
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
    ...(entityId ? { entityId } : {}),
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
    entity_id?: string;
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
  if (input.entity_id !== undefined) await requireActiveEntity(deps, orgId, input.customer_id, input.entity_id);
  if (consume) {
    const m = snap.metrics.get(feature.metric_id!);
    if (m && (m.aggregation === 'count' || m.aggregation === 'unique_count') && (!Number.isInteger(required) || required > 1000))
      throw badRequest('required_balance must be a whole number up to 1000 for count metrics');
  }
  const e = await evaluate(deps, orgId, snap, feature, required, consume, input.entity_id);
  let eventsRecorded = 0;
  if (consume && e.ent.is_granted && e.metric && e.grant) {
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
      input.entity_id,
    );
    let at: Awaited<ReturnType<Deps['recorder']['record']>>;
    const t0 = performance.now();
    try {
      at = await deps.recorder.record(events);
      deps.metrics.checkStageSeconds.observe({ stage: 'produce' }, (performance.now() - t0) / 1000);
      eventsRecorded = events.length;
    } catch (err) {
      await deps.ledger.refund(e.grant.key, e.grant.member).catch(() => undefined);
      deps.logger.error({ err }, 'recording usage for check failed; grant refunded');
      throw new ApiError(503, 'usage_not_recorded', 'the usage could not be recorded; nothing was consumed, retry');
    }
    // Settled: counted until the aggregator passes its offset. Not awaited: until it lands the grant is
    // pending, which counts it just the same, so the answer need not wait for a second Redis round trip.
    // If it fails (or there is no single position) the grant stays pending: counted, conservatively,
    // until the pending TTL.
    if (at)
      deps.ledger.settle(e.grant.key, e.grant.member, at).catch((err) => {
        deps.logger.warn({ err: (err as Error).message }, 'settling a grant failed; it stays pending (counted)');
      });
    else if (events.length === 0) await deps.ledger.refund(e.grant.key, e.grant.member).catch(() => undefined);
    // usage alerts and exhaustion for this customer and feature (alerts/service.ts; not awaited)
    const limit = e.ent.usage_limit;
    afterUsage(deps, orgId, input.customer_id, input.feature_id, limit !== null && (e.ent.current_usage ?? 0) >= limit);
  }
  const ent = e.ent;
  return {
    allowed: ent.is_granted,
    customer_id: ent.customer_id,
    ...(input.entity_id !== undefined ? { entity_id: input.entity_id } : {}),
    feature_id: ent.feature_id,
    required_balance: required,
    balance: ent.usage_limit === null || ent.current_usage === null ? null : ent.usage_limit - ent.current_usage,
    usage: ent.current_usage,
    usage_limit: ent.usage_limit,
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
      const { usage } = await usageDecision(deps, orgId, q.customer_id, m, win, { required: 0, limit: null, consume: false });
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
    entity_id?: string;
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
  const entityId = input.entity_id;
  if (entityId !== undefined) await requireActiveEntity(deps, orgId, input.customer_id, entityId);
  // per_entity: the entity's own usage is "current" (and its ledger key records the change); otherwise the
  // customer's (an entity_id then only tags the events)
  const evaluated = await evaluate(deps, orgId, snap, feature, 0, false, entityId);
  const ent = evaluated.ent;
  // the same rule as checks: per_entity when the grant in force is (a more generous promotion is not)
  const perEntity = !!evaluated.perEntity;
  if (perEntity && entityId === undefined)
    throw new ApiError(400, 'entity_required', `feature "${feature.feature_id}" is limited per entity: a usage report needs entity_id`);
  if (entityId !== undefined && behavior === 'set' && !evaluated.ledgerEntity)
    throw badRequest('SET with entity_id needs a per_entity entitlement (the entity then has its own usage)');
  const current = ent.current_usage ?? 0;
  const now = deps.now().getTime();
  let events: UsageEvent[];
  let after: number;
  if (behavior === 'set') {
    if (m.aggregation === 'latest' || m.aggregation === 'max') {
      events = consumptionEvents(orgId, input.customer_id, m, 0, input.value, now, input.properties, opts.eventId, entityId);
      after = m.aggregation === 'max' ? Math.max(current, input.value) : input.value;
    } else if (m.aggregation === 'sum') {
      const delta = input.value - current;
      events = consumptionEvents(orgId, input.customer_id, m, delta, 0, now, input.properties, opts.eventId, entityId);
      after = input.value;
    } else throw badRequest(`SET needs a metric aggregated by latest, max or sum; "${m.metric_id}" uses ${m.aggregation}`);
  } else {
    if (m.aggregation === 'latest' || m.aggregation === 'max') {
      after = current + input.value;
      events = consumptionEvents(orgId, input.customer_id, m, 0, after, now, input.properties, opts.eventId, entityId);
    } else {
      if (input.value < 0 && m.aggregation !== 'sum') throw badRequest('a negative delta needs a sum metric');
      events = consumptionEvents(orgId, input.customer_id, m, input.value, 0, now, input.properties, opts.eventId, entityId);
      after = current + input.value;
    }
  }
  const at = await deps.recorder.record(events).catch((err) => {
    deps.logger.error({ err }, 'report usage failed');
    throw new ApiError(503, 'usage_not_recorded', 'the usage could not be recorded; retry');
  });
  // Every instance's next check sees it at once (the ledger counts it until the aggregator passes it):
  // for counts and sums the delta, for gauges (latest, max) the new value.
  if (at) {
    const key: LedgerKey = {
      orgId,
      customerId: input.customer_id,
      metricId: m.metric_id,
      metricVersion: m.version,
      ...(evaluated.ledgerEntity ? { entityId: evaluated.ledgerEntity } : {}),
    };
    const value = ledgerAggregation(m.aggregation) === 'sum' ? after - current : after;
    await deps.ledger.record(key, value, now, at).catch((err) => {
      deps.logger.warn({ err: (err as Error).message }, 'usage recorded; the ledger entry failed (checks see it once aggregated)');
    });
  }
  afterUsage(deps, orgId, input.customer_id, feature.feature_id, ent.usage_limit !== null && after >= ent.usage_limit);
  return {
    customer_id: input.customer_id,
    ...(entityId !== undefined ? { entity_id: entityId } : {}),
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
    /** Only this entity's usage (any entity_id: events may name entities before they are created). */
    entity_id?: string;
    feature_id?: string;
    metric_id?: string;
    from: string;
    to: string;
    window?: 'hour' | 'day' | 'month' | null;
    time_zone?: string;
    group_by?: boolean;
  },
) {
  let metricId = q.metric_id;
  const timeZone = q.time_zone ?? 'UTC';
  if (!isTimeZone(timeZone))
    throw new ApiError(400, 'validation_error', `querystring/time_zone "${timeZone}" is not an IANA time zone (e.g. America/New_York)`, [
      { path: '/time_zone' },
    ]);
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
  const approxMs = window === 'hour' ? 3_600_000 : window === 'day' ? 86_400_000 : 28 * 86_400_000;
  if (window && (to.getTime() - from.getTime()) / approxMs > maxBuckets)
    throw badRequest(`range too long for window ${window} (at most ${maxBuckets} buckets)`);
  const def = metricStore.toDefinition(orgId, m);
  // metric_version_status: 'ready' = totals include events from before this version was defined;
  // 'backfilling'/'pending' = the aggregator is still recomputing older events (new events count at once).
  const [rows, versionStatus] = await Promise.all([
    deps.usage.query({
      metric: def,
      customerId: q.customer_id,
      ...(q.entity_id !== undefined ? { entityId: q.entity_id } : {}),
      from,
      to,
      window,
      timeZone,
      includeGroups: !!q.group_by,
    }),
    deps.usage.versionStatus(def),
  ]);
  return {
    customer_id: q.customer_id,
    ...(q.entity_id !== undefined ? { entity_id: q.entity_id } : {}),
    metric_id: m.metric_id,
    feature_id: q.feature_id ?? null,
    aggregation: m.aggregation,
    window,
    time_zone: timeZone,
    from: from.toISOString(),
    to: to.toISOString(),
    metric_version: m.version,
    metric_version_status: versionStatus,
    total: sumRows(def, rows),
    // exact: the decimal text for the CSV export (exports/usage.ts); the JSON schema (UsagePoint) leaves it out
    data: rows.map((r) => ({ window_start: r.windowStart?.toISOString() ?? null, groups: r.groups, value: r.value, exact: r.exact })),
  };
}
