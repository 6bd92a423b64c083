import { MeterlineError } from './errors.ts';
import {
  attempt,
  defaultSleep,
  errorOf,
  isRetryableStatus,
  retryDelay,
  sleepFor,
  type CallOptions,
  type FetchLike,
  type Logger,
  type Transport,
} from './http.ts';
import { eventErrorsOf, sendEvents, summarize, toWireEvent, type IngestLimits, type WireEvent } from './ingest.ts';
import { EventQueue, type CloseOptions, type CloseReport, type OverflowPolicy, type QueueStats } from './queue.ts';
import {
  alertsResource,
  checkoutResource,
  entitiesResource,
  promotionsResource,
  referralsResource,
  type CheckoutResource,
  type EntitiesResource,
  type PromotionsResource,
  type ReferralsResource,
  couponsResource,
  creditsResource,
  customersResource,
  entitlementsResource,
  featuresResource,
  invoicesResource,
  metricsResource,
  organizationResource,
  paymentsResource,
  plansResource,
  settingsResource,
  subscriptionsResource,
  usageResource,
  webhooksResource,
  type AlertsResource,
  type BillingCall,
  type CouponsResource,
  type CreditsResource,
  type CustomersResource,
  type EntitlementsResource,
  type FeaturesResource,
  type InvoicesResource,
  type MetricsResource,
  type OrganizationResource,
  type PaymentsResource,
  type PlansResource,
  type SettingsResource,
  type SubscriptionsResource,
  type UsageResource,
  type WebhooksResource,
} from './resources.ts';
import type {
  CheckInput,
  CheckResult,
  CustomerAccessParams,
  CustomerAccessResult,
  Entitlement,
  EventResult,
  IngestResponse,
  Invoice,
  InvoiceAction,
  InvoicePreview,
  InvoicingSettings,
  ListInvoicesParams,
  Page,
  PageParams,
  PlanChangePreview,
  ReportUsageInput,
  ReportUsageResult,
  UsageEventInput,
  UsageQueryParams,
  UsageQueryResult,
} from './types.ts';

export const SDK_VERSION = '0.1.0';

/** An event as beforeSend sees it: idempotency id assigned, Dates as ISO strings. */
export type OutgoingEvent = WireEvent;

export interface MeterlineOptions {
  /** Organization API key (sent as `X-API-KEY`). */
  apiKey: string;
  /** Gateway base URL. Default `http://127.0.0.1:8080`. */
  ingestUrl?: string;
  /** Billing base URL. Default `http://127.0.0.1:8082`. */
  billingUrl?: string;
  /** Per-attempt timeout. Default 10,000 ms. Per call: `{ timeoutMs }` as the last argument. */
  timeoutMs?: number;
  /** Retries after the first attempt (503, 429, network errors, timeouts). Default 5. */
  maxRetries?: number;
  /** Backoff: attempt n waits random(0, min(retryMaxDelayMs, retryBaseDelayMs·2^n)). Default 200 ms. */
  retryBaseDelayMs?: number;
  /** Upper bound of one backoff wait. Default 10,000 ms. */
  retryMaxDelayMs?: number;
  /** A server's Retry-After is honored up to this. Default 30,000 ms. */
  maxRetryAfterMs?: number;
  /** Events per ingest request (≤ the gateway's 1,000). Default 1,000. */
  maxBatchEvents?: number;
  /** Bytes per ingest request (< the gateway's 1 MiB body limit). Default 900,000. */
  maxBatchBytes?: number;
  /** enqueue(): hard bound on events held, queued + in flight. Default 10,000. */
  maxQueueSize?: number;
  /** enqueue(): when the queue is full, drop the oldest queued event (`drop_oldest`, default) or the new one (`drop_newest`). */
  overflow?: OverflowPolicy;
  /** enqueue(): send in the background once this many events wait. Default 100. */
  flushAt?: number;
  /** enqueue(): send in the background this often (ms) while events wait; 0 = only at flushAt, flush() and close(). Default 1,000. */
  flushIntervalMs?: number;
  /**
   * enqueue()'s background problems (never thrown at the caller): `events_dropped` (`details.idempotency_ids`),
   * `events_rejected` (`eventErrors`), failed requests (`details.requeued` or `details.failed`, with the ids).
   * Default: `logger.warn`, else console.warn.
   */
  onError?: (err: MeterlineError) => void;
  /**
   * Called with every outgoing event (track, trackBatch, enqueue) after its id is assigned: return the
   * event (possibly changed) to send it, or null to drop it (counted in `stats().filtered`; track/trackBatch
   * answer it as `ignored` with reason `before_send`). If it throws, the event is dropped and reported.
   */
  beforeSend?: (event: OutgoingEvent) => UsageEventInput | null;
  /**
   * No network at all (tests, local development, kill switch): track/trackBatch resolve with every event
   * `ignored` (reason `disabled`), enqueue returns an id and keeps nothing, flush/close resolve empty,
   * every billing call rejects with MeterlineError `disabled`.
   */
  disabled?: boolean;
  /** Where to log: requests and retries (debug), drops (warn), failed background sends (error). */
  logger?: Logger;
  /** Shortcut: log requests and retries to the console (`logger.debug` = console.debug unless a logger is given). */
  debug?: boolean;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: FetchLike;
  /** For tests: how to wait between retries. */
  sleep?: (ms: number) => Promise<void>;
  /** For tests: the jitter source. */
  random?: () => number;
}

/** `client.invoices`: the resource; calling it (`client.invoices(params)`) is deprecated. */
export interface InvoicesNamespace extends InvoicesResource {
  /** @deprecated use `invoices.list(params)`. */
  (params?: ListInvoicesParams, opts?: CallOptions): Promise<Page<Invoice>>;
}

/** `client.entitlements`: the resource; calling it (`client.entitlements(customerId)`) is deprecated. */
export interface EntitlementsNamespace extends EntitlementsResource {
  /** @deprecated use `entitlements.list(customerId, params)`. */
  (customerId: string, params?: PageParams, opts?: CallOptions): Promise<Page<Entitlement>>;
}

/** `client.usage`: the resource; calling it (`client.usage(params)`) is deprecated. */
export interface UsageNamespace extends UsageResource {
  /** @deprecated use `usage.query(params)`. */
  (params: UsageQueryParams, opts?: CallOptions): Promise<UsageQueryResult>;
}

const disabledError = () =>
  new MeterlineError('the client is disabled (options.disabled): no request was made', { status: 0, code: 'disabled' });

/**
 * Meterline client. Method names and options are camelCase; every request and response body is the
 * services' snake_case JSON, unchanged (so the gateway's per-event results are exactly what it sent).
 * Billing calls are grouped by resource (`client.plans.create(…)`, `client.entitlements.check(…)`); each
 * takes `{ signal, timeoutMs }` as its last argument.
 */
export class Meterline {
  readonly ingestUrl: string;
  readonly billingUrl: string;
  /** Whether the client was created with `disabled: true` (no network). */
  readonly disabled: boolean;
  private readonly t: Transport;
  private readonly limits: IngestLimits;
  private readonly queue: EventQueue;
  private readonly beforeSend: ((event: OutgoingEvent) => UsageEventInput | null) | undefined;

  /** Customers: create, get, list, update, archive. */
  readonly customers: CustomersResource;
  /** Features: create, get, list, update (rename), archive. */
  readonly features: FeaturesResource;
  /** Billable metrics: create, get, list, update, archive. */
  readonly metrics: MetricsResource;
  /** Plans: create, get, getVersion, list, update (new version), archive. */
  readonly plans: PlansResource;
  /** Subscriptions: create, get, list, update, cancel, changePlan, preview, previewChange, upcomingInvoice, closeFailure(s). */
  readonly subscriptions: SubscriptionsResource;
  /**
   * Invoices: list, get, finalize, markPaid, void, markUncollectible, transition, document.
   * Calling it directly (`client.invoices(params)`) is the deprecated form of `invoices.list(params)`.
   */
  readonly invoices: InvoicesNamespace;
  /** Payments of invoices: record, list, refund. */
  readonly payments: PaymentsResource;
  /**
   * Entitlements: check, list, get, access. Calling it directly (`client.entitlements(customerId)`) is
   * the deprecated form of `entitlements.list(customerId)`.
   */
  readonly entitlements: EntitlementsNamespace;
  /**
   * Usage: report, set, query. Calling it directly (`client.usage(params)`) is the deprecated form of
   * `usage.query(params)`.
   */
  readonly usage: UsageNamespace;
  /** Usage alerts: create, list, archive, crossings. */
  readonly alerts: AlertsResource;
  /** Prepaid credits: grant, balance, history, topUp, void. */
  readonly credits: CreditsResource;
  /** Coupons: create, get, list, archive, redeem. */
  readonly coupons: CouponsResource;
  /** Webhook endpoints: create, list, get, update, delete, rotateSecret, deliveries, resend. */
  readonly webhooks: WebhooksResource;
  /** Settings: invoicing grace period, Segment secret. */
  readonly settings: SettingsResource;
  /** The calling key's organization and its API keys. */
  readonly organization: OrganizationResource;
  /** A customer's entities (seats, workspaces): create, list, get, delete. */
  readonly entities: EntitiesResource;
  /** Promotional entitlements: grant, list, revoke. */
  readonly promotions: PromotionsResource;
  /** Attach (subscribe, or a hosted checkout), checkouts, the billing portal. */
  readonly checkout: CheckoutResource;
  /** Referral programs, codes and redemptions. */
  readonly referrals: ReferralsResource;

  constructor(opts: MeterlineOptions) {
    if (!opts?.apiKey) throw new MeterlineError('apiKey is required', { status: 0, code: 'invalid_options' });
    const f = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f && !opts.disabled)
      throw new MeterlineError('no fetch available (Node 18+ or pass options.fetch)', { status: 0, code: 'invalid_options' });
    if (opts.overflow !== undefined && opts.overflow !== 'drop_oldest' && opts.overflow !== 'drop_newest')
      throw new MeterlineError(`overflow must be drop_oldest or drop_newest, not ${String(opts.overflow)}`, {
        status: 0,
        code: 'invalid_options',
      });
    this.ingestUrl = (opts.ingestUrl ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.billingUrl = (opts.billingUrl ?? 'http://127.0.0.1:8082').replace(/\/+$/, '');
    this.disabled = opts.disabled === true;
    this.beforeSend = opts.beforeSend;
    const logger: Logger = {
      ...(opts.debug ? { debug: (m: string) => console.debug(m) } : {}),
      ...opts.logger,
    };
    this.t = {
      fetch: opts.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      logger,
      apiKey: opts.apiKey,
      timeoutMs: opts.timeoutMs ?? 10_000,
      retry: {
        maxRetries: opts.maxRetries ?? 5,
        baseDelayMs: opts.retryBaseDelayMs ?? 200,
        maxDelayMs: opts.retryMaxDelayMs ?? 10_000,
        maxRetryAfterMs: opts.maxRetryAfterMs ?? 30_000,
      },
      sleep: opts.sleep ?? defaultSleep,
      random: opts.random ?? Math.random,
      userAgent: `meterline-sdk-js/${SDK_VERSION}`,
    };
    this.limits = {
      maxBatchEvents: Math.max(1, Math.min(opts.maxBatchEvents ?? 1000, 1000)),
      maxBatchBytes: opts.maxBatchBytes ?? 900_000,
    };
    const warn = logger.warn;
    this.queue = new EventQueue((events, signal) => sendEvents(this.t, this.ingestUrl, events, this.limits, { signal }), {
      maxQueueSize: Math.max(1, opts.maxQueueSize ?? 10_000),
      flushAt: Math.max(1, opts.flushAt ?? 100),
      flushIntervalMs: opts.flushIntervalMs ?? 1_000,
      overflow: opts.overflow ?? 'drop_oldest',
      maxBatchEvents: this.limits.maxBatchEvents,
      onError: opts.onError ?? ((err) => (warn ? warn(`[meterline] ${err.message}`) : console.warn(`[meterline] ${err.message}`))),
      // onError already gets drops; without a custom onError, do not log them twice
      logger: opts.onError ? logger : { ...logger, warn: undefined },
    });
    const call: BillingCall = (method, path, body, idempotent, callOpts) => this.billing(method, path, body, idempotent, callOpts);
    this.customers = customersResource(call);
    this.features = featuresResource(call);
    this.metrics = metricsResource(call);
    this.plans = plansResource(call);
    this.subscriptions = subscriptionsResource(call);
    const invoices = invoicesResource(call);
    this.invoices = Object.assign((params?: ListInvoicesParams, o?: CallOptions) => invoices.list(params, o), invoices);
    this.payments = paymentsResource(call);
    const entitlements = entitlementsResource(call);
    this.entitlements = Object.assign(
      (customerId: string, params?: PageParams, o?: CallOptions) => entitlements.list(customerId, params, o),
      entitlements,
    );
    const usage = usageResource(call);
    this.usage = Object.assign((params: UsageQueryParams, o?: CallOptions) => usage.query(params, o), usage);
    this.alerts = alertsResource(call);
    this.credits = creditsResource(call);
    this.coupons = couponsResource(call);
    this.webhooks = webhooksResource(call);
    this.settings = settingsResource(call);
    this.organization = organizationResource(call);
    this.entities = entitiesResource(call);
    this.promotions = promotionsResource(call);
    this.checkout = checkoutResource(call);
    this.referrals = referralsResource(call);
  }

  // ---- Ingest -------------------------------------------------------------------------------------

  /**
   * Sends one event and waits for the gateway. Returns its result (`accepted` or `duplicate`, or
   * `ignored`); throws MeterlineError `events_rejected` (status 400, `eventErrors`) if it was rejected.
   */
  async track(event: UsageEventInput, opts: CallOptions = {}): Promise<EventResult> {
    const r = await this.trackBatch([event], { ...opts, throwOnRejected: true });
    return r.results[0]!;
  }

  /**
   * Sends events (split into requests of ≤ 1,000 events / ~900 kB) and returns one result per event,
   * in order, as the gateway answered. Rejected events are results, not exceptions, unless
   * `throwOnRejected` (then MeterlineError `events_rejected`, status 207 or 400, with `eventErrors`).
   * Events beforeSend drops are answered `ignored` (reason `before_send`) without being sent.
   */
  async trackBatch(events: UsageEventInput[], opts: CallOptions & { throwOnRejected?: boolean } = {}): Promise<IngestResponse> {
    if (!Array.isArray(events)) throw new MeterlineError('trackBatch takes an array of events', { status: 0, code: 'invalid_event' });
    if (events.length === 0) return summarize([]);
    const wire = events.map(toWireEvent);
    const results: (EventResult | undefined)[] = new Array(wire.length);
    const toSend: { index: number; event: WireEvent }[] = [];
    wire.forEach((w, index) => {
      if (this.disabled) {
        results[index] = { index, status: 'ignored', idempotency_id: w.idempotency_id, reason: 'disabled' };
        return;
      }
      const out = this.applyBeforeSend(w);
      if (out === null) results[index] = { index, status: 'ignored', idempotency_id: w.idempotency_id, reason: 'before_send' };
      else toSend.push({ index, event: out });
    });
    if (toSend.length > 0) {
      const sent = await sendEvents(
        this.t,
        this.ingestUrl,
        toSend.map((x) => x.event),
        this.limits,
        opts,
      );
      sent.forEach((r, i) => {
        const index = toSend[i]!.index;
        const mapped: EventResult = { ...r, index };
        if (r.duplicate_of !== undefined) mapped.duplicate_of = toSend[r.duplicate_of]?.index ?? r.duplicate_of;
        results[index] = mapped;
      });
    }
    const summary = summarize(results as EventResult[]);
    if (opts.throwOnRejected && summary.rejected > 0) {
      const ok = summary.accepted + summary.duplicates + summary.ignored;
      const eventErrors = eventErrorsOf(summary.results);
      const first = eventErrors[0]?.errors[0];
      throw new MeterlineError(
        `${summary.rejected} event(s) rejected${first ? `: ${first.field} ${first.reason}: ${first.message}` : ''}`,
        {
          status: ok > 0 ? 207 : 400,
          code: 'events_rejected',
          results: summary.results,
          eventErrors,
        },
      );
    }
    return summary;
  }

  /**
   * Queues an event for background sending and returns its idempotency id (assigned now). Never waits
   * for the network and never throws for capacity: see `maxQueueSize` / `overflow`; drops are counted in
   * `stats()` and reported through onError with their ids. After close() events are dropped (`closed`).
   */
  enqueue(event: UsageEventInput): string {
    const wire = toWireEvent(event);
    if (this.disabled) return wire.idempotency_id;
    let out: WireEvent | null;
    try {
      out = this.applyBeforeSend(wire);
    } catch (err) {
      this.t.logger.error?.(`[meterline] beforeSend threw: ${(err as Error)?.message ?? String(err)}`);
      this.queue.reject(wire.idempotency_id, 'before_send_error');
      return wire.idempotency_id;
    }
    if (out === null) {
      this.queue.countFiltered();
      return wire.idempotency_id;
    }
    return this.queue.enqueue(out);
  }

  /**
   * Sends everything enqueue() holds now (after a send under way) and returns its results. Throws
   * MeterlineError if a request failed after all retries; its events are back in the queue (same ids).
   */
  flush(): Promise<IngestResponse> {
    if (this.disabled) return Promise.resolve(summarize([]));
    return this.queue.flush();
  }

  /**
   * Stops background sending and delivers what enqueue() holds (queued and in flight) until
   * `timeoutMs` (default 30,000), aborting requests still running then. Resolves (never rejects) with a
   * CloseReport: each event held when close() was called is in `results` or in `undelivered` (with the
   * reason). Later enqueue() calls drop their event (`closed`). Calling close() again answers the same report.
   */
  close(opts: CloseOptions = {}): Promise<CloseReport> {
    return this.queue.close(opts);
  }

  /** The enqueue() queue's counters: queued, inFlight, sent, rejected, dropped, failed, requeued, filtered. */
  stats(): QueueStats {
    return this.queue.stats();
  }

  /** @deprecated use `stats()`. Events enqueue() holds and has not delivered yet: queued + in flight. */
  get queued(): number {
    const s = this.queue.stats();
    return s.queued + s.inFlight;
  }

  // ---- Deprecated top-level billing calls (use the resource groups) ---------------------------------

  /** @deprecated use `entitlements.check(input)`. */
  check(input: CheckInput, opts?: CallOptions): Promise<CheckResult> {
    return this.entitlements.check(input, opts);
  }

  /** @deprecated use `entitlements.access(params)`. */
  customerAccess(params: CustomerAccessParams, opts?: CallOptions): Promise<CustomerAccessResult> {
    return this.entitlements.access(params, opts);
  }

  /** @deprecated use `entitlements.get(customerId, featureId, params)`. */
  entitlement(customerId: string, featureId: string, params: { requested_usage?: number } = {}, opts?: CallOptions): Promise<Entitlement> {
    return this.entitlements.get(customerId, featureId, params, opts);
  }

  /** @deprecated use `usage.report(input)`. */
  reportUsage(input: ReportUsageInput, opts?: CallOptions): Promise<ReportUsageResult> {
    return this.usage.report(input, opts);
  }

  /** @deprecated use `usage.set(input)`. */
  setUsage(input: Omit<ReportUsageInput, 'update_behavior'>, opts?: CallOptions): Promise<ReportUsageResult> {
    return this.usage.set(input, opts);
  }

  /** @deprecated use `invoices.get(invoiceId)`. */
  invoice(invoiceId: string, opts?: CallOptions): Promise<Invoice> {
    return this.invoices.get(invoiceId, opts);
  }

  /** @deprecated use `invoices.finalize / markPaid / void / markUncollectible` (or `invoices.transition`). */
  invoiceAction(invoiceId: string, action: InvoiceAction, opts?: CallOptions): Promise<Invoice> {
    return this.invoices.transition(invoiceId, action, opts);
  }

  /** @deprecated use `subscriptions.upcomingInvoice(subscriptionId)`. */
  upcomingInvoice(subscriptionId: string, opts?: CallOptions): Promise<InvoicePreview> {
    return this.subscriptions.upcomingInvoice(subscriptionId, opts);
  }

  /** @deprecated use `subscriptions.preview(input)`. */
  previewSubscription(input: { customer_id: string; plan_id: string; start_date?: string }, opts?: CallOptions): Promise<InvoicePreview> {
    return this.subscriptions.preview(input, opts);
  }

  /** @deprecated use `subscriptions.previewChange(subscriptionId, planId)`. */
  previewPlanChange(subscriptionId: string, planId: string, opts?: CallOptions): Promise<PlanChangePreview> {
    return this.subscriptions.previewChange(subscriptionId, planId, opts);
  }

  /** @deprecated use `settings.getInvoicing()` / `settings.setInvoicing(update)`. */
  invoicingSettings(update?: InvoicingSettings, opts?: CallOptions): Promise<InvoicingSettings> {
    return update ? this.settings.setInvoicing(update, opts) : this.settings.getInvoicing(opts);
  }

  /**
   * Any billing route, body and answer as on the wire (for routes newer than this SDK). GETs and PUTs
   * are retried like the typed calls (also on network errors); other methods only on 503/429.
   */
  request<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, opts?: CallOptions): Promise<T> {
    return this.billing(method, path, body, method === 'GET' || method === 'PUT', opts);
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private applyBeforeSend(w: WireEvent): WireEvent | null {
    if (!this.beforeSend) return w;
    const out = this.beforeSend(w);
    if (out === null || out === undefined) return null;
    return toWireEvent({ ...out, idempotency_id: out.idempotency_id ?? w.idempotency_id });
  }

  /**
   * Billing call. 503/429 are retried (billing answers 503 only when nothing was consumed); network
   * errors and timeouts only for requests that are safe to repeat (GET, idempotent creates, consuming
   * checks and usage reports with their idempotency_key), and so is 409 `idempotency_key_in_progress`
   * (the same key still executing elsewhere: its answer comes back on the retry). `signal` aborts the
   * attempt and any retry wait.
   */
  private async billing<T>(method: string, path: string, body: unknown, idempotent: boolean, opts: CallOptions = {}): Promise<T> {
    if (this.disabled) throw disabledError();
    const url = this.billingUrl + path;
    const what = `${method} ${path.split('?')[0]}`;
    for (let n = 0; ; n++) {
      let failure: MeterlineError;
      let retryAfterMs: number | undefined;
      try {
        const res = await attempt(this.t, method, url, body, opts);
        if (res.status >= 200 && res.status < 300) return res.body as T;
        failure = errorOf(res, what);
        if (!isRetryableStatus(res.status) && !(idempotent && failure.code === 'idempotency_key_in_progress')) throw failure;
        retryAfterMs = res.retryAfterMs;
      } catch (err) {
        if (!(err instanceof MeterlineError) || err.status !== 0 || err.code === 'aborted' || !idempotent) throw err;
        failure = err;
      }
      if (n >= this.t.retry.maxRetries) throw failure;
      const delay = retryDelay(this.t, n, retryAfterMs);
      this.t.logger.debug?.(`[meterline] ${what}: retry ${n + 1}/${this.t.retry.maxRetries} in ${delay} ms: ${failure.message}`);
      await sleepFor(this.t, delay, opts.signal, what);
    }
  }
}
