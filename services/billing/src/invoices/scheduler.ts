// The only writer of period transitions: every renewalIntervalMs (default 30 s; 0 = no loop, tests call
// runDueSubscriptions themselves, or POST /admin/organizations/:id/billing_run with an instant) it lists
// due subscriptions and closes each in its own transaction (issue.ts closeSubscription with SKIP LOCKED),
// which writes draft invoices; then it refreshes drafts in their grace period and finalizes the others
// (lifecycle.ts). Several billing instances may run it at once: a row one
// instance is closing is skipped by the others, and a row closed already is no longer due (see issue.ts).
// Ticks never overlap within an instance (the next one is scheduled when the previous run finished).
import type { Deps } from '../deps.ts';
import { dueSubscriptions, type DueRef } from './close.ts';
import { closeSubscription } from './issue.ts';
import { runDrafts, runLateUsageSweep } from './lifecycle.ts';

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

/** One pass over every subscription due at `now` (opts.organizationId: only that organization's). */
export async function runDueSubscriptions(
  deps: Deps,
  now: Date = deps.now(),
  opts: { batchSize?: number; organizationId?: string } = {},
): Promise<RunResult> {
  const batch = opts.batchSize ?? 200;
  const out: RunResult = { due: 0, advanced: 0, invoices: 0, refreshed: 0, finalized: 0, waiting: 0, skipped: 0, failed: 0 };
  let after: DueRef | null = null;
  for (;;) {
    const page = await dueSubscriptions(deps.pool, now, after, batch, opts.organizationId ?? null);
    for (const d of page) {
      out.due++;
      try {
        const r = await closeSubscription(deps, d.organization_id, d.subscription_id, now, 'skip');
        if (!r) out.skipped++;
        else if (r.changed) {
          out.advanced++;
          out.invoices += r.invoices.length;
        }
      } catch (err) {
        out.failed++;
        deps.logger.error(
          { err, organization: d.organization_id, subscription: d.subscription_id },
          'closing a subscription period failed',
        );
      }
    }
    if (page.length < batch) break;
    after = page[page.length - 1]!;
  }
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
