// The only writer of period transitions: every renewalIntervalMs (default 30 s; 0 = no loop, tests call
// runDueSubscriptions themselves, or POST /admin/organizations/:id/billing_run with an instant) it lists
// due subscriptions a page at a time and closes them (closeDueSubscriptions), which writes draft
// invoices; then it refreshes drafts in their grace period and finalizes the others (lifecycle.ts).
//
// Closing a page is batched and parallel:
//   1. the page's rows are read without locks (close.ts dueSubscriptions) and their elapsed periods
//      computed (the same pure elapsedPeriods the close uses);
//   2. the usage of every (customer, period) of the page is read with few queries: one per metric
//      version and period range, for all its customers at once (usage/billable.ts usageBatch);
//   3. the subscriptions are closed `concurrency` at a time, each in its own transaction as before
//      (issue.ts closeSubscription with SKIP LOCKED: lock, re-read, close, advance, commit together).
//      A close uses the prefetched usage only for exactly the (customer, plan version, from, to) it
//      closes; if the row changed in between (a write request), it reads its usage itself.
// A close that fails is rolled back, its error recorded and the subscription set aside with backoff
// (close.ts recordCloseFailure; meterline_billing_close_failures_total), so the rest of the queue closes.
// Several billing instances may run it at once: a row one instance is closing is skipped by the others,
// and a row closed already is no longer due (see issue.ts). Ticks never overlap within an instance.
import type { Deps } from '../deps.ts';
import * as plans from '../plans/store.ts';
import { eachLimit, usageBatch, type UsageNeed } from '../usage/billable.ts';
import { countCloseFailures, dueSubscriptions, elapsedPeriods, recordCloseFailure, type DueRef } from './close.ts';
import { closeSubscription, MAX_CLOSES_PER_TRANSACTION } from './issue.ts';
import { runDrafts, runLateUsageSweep } from './lifecycle.ts';
import { evaluateAll } from '../alerts/service.ts';
import { usageStart } from './price.ts';

export interface RunResult {
  /** Due subscriptions seen. */
  due: number;
  /** Subscriptions this run changed (started, renewed or ended). */
  advanced: number;
  /** Invoices (drafts) this run created. */
  invoices: number;
  /** Drafts whose lines this run recomputed (grace period). */
  refreshed: number;
  /** Drafts this run finalized. */
  finalized: number;
  /** Drafts past their grace period waiting for the aggregator to catch up. */
  waiting: number;
  /** Rows another transaction held (another instance closing them, or a write request): left for it / the next run. */
  skipped: number;
  failed: number;
}

export interface CloseOptions {
  /** Due subscriptions per page (one usage batch each); default 1000. */
  batchSize?: number;
  organizationId?: string;
  /** Close transactions at a time (each holds a pool connection); default 8. */
  concurrency?: number;
}

export type CloseResult = Pick<RunResult, 'due' | 'advanced' | 'invoices' | 'skipped' | 'failed'> & {
  /** Usage queries sent for the batches (ClickHouse queries with the real reader). */
  usageQueries: number;
};

/** Closes every subscription due at `now` (opts.organizationId: only that organization's); no draft pass. */
export async function closeDueSubscriptions(deps: Deps, now: Date = deps.now(), opts: CloseOptions = {}): Promise<CloseResult> {
  const batch = opts.batchSize ?? 1000;
  const concurrency = opts.concurrency ?? 8;
  const out: CloseResult = { due: 0, advanced: 0, invoices: 0, skipped: 0, failed: 0, usageQueries: 0 };
  let after: DueRef | null = null;
  for (;;) {
    const page = await dueSubscriptions(deps.pool, now, after, batch, opts.organizationId ?? null);
    out.due += page.length;
    // the page's plan versions, once each
    const planOf = new Map<string, Promise<plans.PlanVersion | null>>();
    const planKey = (d: (typeof page)[number]) => `${d.organization_id}\u0000${d.plan_id}\u0000${d.plan_version}`;
    for (const d of page)
      if (!planOf.has(planKey(d))) planOf.set(planKey(d), plans.getPlan(deps.pool, d.organization_id, d.plan_id, d.plan_version));
    const needs: UsageNeed[] = [];
    for (const d of page) {
      const plan = await planOf.get(planKey(d))!;
      if (!plan) continue;
      for (const c of elapsedPeriods(d, now, MAX_CLOSES_PER_TRANSACTION).closes)
        needs.push({
          orgId: d.organization_id,
          customerId: d.customer_id,
          plan,
          from: usageStart({ current_period_start: c.periodStart, plan_started_at: c.before.plan_started_at }),
          to: c.closeAt,
        });
    }
    const usage = await usageBatch(deps, needs);
    out.usageQueries += usage.queries;
    await eachLimit(page, concurrency, async (d) => {
      try {
        const plan = (await planOf.get(planKey(d))) ?? undefined;
        const r = await closeSubscription(deps, d.organization_id, d.subscription_id, now, 'skip', {
          usage,
          plan,
          clearFailure: d.close_attempts > 0,
        });
        if (!r) out.skipped++;
        else if (r.changed) {
          out.advanced++;
          out.invoices += r.invoices.length;
          deps.metrics.closedSubscriptions.inc();
        }
      } catch (err) {
        out.failed++;
        deps.metrics.closeFailures.inc();
        const set = await recordCloseFailure(
          deps.pool,
          d.organization_id,
          d.subscription_id,
          now,
          (err as Error)?.message ?? String(err),
        ).catch((e) => deps.logger.error({ err: e }, 'recording a failed close failed'));
        deps.logger.error(
          {
            err,
            organization: d.organization_id,
            subscription: d.subscription_id,
            attempts: set?.close_attempts,
            retry_at: set?.close_retry_at,
          },
          'closing a subscription period failed; set aside until its retry time',
        );
      }
    });
    if (page.length < batch) break;
    after = page[page.length - 1]!;
  }
  deps.metrics.closesFailing.set(await countCloseFailures(deps.pool));
  return out;
}

/** One pass over every subscription due at `now` (opts.organizationId: only that organization's). */
export async function runDueSubscriptions(deps: Deps, now: Date = deps.now(), opts: CloseOptions = {}): Promise<RunResult> {
  const c = await closeDueSubscriptions(deps, now, opts);
  const out: RunResult = {
    due: c.due,
    advanced: c.advanced,
    invoices: c.invoices,
    refreshed: 0,
    finalized: 0,
    waiting: 0,
    skipped: c.skipped,
    failed: c.failed,
  };
  // late usage of ended subscriptions becomes adjustment drafts; then the drafts: refresh those in their
  // grace period, finalize those past it (lifecycle.ts)
  const late = await runLateUsageSweep(deps, now, { organizationId: opts.organizationId });
  out.invoices += late.invoices;
  const d = await runDrafts(deps, now, { organizationId: opts.organizationId });
  out.refreshed = d.refreshed;
  out.finalized = d.finalized;
  out.waiting = d.waiting;
  out.failed += d.failed;
  if (out.advanced || out.failed || out.finalized) deps.logger.info(out, 'billing periods closed');
  return out;
}

export interface Scheduler {
  stop(): Promise<void>;
}

/** Starts the loop; intervalMs <= 0 starts nothing (stop() still works). */
export function startScheduler(deps: Deps, intervalMs: number): Scheduler {
  if (!(intervalMs > 0)) return { stop: async () => undefined };
  let stopped = false;
  let running: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;
  const tick = () => {
    running = runDueSubscriptions(deps)
      .catch((err) => deps.logger.error({ err }, 'billing scheduler run failed'))
      // usage alerts on usage that came through the gateway (checks and reports evaluate their own)
      .then(() => evaluateAll(deps))
      .catch((err) => deps.logger.error({ err }, 'usage alert pass failed'))
      .finally(() => {
        if (!stopped) schedule();
      });
  };
  const schedule = () => {
    timer = setTimeout(tick, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
