// The invoice lifecycle after issue.ts has written a draft (services/billing/README.md, "Invoices"):
//
//   draft ──(grace over, aggregator caught up)──▶ finalized ──▶ paid | void | uncollectible
//     │                                            (numbered, content frozen: trigger in 0004)
//     └──▶ void
//
//   - refresh: while a usage invoice is a draft its usage lines are recomputed from ClickHouse (every
//     `refreshEveryMs`, default 5 min, at most one page of 200 drafts per worker pass, stalest first;
//     always when finalizing), so usage that arrives during the grace period shows on it.
//   - finalize: after grace_until the worker records the events topic's end offsets once, then waits
//     until the aggregator's watermarks pass them (usage/progress.ts): a stalled aggregator delays the
//     invoice instead of under-billing it. Then, in ONE transaction: the lines are refreshed, the
//     organization's next number is taken (its counter row stays locked until commit: gapless), the
//     status becomes finalized (or paid when the total is 0: nothing is owed), and billed_usage records
//     what was billed per period and usage line. POST /v1/invoices/:id/finalize does this at once
//     without waiting (usage counted later is billed as late usage, below).
//   - late usage: a draft of a subscription also carries `usage_adjustment` lines for its earlier
//     finalized periods (within the gateway's backfill window): the period's usage priced now, minus
//     billed_usage. Finalizing the draft moves billed_usage to the new totals in the same transaction,
//     so each late unit is billed exactly once, however often closes and refreshes run.
import { withTransaction, type PgClient } from '@meterline/core';
import type { Deps } from '../deps.ts';
import { ApiError, conflict, notFound } from '../http/errors.ts';
import { Decimal, fromMinor } from '../money.ts';
import { invoiceTotalMinor } from '../pricing.ts';
import * as plans from '../plans/store.ts';
import { componentUsage } from '../usage/billable.ts';
import { newId } from '../orgs/store.ts';
import { ADJUSTING_REASONS as ADJUSTS, USAGE_REASONS } from './reasons.ts';
import { applyCouponsAndCredits } from './settle.ts';
import { usageLines, type LineItem } from './price.ts';
import * as store from './store.ts';
import { invoiceEvent, invoiceFinalizedEvent } from '../webhooks/emit.ts';

type Line = store.InvoiceLine & { period_start?: string; period_end?: string };

/** A usage line's identity across recomputations: its metric and group values. */
export const lineKey = (l: { metric_id?: string; group?: Record<string, string> }) =>
  `${l.metric_id ?? ''}|${JSON.stringify(Object.entries(l.group ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;

const total = invoiceTotalMinor;

async function planOf(db: PgClient, orgId: string, inv: store.InvoiceRow) {
  if (!inv.plan_id || inv.plan_version === null) return null;
  return plans.getPlan(db, orgId, inv.plan_id, inv.plan_version);
}

/** The usage lines of an invoice's own period, priced now. */
async function currentUsageLines(deps: Deps, db: PgClient, orgId: string, inv: store.InvoiceRow): Promise<LineItem[] | null> {
  const plan = await planOf(db, orgId, inv);
  if (!plan) return null;
  const usage = await componentUsage(deps, orgId, inv.customer_id, plan, inv.period_start, inv.period_end);
  return usageLines(plan, usage).map((l) => ({
    ...l,
    period_start: inv.period_start.toISOString(),
    period_end: inv.period_end.toISOString(),
  }));
}

/** The metric versions each metric's usage lines of an invoice were priced with (lines before 0011 have none). */
function versionsByMetric(lines: readonly LineItem[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const l of lines) {
    if (l.kind !== 'usage' || !l.metric_id || typeof l.metric_version !== 'number') continue;
    const set = out.get(l.metric_id) ?? new Set<number>();
    set.add(l.metric_version);
    out.set(l.metric_id, set);
  }
  return out;
}

/** The metric id of a lineKey (`<metric_id>|<JSON of the group>`). */
const metricOfKey = (key: string) => key.slice(0, key.indexOf('|['));

/** Late usage of a subscription's earlier finalized periods, not yet billed, as adjustment lines. */
async function adjustmentLines(
  deps: Deps,
  db: PgClient,
  orgId: string,
  draft: Pick<store.InvoiceRow, 'subscription_id' | 'period_start' | 'currency'>,
  now: Date,
) {
  const lines: store.AdjustmentLine[] = [];
  const updates: { period_start: Date; rows: store.BilledUsage[] }[] = [];
  if (!draft.subscription_id) return { lines, updates };
  const horizon = new Date(now.getTime() - deps.config.gateway.backfillWindowMs);
  const cur = draft.currency.trim();
  for (const prior of await store.billedPeriods(db, orgId, draft.subscription_id, draft.period_start, horizon)) {
    const fresh = await currentUsageLines(deps, db, orgId, prior);
    if (!fresh) continue;
    const billed = new Map((await store.billedUsage(db, orgId, draft.subscription_id, prior.period_start)).map((b) => [b.line_key, b]));
    const keys = new Set([...billed.keys(), ...fresh.filter((l) => l.kind === 'usage').map(lineKey)]);
    // A metric definition is not retroactive: a finalized period stays priced with the version it was
    // priced with. Re-reading it under a newer version would turn the definition change itself into
    // "late usage" (a new filter counting fewer events would credit every earlier period; a new group_by
    // would credit the old groups in full and bill the new ones again). So a metric whose current version
    // differs from the one that priced the period is left alone - every line key of it, on both sides.
    // Late events of such a period are not billed (the aggregator maintains only the current version);
    // counted in meterline_billing_late_usage_skipped_total.
    const pricedWith = versionsByMetric(prior.line_items as LineItem[]);
    const currentVersions = versionsByMetric(fresh);
    const superseded = (metricId: string) => {
      const was = pricedWith.get(metricId);
      const cur = currentVersions.get(metricId);
      return was !== undefined && cur !== undefined && [...was, ...cur].some((v) => !was.has(v) || !cur.has(v));
    };
    const rows: store.BilledUsage[] = [];
    for (const key of keys) {
      if (superseded(metricOfKey(key))) {
        deps.metrics.lateUsageSkipped.inc();
        continue;
      }
      const now_ = fresh.find((l) => l.kind === 'usage' && lineKey(l) === key);
      const was = billed.get(key);
      const q = new Decimal(now_?.quantity ?? 0).minus(new Decimal(was?.quantity ?? 0));
      const a = BigInt(now_?.amount_minor ?? '0') - BigInt(was?.amount_minor ?? '0');
      if (q.isZero() && a === 0n) continue;
      const label = `${prior.period_start.toISOString().slice(0, 10)} – ${prior.period_end.toISOString().slice(0, 10)}`;
      lines.push({
        kind: 'usage_adjustment',
        description: `Late usage: ${now_?.description ?? key} (${label}, invoice ${prior.number ?? prior.invoice_id})`,
        ...(now_?.metric_id ? { metric_id: now_.metric_id } : {}),
        ...(now_?.metric_version !== undefined ? { metric_version: now_.metric_version } : {}),
        ...(now_?.group ? { group: now_.group } : {}),
        quantity: q.toFixed(),
        amount: fromMinor(a.toString(), cur),
        amount_minor: a.toString(),
        period_start: prior.period_start.toISOString(),
        period_end: prior.period_end.toISOString(),
      });
      rows.push({ line_key: key, quantity: now_?.quantity ?? '0', amount_minor: now_?.amount_minor ?? '0' });
    }
    if (rows.length) updates.push({ period_start: prior.period_start, rows });
  }
  return { lines, updates };
}

/** A draft's lines recomputed: its fixed lines, its period's usage priced now, late usage of earlier periods. */
async function recompute(deps: Deps, db: PgClient, orgId: string, inv: store.InvoiceRow, now: Date) {
  const fixed = inv.line_items.filter((l) => l.kind !== 'usage' && l.kind !== 'usage_adjustment') as Line[];
  const usage = USAGE_REASONS.includes(inv.reason)
    ? ((await currentUsageLines(deps, db, orgId, inv)) ?? inv.line_items.filter((l) => l.kind === 'usage'))
    : [];
  const adj = ADJUSTS.includes(inv.reason) ? await adjustmentLines(deps, db, orgId, inv, now) : { lines: [], updates: [] };
  // this period's fees, its usage, late usage of earlier periods, then fees of the next period
  const thisPeriod = fixed.filter((l) => !l.period_start || Date.parse(l.period_start) < inv.period_end.getTime());
  const nextPeriod = fixed.filter((l) => l.period_start && Date.parse(l.period_start) >= inv.period_end.getTime());
  const lines: Line[] = [...thisPeriod, ...(usage as Line[]), ...adj.lines, ...nextPeriod];
  const own: store.BilledUsage[] = (usage as LineItem[])
    .filter((l) => l.kind === 'usage')
    .map((l) => ({ line_key: lineKey(l), quantity: l.quantity, amount_minor: l.amount_minor }));
  return { lines, total: total(lines), own, updates: adj.updates };
}

/** Recomputes one draft's lines (the worker, during the grace period). Skips rows another transaction holds. */
export async function refreshDraft(deps: Deps, orgId: string, invoiceId: string, now: Date): Promise<boolean> {
  return withTransaction(deps.pool, async (db) => {
    const inv = await store.lockInvoice(db, orgId, invoiceId, 'skip');
    if (inv?.status !== 'draft') return false;
    const r = await recompute(deps, db, orgId, inv, now);
    await store.saveDraftLines(db, orgId, invoiceId, r.lines, r.total, now);
    return true;
  });
}

export type FinalizeOutcome = 'finalized' | 'waiting_for_usage' | 'locked' | 'not_draft';

/**
 * Finalizes a draft whose grace period is over (the worker), or at once (`early`: the API). The worker
 * waits until the aggregator has counted everything acknowledged when the grace period was over.
 */
export async function finalizeDraft(deps: Deps, orgId: string, invoiceId: string, now: Date, early = false): Promise<FinalizeOutcome> {
  // the end offsets are recorded in their own transaction, so the wait survives restarts
  if (!early) {
    const pending = await withTransaction(deps.pool, async (db) => {
      const inv = await store.lockInvoice(db, orgId, invoiceId, 'skip');
      if (!inv) return 'locked' as const;
      if (inv.status !== 'draft') return 'not_draft' as const;
      if (!ADJUSTS.includes(inv.reason)) return null;
      let offsets = inv.finalize_offsets;
      if (!offsets) {
        offsets = await deps.progress.endOffsets();
        await store.saveFinalizeOffsets(db, orgId, invoiceId, offsets);
      }
      return (await deps.progress.aggregatedUpTo(offsets)) ? null : ('waiting_for_usage' as const);
    });
    if (pending) return pending;
  }
  return withTransaction(deps.pool, async (db) => {
    const inv = await store.lockInvoice(db, orgId, invoiceId, early ? 'update' : 'skip');
    if (!inv) return 'locked';
    if (inv.status !== 'draft') return 'not_draft';
    const r = await recompute(deps, db, orgId, inv, now);
    await finalizeWritten(db, orgId, inv, r.lines, now);
    if (inv.subscription_id) {
      if (r.own.length) await store.recordBilledUsage(db, orgId, inv.subscription_id, inv.period_start, r.own, invoiceId);
      for (const u of r.updates) await store.recordBilledUsage(db, orgId, inv.subscription_id, u.period_start, u.rows, invoiceId);
    }
    return 'finalized';
  });
}

export interface DraftsResult {
  refreshed: number;
  finalized: number;
  waiting: number;
  failed: number;
}

/** One worker pass over drafts: refresh those in their grace period, finalize those past it. */
export async function runDrafts(
  deps: Deps,
  now: Date,
  opts: { organizationId?: string; refreshEveryMs?: number; batchSize?: number } = {},
) {
  const out: DraftsResult = { refreshed: 0, finalized: 0, waiting: 0, failed: 0 };
  const limit = opts.batchSize ?? 200;
  const org = opts.organizationId ?? null;
  const refreshBefore = new Date(now.getTime() - (opts.refreshEveryMs ?? 300_000));
  for (const kind of ['finalize', 'refresh'] as const) {
    const seen = new Set<string>();
    // every draft past its grace is finalized in this pass; refreshing (a convenience: finalization
    // recomputes anyway) takes at most one page per pass, the stalest first, to bound ClickHouse load
    for (let pages = 0; kind === 'finalize' || pages < 1; pages++) {
      const page = (await store.draftsDue(deps.pool, now, kind, refreshBefore, limit, org)).filter((d) => !seen.has(d.invoice_id));
      if (page.length === 0) break;
      for (const d of page) {
        seen.add(d.invoice_id);
        try {
          if (kind === 'refresh') {
            if (await refreshDraft(deps, d.organization_id, d.invoice_id, now)) out.refreshed++;
          } else {
            const r = await finalizeDraft(deps, d.organization_id, d.invoice_id, now);
            if (r === 'finalized') out.finalized++;
            else if (r === 'waiting_for_usage') out.waiting++;
          }
        } catch (err) {
          out.failed++;
          deps.logger.error({ err, organization: d.organization_id, invoice: d.invoice_id, kind }, 'invoice draft pass failed');
        }
      }
      if (page.length < limit) break;
    }
  }
  return out;
}

/** API transitions of one invoice. */
export async function transition(
  deps: Deps,
  orgId: string,
  invoiceId: string,
  to: 'finalized' | 'paid' | 'void' | 'uncollectible',
  now: Date,
): Promise<store.InvoiceRow> {
  if (to === 'finalized') {
    const r = await finalizeDraft(deps, orgId, invoiceId, now, true);
    if (r === 'not_draft') {
      const inv = await store.getInvoice(deps.pool, orgId, invoiceId);
      if (!inv) throw notFound('invoice', invoiceId);
      throw conflict(`invoice "${invoiceId}" is ${inv.status}; only a draft can be finalized`);
    }
    if (r === 'locked') throw notFound('invoice', invoiceId);
  } else {
    await withTransaction(deps.pool, async (db) => {
      const inv = await store.lockInvoice(db, orgId, invoiceId, 'update');
      if (!inv) throw notFound('invoice', invoiceId);
      const allowed: Record<typeof to, store.InvoiceStatus[]> = {
        paid: ['finalized', 'uncollectible'],
        void: ['draft', 'finalized', 'uncollectible'],
        uncollectible: ['finalized'],
      };
      if (!allowed[to].includes(inv.status))
        throw new ApiError(409, 'invalid_state', `invoice "${invoiceId}" is ${inv.status}; it cannot become ${to}`, [
          { path: '/status', allowed_from: allowed[to] },
        ]);
      await store.setStatus(db, orgId, invoiceId, to, now);
      if (to !== 'uncollectible') await invoiceEvent(db, orgId, to === 'paid' ? 'invoice.paid' : 'invoice.voided', invoiceId);
    });
  }
  const inv = await store.getInvoice(deps.pool, orgId, invoiceId);
  if (!inv) throw notFound('invoice', invoiceId);
  return inv;
}

/**
 * Late usage of ended subscriptions: they get no further period invoice to carry adjustment lines, so
 * each one ended within the gateway's backfill window is checked at most every `everyMs` (1 h); a
 * difference against billed_usage becomes a `usage_adjustment` draft of its own (finalized by the next
 * pass like any draft, after the aggregator has caught up). A subscription with an open draft is left to
 * that draft.
 */
export async function runLateUsageSweep(
  deps: Deps,
  now: Date,
  opts: { organizationId?: string; everyMs?: number; batchSize?: number } = {},
): Promise<{ checked: number; invoices: number }> {
  const horizon = new Date(now.getTime() - deps.config.gateway.backfillWindowMs);
  const checkedBefore = new Date(now.getTime() - (opts.everyMs ?? 3_600_000));
  const { rows } = await deps.pool.query<{ organization_id: string; subscription_id: string }>(
    `SELECT organization_id, subscription_id FROM subscriptions
      WHERE status = 'ended' AND ended_at > $1 AND (late_usage_checked_at IS NULL OR late_usage_checked_at < $2)
        AND ($3::text IS NULL OR organization_id = $3)
      ORDER BY late_usage_checked_at NULLS FIRST, organization_id, subscription_id LIMIT $4`,
    [horizon, checkedBefore, opts.organizationId ?? null, opts.batchSize ?? 100],
  );
  const out = { checked: 0, invoices: 0 };
  for (const r of rows) {
    const created = await withTransaction(deps.pool, async (db) => {
      const { rows: locked } = await db.query<{ customer_id: string; currency: string }>(
        `SELECT s.customer_id, c.currency FROM subscriptions s JOIN customers c USING (organization_id, customer_id)
          WHERE s.organization_id = $1 AND s.subscription_id = $2 FOR UPDATE OF s SKIP LOCKED`,
        [r.organization_id, r.subscription_id],
      );
      const sub = locked[0];
      if (!sub) return false;
      await db.query('UPDATE subscriptions SET late_usage_checked_at = $3 WHERE organization_id = $1 AND subscription_id = $2', [
        r.organization_id,
        r.subscription_id,
        now,
      ]);
      const open = await db.query(
        "SELECT 1 FROM invoices WHERE organization_id = $1 AND subscription_id = $2 AND status = 'draft' LIMIT 1",
        [r.organization_id, r.subscription_id],
      );
      if (open.rowCount) return false;
      const adj = await adjustmentLines(
        deps,
        db,
        r.organization_id,
        { subscription_id: r.subscription_id, period_start: now, currency: sub.currency },
        now,
      );
      if (adj.lines.length === 0) return false;
      await store.insertInvoice(db, r.organization_id, {
        invoice_id: newId('inv'),
        customer_id: sub.customer_id,
        subscription_id: r.subscription_id,
        currency: sub.currency.trim(),
        period_start: now,
        period_end: now,
        reason: 'usage_adjustment',
        total_minor: total(adj.lines).toString(),
        line_items: adj.lines,
        plan_id: null,
        plan_version: null,
        grace_until: now,
      });
      return true;
    });
    out.checked++;
    if (created) out.invoices++;
  }
  return out;
}

/**
 * The finalization of an invoice row written in this transaction (a draft being finalized, or an invoice
 * without usage finalized as it is created): coupons and credits (settle.ts), the organization's next
 * number, status finalized — or paid when nothing is owed (total 0).
 */
export async function finalizeWritten(
  db: PgClient,
  orgId: string,
  inv: { invoice_id: string; customer_id: string; subscription_id: string | null; currency: string },
  lines: store.InvoiceLine[],
  now: Date,
): Promise<void> {
  const settled = await applyCouponsAndCredits(db, orgId, inv, lines, now);
  await store.saveDraftLines(db, orgId, inv.invoice_id, settled.lines, settled.total, now);
  const number = await store.nextInvoiceNumber(db, orgId);
  const status = settled.total === 0n ? 'paid' : 'finalized';
  await store.markFinalized(db, orgId, inv.invoice_id, number, status, now);
  await invoiceFinalizedEvent(db, orgId, inv.invoice_id, status);
}
