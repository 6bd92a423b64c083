// Consuming entitlement checks against several billing instances during the cluster drill — the same
// bookkeeping and verdicts as test/faults/entitlement-drill.ts (issue #11's check guarantee), reduced to
// what the cluster drill needs (that drill's checker is internal to its own run): open loop at a fixed
// rate, round-robin over the billing instances and the active customers, each answer classified.
// Verdicts per customer after settling: usage ≤ hard limit (no over-grant), usage ≥ units answered
// allowed:true (no granted unit lost), usage ≤ granted + indeterminate units (nothing from nowhere),
// and billing's usage equals the raw events on every replica.
import http from 'node:http';
import { sleep } from '../../bench/lib/stats.ts';

export const CHECK_FEATURE = 'api';
export const CHECK_METRIC = 'api_calls';
export const CHECK_EVENT = 'api_call';
export const CHECK_PLAN = 'cluster_drill_plan';

export interface Answer {
  status: number;
  body: string;
  errCode?: string;
  timedOut?: boolean;
}

export function httpCall(
  agent: http.Agent,
  base: URL,
  apiKey: string,
  method: 'GET' | 'POST',
  p: string,
  body: unknown,
  timeoutMs: number,
): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: p,
        method,
        agent,
        headers: {
          'x-api-key': apiKey,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err: NodeJS.ErrnoException) => done({ status: 0, body: String(err), errCode: err.code ?? 'response_error' }));
      },
    );
    const timer = setTimeout(() => {
      done({ status: 0, body: 'timeout', timedOut: true });
      req.destroy(new Error('timeout'));
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => done({ status: 0, body: String(err), errCode: err.code ?? err.message }));
    req.end(payload);
  });
}

/** Small JSON client for setup and settling reads. */
export class Api {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}
  async call(method: 'GET' | 'POST', p: string, body?: unknown): Promise<{ status: number; json: any }> {
    const r = await httpCall(this.agent, new URL(this.baseUrl), this.apiKey, method, p, body, 15_000);
    let json: any = null;
    try {
      json = JSON.parse(r.body);
    } catch {
      json = r.body;
    }
    return { status: r.status, json };
  }
  async post(p: string, body: unknown): Promise<any> {
    const r = await this.call('POST', p, body);
    if (r.status !== 200 && r.status !== 201) throw new Error(`POST ${p} answered ${r.status}: ${JSON.stringify(r.json)}`);
    return r.json;
  }
  close(): void {
    this.agent.destroy();
  }
}

/** Catalog for the checks: a count metric, a metered feature, a plan with a hard limit, subscribed customers. */
export async function setupCheckCatalog(api: Api, customers: readonly string[], limit: number): Promise<void> {
  await api.post('/v1/metrics', { metric_id: CHECK_METRIC, event_name: CHECK_EVENT, aggregation: 'count' });
  await api.post('/v1/features', { feature_id: CHECK_FEATURE, type: 'metered', metric_id: CHECK_METRIC });
  await api.post('/v1/plans', {
    plan_id: CHECK_PLAN,
    name: 'Cluster drill plan',
    interval: 'month',
    entitlements: [{ feature_id: CHECK_FEATURE, limit, limit_type: 'hard', reset_period: 'billing_period' }],
  });
  for (const c of customers) {
    await api.post('/v1/customers', { customer_id: c });
    await api.post('/v1/subscriptions', { customer_id: c, plan_id: CHECK_PLAN });
  }
}

export type Outcome = 'granted' | 'denied' | 'unavailable' | 'server_error' | 'unexpected' | 'refused' | 'indeterminate' | 'timeout';

export interface CheckRecord {
  customer: number;
  instance: number;
  units: number;
  sentAt: number;
  latencyMs: number;
  outcome: Outcome;
  status: number;
  code: string | null;
  reason: string | null;
}

export class CheckStreamer {
  readonly records: CheckRecord[] = [];
  skipped = 0;
  activeCustomers = 1;
  readonly inFlight: number[];
  /** instances the drill killed and has not restarted yet (a timeout there is indeterminate, not a hang) */
  readonly down = new Set<number>();
  readonly lastOkAt: number[];
  readonly exhaustedAt: (number | null)[];
  private readonly outstanding = new Set<Promise<void>>();
  private readonly agents: http.Agent[];
  private readonly bases: URL[];
  private seq = 0;
  private custSeq = 0;
  private timer: NodeJS.Timeout | null = null;
  startedAt = 0;

  constructor(
    urls: readonly string[],
    private readonly apiKey: string,
    readonly customers: readonly string[],
    private readonly o: { checksPerSec: number; maxOutstanding: number; requestTimeoutMs: number },
  ) {
    this.agents = urls.map(() => new http.Agent({ keepAlive: true, maxSockets: 64 }));
    this.bases = urls.map((u) => new URL(u));
    this.inFlight = urls.map(() => 0);
    this.lastOkAt = urls.map(() => 0);
    this.exhaustedAt = customers.map(() => null);
  }

  start(): void {
    this.startedAt = Date.now();
    let sent = 0;
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - this.startedAt) * this.o.checksPerSec) / 1000);
      while (sent < due) {
        sent++;
        if (this.outstanding.size >= this.o.maxOutstanding) this.skipped++;
        else this.sendOne();
      }
    }, 10);
  }

  private sendOne(): void {
    const n = this.seq++;
    const instance = n % this.bases.length;
    const customer = this.custSeq++ % this.activeCustomers;
    const units = 1 + ((n * 7 + Math.floor(n / 3)) % 3);
    const rec: CheckRecord = {
      customer,
      instance,
      units,
      sentAt: Date.now(),
      latencyMs: 0,
      outcome: 'indeterminate',
      status: 0,
      code: null,
      reason: null,
    };
    this.records.push(rec);
    this.inFlight[instance]!++;
    const wasDown = this.down.has(instance);
    const p = httpCall(
      this.agents[instance]!,
      this.bases[instance]!,
      this.apiKey,
      'POST',
      '/v1/check',
      { customer_id: this.customers[customer], feature_id: CHECK_FEATURE, required_balance: units, send_event: true },
      this.o.requestTimeoutMs,
    ).then((a) => {
      this.inFlight[instance]!--;
      rec.latencyMs = Date.now() - rec.sentAt;
      rec.status = a.status;
      if (a.status === 0) {
        rec.code = a.timedOut ? 'timeout' : (a.errCode ?? 'error');
        // refused: no connection was made, nothing executed; anything else cut mid-request is unknown
        rec.outcome = a.timedOut ? (wasDown ? 'indeterminate' : 'timeout') : a.errCode === 'ECONNREFUSED' ? 'refused' : 'indeterminate';
        return;
      }
      if (a.status === 200) {
        this.lastOkAt[instance] = Date.now();
        try {
          const j = JSON.parse(a.body) as { allowed: boolean; entitlement?: { access_denied_reason?: string | null } };
          if (j.allowed) rec.outcome = 'granted';
          else {
            rec.outcome = 'denied';
            rec.reason = j.entitlement?.access_denied_reason ?? 'unknown';
            if (rec.reason === 'usage_limit_exceeded' && this.exhaustedAt[customer] === null) this.exhaustedAt[customer] = Date.now();
          }
        } catch {
          rec.outcome = 'unexpected';
          rec.code = 'unparsable_200';
        }
        return;
      }
      try {
        rec.code = (JSON.parse(a.body) as { error?: { code?: string } })?.error?.code ?? 'no_code';
      } catch {
        rec.code = 'no_json';
      }
      // a 503 says nothing was consumed; another 5xx may have consumed (unknown)
      rec.outcome = a.status === 503 ? 'unavailable' : a.status >= 500 ? 'server_error' : 'unexpected';
    });
    const tracked = p.finally(() => this.outstanding.delete(tracked));
    this.outstanding.add(tracked);
  }

  async waitForInFlight(instance: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight[instance]! < 1 && Date.now() < deadline) await sleep(2);
    return this.inFlight[instance]!;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.outstanding]);
    for (const a of this.agents) a.destroy();
  }
}

export interface CustomerVerdict {
  customerId: string;
  limit: number;
  checks: number;
  grantedUnits: number;
  deniedAtLimit: number;
  indeterminateUnits: number;
  unavailableUnits: number;
  /** GET /v1/usage per billing instance (each reads its own replica) */
  usage: number[];
  /** raw events (FINAL) per replica */
  raw: number[];
  violations: string[];
}

export function judgeCustomer(s: CheckStreamer, ci: number, limit: number, usage: number[], raw: number[]): CustomerVerdict {
  const recs = s.records.filter((r) => r.customer === ci);
  const sum = (f: (r: CheckRecord) => boolean) => recs.filter(f).reduce((a, r) => a + r.units, 0);
  const granted = sum((r) => r.outcome === 'granted');
  const indeterminate = sum((r) => r.outcome === 'indeterminate' || r.outcome === 'timeout' || r.outcome === 'server_error');
  const id = s.customers[ci]!;
  const v: string[] = [];
  for (const [i, u] of usage.entries()) {
    if (!(u <= limit)) v.push(`over_grant: ${id} usage ${u} (billing-${i + 1}) > limit ${limit}`);
    if (!(u >= granted)) v.push(`granted_unit_lost: ${id} usage ${u} (billing-${i + 1}) < granted ${granted}`);
    if (!(u <= granted + indeterminate))
      v.push(`usage_from_nowhere: ${id} usage ${u} > granted ${granted} + indeterminate ${indeterminate}`);
  }
  if (granted > limit) v.push(`over_grant_answers: ${id} granted ${granted} > limit ${limit}`);
  // every billing instance (each reading its own replica) and every replica's raw events agree
  const all = [...usage, ...raw];
  if (!all.every((x) => x === all[0]))
    v.push(`usage_vs_raw: ${id} usage per billing instance ${usage.join('/')}, raw per replica ${raw.join('/')}`);
  return {
    customerId: id,
    limit,
    checks: recs.length,
    grantedUnits: granted,
    deniedAtLimit: recs.filter((r) => r.reason === 'usage_limit_exceeded').length,
    indeterminateUnits: indeterminate,
    unavailableUnits: sum((r) => r.outcome === 'unavailable'),
    usage,
    raw,
    violations: v,
  };
}
