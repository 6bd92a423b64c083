import { withTransaction, type PgClient, type PgPool } from '@meterline/core';
import type { BillingInterval, ResetPeriod } from '../periods.ts';
import type { PlanComponent } from '../pricing.ts';

export interface PlanEntitlement {
  feature_id: string;
  limit?: number | null;
  limit_type?: 'hard' | 'soft';
  reset_period?: ResetPeriod;
  /** The limit applies to each entity of the customer separately (entities/, README "Entities"). */
  per_entity?: boolean;
}
export interface PlanDefinition {
  name: string;
  interval: BillingInterval;
  currency: string;
  flat_fee: string;
  flat_fee_timing: 'in_advance' | 'in_arrears';
  trial_days: number;
  components: PlanComponent[];
  entitlements: PlanEntitlement[];
}
export interface PlanVersion extends PlanDefinition {
  plan_id: string;
  version: number;
  current_version: number;
  created_at: Date;
  version_created_at: Date;
  archived_at: Date | null;
  /** base, or add_on (attached to subscriptions with a quantity: addons/service.ts); set at creation */
  plan_type: 'base' | 'add_on';
}

const SELECT = `SELECT p.plan_id, v.version, p.current_version, v.name, v.billing_interval AS interval, v.currency, v.flat_fee::text AS flat_fee, v.flat_fee_timing,
  v.trial_days, v.components, v.entitlements, p.created_at, v.created_at AS version_created_at, p.archived_at, p.plan_type
  FROM plans p JOIN plan_versions v ON v.organization_id = p.organization_id AND v.plan_id = p.plan_id`;

export function planJson(r: PlanVersion) {
  return {
    plan_id: r.plan_id,
    version: r.version,
    current_version: r.current_version,
    name: r.name,
    interval: r.interval,
    currency: r.currency.trim(),
    flat_fee: r.flat_fee,
    flat_fee_timing: r.flat_fee_timing,
    trial_days: r.trial_days,
    components: r.components,
    entitlements: r.entitlements,
    created_at: r.created_at.toISOString(),
    version_created_at: r.version_created_at.toISOString(),
    archived_at: r.archived_at?.toISOString() ?? null,
    plan_type: r.plan_type,
  };
}

async function insertVersion(c: PgClient | PgPool, orgId: string, planId: string, version: number, d: PlanDefinition) {
  await c.query(
    `INSERT INTO plan_versions (organization_id, plan_id, version, name, billing_interval, currency, flat_fee, flat_fee_timing, trial_days, components, entitlements)
     VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, $10, $11)`,
    [
      orgId,
      planId,
      version,
      d.name,
      d.interval,
      d.currency,
      d.flat_fee,
      d.flat_fee_timing,
      d.trial_days,
      JSON.stringify(d.components),
      JSON.stringify(d.entitlements),
    ],
  );
}

/** Creates plan + version 1; false when the plan id exists. */
export async function insertPlan(
  pool: PgPool,
  orgId: string,
  planId: string,
  d: PlanDefinition,
  planType: PlanVersion['plan_type'] = 'base',
): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    const r = await c.query('INSERT INTO plans (organization_id, plan_id, plan_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      orgId,
      planId,
      planType,
    ]);
    if (!r.rowCount) return false;
    await insertVersion(c, orgId, planId, 1, d);
    return true;
  });
}

/** Appends a version computed from the current one under a row lock (concurrent edits serialize). */
export async function addVersion(
  pool: PgPool,
  orgId: string,
  planId: string,
  edit: (current: PlanVersion) => PlanDefinition | null,
): Promise<PlanVersion | null> {
  return withTransaction(pool, async (c) => {
    const lock = await c.query<{ current_version: number }>(
      'SELECT current_version FROM plans WHERE organization_id = $1 AND plan_id = $2 AND archived_at IS NULL FOR UPDATE',
      [orgId, planId],
    );
    if (!lock.rows[0]) return null;
    const cur = (
      await c.query<PlanVersion>(`${SELECT} WHERE p.organization_id = $1 AND p.plan_id = $2 AND v.version = p.current_version`, [
        orgId,
        planId,
      ])
    ).rows[0]!;
    const next = edit(cur);
    if (!next) return cur;
    const version = cur.current_version + 1;
    await insertVersion(c, orgId, planId, version, next);
    await c.query('UPDATE plans SET current_version = $3, updated_at = now() WHERE organization_id = $1 AND plan_id = $2', [
      orgId,
      planId,
      version,
    ]);
    return (
      await c.query<PlanVersion>(`${SELECT} WHERE p.organization_id = $1 AND p.plan_id = $2 AND v.version = $3`, [orgId, planId, version])
    ).rows[0]!;
  });
}

export async function getPlan(pool: PgPool | PgClient, orgId: string, planId: string, version?: number): Promise<PlanVersion | null> {
  const { rows } = await pool.query<PlanVersion>(
    `${SELECT} WHERE p.organization_id = $1 AND p.plan_id = $2 AND v.version = coalesce($3::int, p.current_version)`,
    [orgId, planId, version ?? null],
  );
  return rows[0] ?? null;
}

export async function listVersions(pool: PgPool, orgId: string, planId: string) {
  const { rows } = await pool.query<{ version: number; created_at: Date; subscriptions: string }>(
    `SELECT v.version, v.created_at, (SELECT count(*) FROM subscriptions s WHERE s.organization_id = v.organization_id AND s.plan_id = v.plan_id AND s.plan_version = v.version AND s.status <> 'ended') AS subscriptions
       FROM plan_versions v WHERE v.organization_id = $1 AND v.plan_id = $2 ORDER BY v.version`,
    [orgId, planId],
  );
  return rows.map((r) => ({ version: r.version, created_at: r.created_at.toISOString(), active_subscriptions: Number(r.subscriptions) }));
}

export async function listPlans(pool: PgPool, orgId: string, o: { limit: number; offset: number; include_archived: boolean }) {
  const { rows } = await pool.query<PlanVersion>(
    `${SELECT} WHERE p.organization_id = $1 AND v.version = p.current_version AND ($2::boolean OR p.archived_at IS NULL) ORDER BY p.created_at, p.plan_id LIMIT $3 OFFSET $4`,
    [orgId, o.include_archived, o.limit + 1, o.offset],
  );
  return rows;
}

export async function archivePlan(pool: PgPool, orgId: string, planId: string): Promise<boolean> {
  const r = await pool.query(
    'UPDATE plans SET archived_at = coalesce(archived_at, now()), updated_at = now() WHERE organization_id = $1 AND plan_id = $2',
    [orgId, planId],
  );
  return (r.rowCount ?? 0) > 0;
}
