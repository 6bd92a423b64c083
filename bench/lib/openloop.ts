// Open-loop request driver: request i is due at start + i / rate and is sent then, whether or not the
// earlier ones were answered. Latency = response time - INTENDED send time, so a server (or a client
// event loop) that falls behind shows up as latency instead of as a lower request rate ("coordinated
// omission" in a closed loop hides exactly that).
//
// Bounds: at most `maxOutstanding` requests unanswered (default 1,000 = 0.5 s of 2,000 req/s). A request
// due while that many are outstanding is NOT sent and counts as an error (`overflow`), never silently
// skipped. `send` must time out by itself (the callers use `timeoutMs`); an answer later than `timeoutMs`
// after its intended time is an error (`timeout`), and requests still unanswered `timeoutMs` + 1 s after
// the last one was due are counted as `timeout` too. Only successful answers give latency samples; the
// `p99WithErrorsMs` figure counts every error as an infinitely slow answer (what a target is judged by).
import { nowMs, percentile, sleep, summarize, type LatencySummary } from './stats.ts';

export interface SendOutcome {
  ok: boolean;
  /** e.g. the HTTP status, or 'denied', 'error'; counted in statusCounts */
  status: string;
}

export interface OpenLoopResult {
  ratePerSec: number;
  durationMs: number;
  maxOutstanding: number;
  timeoutMs: number;
  intended: number;
  ok: number;
  errors: { overflow: number; timeout: number; failed: number };
  errorCount: number;
  statusCounts: Record<string, number>;
  /** successful answers per second over the sending window */
  achievedPerSec: number;
  /** the slowest the scheduler ran behind the schedule when issuing a request (client-side lag) */
  maxIssueLagMs: number;
  latency: LatencySummary;
  p99WithErrorsMs: number;
}

export async function openLoop(opts: {
  ratePerSec: number;
  durationMs: number;
  send: (i: number) => Promise<SendOutcome>;
  maxOutstanding?: number;
  timeoutMs?: number;
}): Promise<OpenLoopResult> {
  const { ratePerSec, durationMs, send } = opts;
  const maxOutstanding = opts.maxOutstanding ?? 1_000;
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const total = Math.floor((ratePerSec * durationMs) / 1000);
  const interval = 1000 / ratePerSec;
  const samples = new Float64Array(total);
  let nSamples = 0;
  const errors = { overflow: 0, timeout: 0, failed: 0 };
  const statusCounts: Record<string, number> = {};
  let outstanding = 0;
  let ok = 0;
  let maxIssueLagMs = 0;
  let lastOkAt = 0;
  let drained: (() => void) | null = null;
  let closed = false;

  const issue = (i: number, intendedAt: number) => {
    if (outstanding >= maxOutstanding) {
      errors.overflow++;
      statusCounts.overflow = (statusCounts.overflow ?? 0) + 1;
      return;
    }
    outstanding++;
    const settle = (o: SendOutcome) => {
      if (closed) return; // answered after the drain deadline: already counted as a timeout
      const at = nowMs();
      outstanding--;
      const ms = at - intendedAt;
      if (!o.ok) {
        errors.failed++;
        statusCounts[o.status] = (statusCounts[o.status] ?? 0) + 1;
      } else if (ms > timeoutMs) {
        errors.timeout++;
        statusCounts.timeout = (statusCounts.timeout ?? 0) + 1;
      } else {
        ok++;
        lastOkAt = at;
        samples[nSamples++] = ms;
        statusCounts[o.status] = (statusCounts[o.status] ?? 0) + 1;
      }
      if (outstanding === 0) drained?.();
    };
    send(i).then(settle, () => settle({ ok: false, status: 'error' }));
  };

  const t0 = nowMs();
  let i = 0;
  while (i < total) {
    const now = nowMs();
    while (i < total && t0 + i * interval <= now) {
      const intendedAt = t0 + i * interval;
      maxIssueLagMs = Math.max(maxIssueLagMs, now - intendedAt);
      issue(i, intendedAt);
      i++;
    }
    // 1 ms timer ticks: cheap on a 2-core machine (no busy spin); the lag is inside the measured latency
    if (i < total) await sleep(1);
  }
  const lastDue = t0 + (total - 1) * interval;
  if (outstanding > 0) {
    await Promise.race([new Promise<void>((r) => (drained = r)), sleep(Math.max(0, lastDue + timeoutMs + 1_000 - nowMs()))]);
  }
  // whatever is still unanswered now will count as a timeout (a late answer is ignored below)
  const unanswered = outstanding;
  errors.timeout += unanswered;
  if (unanswered) statusCounts.timeout = (statusCounts.timeout ?? 0) + unanswered;
  closed = true;
  const latencies = Array.from(samples.subarray(0, nSamples));
  const errorCount = errors.overflow + errors.timeout + errors.failed;
  const sorted = [...latencies].sort((a, b) => a - b);
  // errors are infinitely slow answers at the end of the distribution
  const withErrors = errorCount === 0 ? sorted : [...sorted, ...new Array<number>(errorCount).fill(Number.POSITIVE_INFINITY)];
  const windowMs = Math.max(durationMs, (lastOkAt || nowMs()) - t0);
  return {
    ratePerSec,
    durationMs,
    maxOutstanding,
    timeoutMs,
    intended: total,
    ok,
    errors,
    errorCount,
    statusCounts,
    achievedPerSec: ok / (windowMs / 1000),
    maxIssueLagMs: Math.round(maxIssueLagMs * 1000) / 1000,
    latency: summarize(latencies),
    p99WithErrorsMs: Math.round(percentile(withErrors, 99) * 1000) / 1000,
  };
}
