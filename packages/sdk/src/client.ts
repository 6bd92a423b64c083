import { MeterlineError } from './errors.ts';
import { attempt, defaultSleep, errorOf, isRetryableStatus, retryDelay, type FetchLike, type Transport } from './http.ts';
import { eventErrorsOf, sendEvents, summarize, toWireEvent, type IngestLimits } from './ingest.ts';
import { randomId } from './ids.ts';
import { EventQueue, type QueueOptions } from './queue.ts';
import type {
  CheckInput,
  CheckResult,
  Coupon,
  CreateCustomerInput,
  CreditGrant,
  Customer,
  CustomerAccessParams,
  CustomerAccessResult,
  CustomerDetail,
  Entitlement,
  EventResult,
  IngestResponse,
  Invoice,
  InvoicePreview,
  ListCustomersParams,
  Page,
  PageParams,
  ReportUsageInput,
  ReportUsageResult,
  UsageEventInput,
  UsageQueryParams,
  UsageQueryResult,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointWithSecret,
  WebhookEventType,
} from './types.ts';

export const SDK_VERSION = '0.1.0';

export interface MeterlineOptions {
  /** Organization API key (sent as `X-API-KEY`). */
  apiKey: string;
  /** Gateway base URL. Default `http://127.0.0.1:8080`. */
  ingestUrl?: string;
  /** Billing base URL. Default `http://127.0.0.1:8082`. */
  billingUrl?: string;
  /** Per-attempt timeout. Default 10,000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt (503, 429, network errors). Default 5. */
  maxRetries?: number;
  /** Backoff: attempt n waits random(0, min(retryMaxDelayMs, retryBaseDelayMs·2^n)). Defaults 200 / 10,000 ms. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** A server's Retry-After is honored up to this. Default 30,000 ms. */
  maxRetryAfterMs?: number;
  /** Events per ingest request (≤ the gateway's 1,000). Default 1,000. */
  maxBatchEvents?: number;
  /** Bytes per ingest request (< the gateway's 1 MiB body limit). Default 900,000. */
  maxBatchBytes?: number;
  /** Background batching (enqueue): see QueueOptions. */
  maxQueueSize?: number;
  flushAt?: number;
  flushIntervalMs?: number;
  onError?: (err: MeterlineError) => void;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: FetchLike;
  /** For tests: how to wait between retries, and the jitter source. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

type Query = Record<string, string | number | boolean | Date | undefined | null>;

function qs(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null) continue;
    p.set(k, v instanceof Date ? v.toISOString() : String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

const seg = encodeURIComponent;

/**
 * Meterline client. Method names and options are camelCase; every request and response body is the
 * services' snake_case JSON, unchanged (so the gateway's per-event results are exactly what it sent).
 */
export class Meterline {
  readonly ingestUrl: string;
  readonly billingUrl: string;
  private readonly t: Transport;
  private readonly limits: IngestLimits;
  private readonly queue: EventQueue;

  constructor(opts: MeterlineOptions) {
    if (!opts?.apiKey) throw new MeterlineError('apiKey is required', { status: 0, code: 'invalid_options' });
    const f = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new MeterlineError('no fetch available (Node 18+ or pass options.fetch)', { status: 0, code: 'invalid_options' });
    this.ingestUrl = (opts.ingestUrl ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.billingUrl = (opts.billingUrl ?? 'http://127.0.0.1:8082').replace(/\/+$/, '');
    this.t = {
      fetch: opts.fetch ?? ((input, init) => globalThis.fetch(input, init)),
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
    const queueOpts: QueueOptions = {
      maxQueueSize: opts.maxQueueSize ?? 10_000,
      flushAt: opts.flushAt ?? 100,
      flushIntervalMs: opts.flushIntervalMs ?? 1_000,
      onError: opts.onError ?? ((err) => console.warn(`[meterline] ${err.message}`)),
    };
    this.queue = new EventQueue((events) => sendEvents(this.t, this.ingestUrl, events, this.limits), queueOpts);
  }

  // ---- Ingest -------------------------------------------------------------------------------------

  /**
   * Sends one event and waits for the gateway. Returns its result (`accepted` or `duplicate`, or
   * `ignored`); throws MeterlineError `events_rejected` (status 400, `eventErrors`) if it was rejected.
   */
  async track(event: UsageEventInput): Promise<EventResult> {
    const r = await this.trackBatch([event], { throwOnRejected: true });
    return r.results[0]!;
  }

  /**
   * Sends events (split into requests of ≤ 1,000 events / ~900 kB) and returns one result per event,
   * in order, as the gateway answered. Rejected events are results, not exceptions, unless
   * `throwOnRejected` (then MeterlineError `events_rejected`, status 207 or 400, with `eventErrors`).
   */
  async trackBatch(events: UsageEventInput[], opts: { throwOnRejected?: boolean } = {}): Promise<IngestResponse> {
    if (!Array.isArray(events)) throw new MeterlineError('trackBatch takes an array of events', { status: 0, code: 'invalid_event' });
    if (events.length === 0) return summarize([]);
    const wire = events.map(toWireEvent);
    const summary = summarize(await sendEvents(this.t, this.ingestUrl, wire, this.limits));
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

  /** Buffers an event for background sending (bounded queue); returns its idempotency id. */
  enqueue(event: UsageEventInput): string {
    return this.queue.enqueue(event);
  }

  /** Sends everything buffered by enqueue() now. */
  flush(): Promise<IngestResponse> {
    return this.queue.flush();
  }

  /** Flushes the buffer and stops background sending; enqueue() afterwards throws `closed`. */
  close(): Promise<IngestResponse> {
    return this.queue.close();
  }

  /** Events waiting in the enqueue() buffer. */
  get queued(): number {
    return this.queue.size;
  }

  // ---- Billing: customers --------------------------------------------------------------------------

  readonly customers = {
    /** Idempotent on identical data (returns the existing customer); 409 `conflict` on different data. */
    create: (input: CreateCustomerInput): Promise<Customer> => this.billing('POST', '/v1/customers', input, true),
    get: (customerId: string): Promise<CustomerDetail> => this.billing('GET', `/v1/customers/${seg(customerId)}`),
    list: (params: ListCustomersParams = {}): Promise<Page<Customer>> => this.billing('GET', `/v1/customers${qs({ ...params })}`),
    update: (customerId: string, patch: Omit<CreateCustomerInput, 'customer_id' | 'currency'>): Promise<Customer> =>
      this.billing('PATCH', `/v1/customers/${seg(customerId)}`, patch),
    archive: (customerId: string): Promise<Customer> => this.billing('DELETE', `/v1/customers/${seg(customerId)}`),
  };

  // ---- Billing: entitlements and usage --------------------------------------------------------------

  /**
   * `POST /v1/check`. With `send_event: true` the grant and the consumption are atomic, and the call
   * carries an `idempotency_key` (yours, or one generated before the first attempt), so its retries
   * (503, 429, network errors, timeouts) replay the first answer instead of consuming again.
   */
  check(input: CheckInput): Promise<CheckResult> {
    if (!input.send_event) return this.billing('POST', '/v1/check', input);
    return this.billing('POST', '/v1/check', withIdempotencyKey(input), true);
  }

  /** `GET /v1/customer_access` (pass exactly one of feature_name / event_name). */
  customerAccess(params: CustomerAccessParams): Promise<CustomerAccessResult> {
    return this.billing('GET', `/v1/customer_access${qs({ ...params })}`);
  }

  /** `GET /v1/customers/:id/entitlements` (paginated). */
  entitlements(customerId: string, params: PageParams = {}): Promise<Page<Entitlement>> {
    return this.billing('GET', `/v1/customers/${seg(customerId)}/entitlements${qs({ ...params })}`);
  }

  /** `GET /v1/customers/:id/entitlements/:feature_id` (`requested_usage` default 1). */
  entitlement(customerId: string, featureId: string, params: { requested_usage?: number } = {}): Promise<Entitlement> {
    return this.billing('GET', `/v1/customers/${seg(customerId)}/entitlements/${seg(featureId)}${qs(params)}`);
  }

  /**
   * `POST /v1/usage` (report_usage, `update_behavior` default `delta`). Carries an `idempotency_key`
   * (yours, or one generated before the first attempt): retries never count the usage twice.
   */
  reportUsage(input: ReportUsageInput): Promise<ReportUsageResult> {
    return this.billing('POST', '/v1/usage', withIdempotencyKey(input), true);
  }

  /** `POST /v1/usage` with `update_behavior: set` (gauges such as seats); idempotent like reportUsage. */
  setUsage(input: Omit<ReportUsageInput, 'update_behavior'>): Promise<ReportUsageResult> {
    return this.billing('POST', '/v1/usage', withIdempotencyKey({ ...input, update_behavior: 'set' as const }), true);
  }

  /** `GET /v1/usage`: series (window hour/day) and total for a feature or metric over [from, to). */
  usage(params: UsageQueryParams): Promise<UsageQueryResult> {
    return this.billing('GET', `/v1/usage${qs({ ...params })}`);
  }

  /** `GET /v1/invoices` (optionally one customer's or one subscription's, one status; paginated). */
  invoices(
    params: PageParams & { customer_id?: string; subscription_id?: string; status?: Invoice['status'] } = {},
  ): Promise<Page<Invoice>> {
    return this.billing('GET', `/v1/invoices${qs({ ...params })}`);
  }

  /** `GET /v1/invoices/:id`. */
  invoice(invoiceId: string): Promise<Invoice> {
    return this.billing('GET', `/v1/invoices/${seg(invoiceId)}`);
  }

  /**
   * Moves an invoice on: `finalize` a draft now (numbered, owed, frozen; later usage is billed as late
   * usage on the next invoice), `mark_paid`, `void`, `mark_uncollectible`. Safe to retry: repeating a
   * transition that already happened answers 409 with the invoice's current status.
   */
  invoiceAction(invoiceId: string, action: 'finalize' | 'mark_paid' | 'void' | 'mark_uncollectible'): Promise<Invoice> {
    return this.billing('POST', `/v1/invoices/${seg(invoiceId)}/${action}`, {});
  }

  /** `GET /v1/subscriptions/:id/upcoming_invoice`: the current period's invoice with the usage so far (nothing written). */
  upcomingInvoice(subscriptionId: string): Promise<InvoicePreview> {
    return this.billing('GET', `/v1/subscriptions/${seg(subscriptionId)}/upcoming_invoice`);
  }

  /** `POST /v1/subscriptions/preview`: the first invoice a new subscription would get (nothing created). */
  previewSubscription(input: { customer_id: string; plan_id: string; start_date?: string }): Promise<InvoicePreview> {
    return this.billing('POST', '/v1/subscriptions/preview', input, true);
  }

  /** `POST /v1/subscriptions/:id/preview_change`: what changing the plan now would bill (proration credit and charge). */
  previewPlanChange(
    subscriptionId: string,
    planId: string,
  ): Promise<InvoicePreview & { proration_credit?: string; proration_charge?: string }> {
    return this.billing('POST', `/v1/subscriptions/${seg(subscriptionId)}/preview_change`, { plan_id: planId }, true);
  }

  /** Prepaid credits: grant, balance (per currency, with the grants), history, top-up, void. */
  readonly credits = {
    grant: (
      customerId: string,
      input: {
        amount: string;
        currency?: string;
        effective_at?: string;
        expires_at?: string | null;
        priority?: number;
        description?: string;
      },
    ): Promise<CreditGrant> => this.billing('POST', `/v1/customers/${seg(customerId)}/credits`, input),
    balance: (customerId: string): Promise<{ customer_id: string; balance: Record<string, string>; grants: CreditGrant[] }> =>
      this.billing('GET', `/v1/customers/${seg(customerId)}/credits`),
    history: (customerId: string, params: PageParams = {}): Promise<Page<Record<string, unknown>>> =>
      this.billing('GET', `/v1/customers/${seg(customerId)}/credits/history${qs({ ...params })}`),
    topUp: (grantId: string, amount: string): Promise<CreditGrant> =>
      this.billing('POST', `/v1/credits/${seg(grantId)}/top_up`, { amount }),
    void: (grantId: string): Promise<CreditGrant> => this.billing('POST', `/v1/credits/${seg(grantId)}/void`, {}),
  };

  /** Coupons: create (idempotent on coupon_id only by its 409), get, list, archive, redeem for a customer. */
  readonly coupons = {
    create: (
      input: Record<string, unknown> & { coupon_id: string; name: string; duration: 'once' | 'repeating' | 'forever' },
    ): Promise<Coupon> => this.billing('POST', '/v1/coupons', input),
    get: (couponId: string): Promise<Coupon> => this.billing('GET', `/v1/coupons/${seg(couponId)}`),
    list: (params: PageParams = {}): Promise<Page<Coupon>> => this.billing('GET', `/v1/coupons${qs({ ...params })}`),
    archive: (couponId: string): Promise<Coupon> => this.billing('DELETE', `/v1/coupons/${seg(couponId)}`),
    redeem: (customerId: string, couponId: string, subscriptionId?: string): Promise<Record<string, unknown>> =>
      this.billing('POST', `/v1/customers/${seg(customerId)}/coupons`, {
        coupon_id: couponId,
        ...(subscriptionId ? { subscription_id: subscriptionId } : {}),
      }),
  };

  /**
   * Webhook endpoints (Standard Webhooks): the signing secret is in the answers of `create` and
   * `rotateSecret` only. Verify deliveries with `verifyWebhook(rawBody, headers, secret)`.
   */
  readonly webhooks = {
    create: (input: {
      url: string;
      event_types?: WebhookEventType[];
      description?: string | null;
      enabled?: boolean;
      endpoint_id?: string;
    }): Promise<WebhookEndpointWithSecret> => this.billing('POST', '/v1/webhook_endpoints', input),
    list: (params: PageParams = {}): Promise<Page<WebhookEndpoint>> => this.billing('GET', `/v1/webhook_endpoints${qs({ ...params })}`),
    get: (endpointId: string): Promise<WebhookEndpoint> => this.billing('GET', `/v1/webhook_endpoints/${seg(endpointId)}`),
    update: (
      endpointId: string,
      patch: { url?: string; event_types?: WebhookEventType[]; description?: string | null; enabled?: boolean },
    ): Promise<WebhookEndpoint> => this.billing('PATCH', `/v1/webhook_endpoints/${seg(endpointId)}`, patch),
    delete: (endpointId: string): Promise<WebhookEndpoint> => this.billing('DELETE', `/v1/webhook_endpoints/${seg(endpointId)}`),
    /** A new secret; the old one keeps signing (both signatures sent) for overlapSeconds (default 86400). */
    rotateSecret: (endpointId: string, overlapSeconds?: number): Promise<WebhookEndpointWithSecret> =>
      this.billing(
        'POST',
        `/v1/webhook_endpoints/${seg(endpointId)}/rotate_secret`,
        overlapSeconds === undefined ? {} : { overlap_seconds: overlapSeconds },
      ),
    /** The delivery log, newest first, each with its attempts. */
    deliveries: (
      endpointId: string,
      params: PageParams & { status?: WebhookDelivery['status']; event_type?: WebhookEventType } = {},
    ): Promise<Page<WebhookDelivery>> => this.billing('GET', `/v1/webhook_endpoints/${seg(endpointId)}/deliveries${qs({ ...params })}`),
    resend: (deliveryId: string): Promise<WebhookDelivery> => this.billing('POST', `/v1/webhook_deliveries/${seg(deliveryId)}/resend`, {}),
  };

  /** `GET` / `PUT /v1/settings/invoicing`: the grace period during which a period's draft takes late usage. */
  invoicingSettings(update?: { grace_period_seconds: number }): Promise<{ grace_period_seconds: number }> {
    return update ? this.billing('PUT', '/v1/settings/invoicing', update, true) : this.billing('GET', '/v1/settings/invoicing');
  }

  /**
   * Any other billing route (features, metrics, plans, subscriptions, invoices): body and answer as
   * on the wire. GETs are retried like the typed calls; other methods only on 503/429.
   */
  request<T = unknown>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    return this.billing(method, path, body);
  }

  /**
   * Billing call. 503/429 are retried (billing answers 503 only when nothing was consumed); network
   * errors and timeouts only for requests that are safe to repeat (GET, idempotent creates, consuming
   * checks and usage reports with their idempotency_key), and so is 409 `idempotency_key_in_progress`
   * (the same key still executing elsewhere: its answer comes back on the retry).
   */
  private async billing<T>(method: string, path: string, body?: unknown, idempotent = method === 'GET'): Promise<T> {
    const url = this.billingUrl + path;
    for (let n = 0; ; n++) {
      let failure: MeterlineError;
      let retryAfterMs: number | undefined;
      try {
        const res = await attempt(this.t, method, url, body);
        if (res.status >= 200 && res.status < 300) return res.body as T;
        failure = errorOf(res, `${method} ${path.split('?')[0]}`);
        if (!isRetryableStatus(res.status) && !(idempotent && failure.code === 'idempotency_key_in_progress')) throw failure;
        retryAfterMs = res.retryAfterMs;
      } catch (err) {
        if (!(err instanceof MeterlineError) || err.status !== 0 || !idempotent) throw err;
        failure = err;
      }
      if (n >= this.t.retry.maxRetries) throw failure;
      await this.t.sleep(retryDelay(this.t, n, retryAfterMs));
    }
  }
}

/** The input with an idempotency_key: the caller's, or a new one (fixed before the first attempt). */
function withIdempotencyKey<T extends { idempotency_key?: string }>(input: T): T {
  return input.idempotency_key === undefined ? { ...input, idempotency_key: randomId() } : input;
}
