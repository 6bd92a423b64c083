// Billing's own Prometheus metrics (the HTTP ones are core's instrumentHttp). Where a check's time goes,
// by stage, so a slow check can be attributed: reading (ClickHouse usage reading, 0 when cached),
// ledger (the one Redis script), produce (Kafka, consuming checks and usage reports only).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type CheckStage = 'reading' | 'ledger' | 'produce';

export function billingMetrics(registry: Registry) {
  return {
    checkStageSeconds: new Histogram({
      name: 'meterline_billing_check_stage_seconds',
      help: 'Time an entitlement check or usage report spent per stage',
      labelNames: ['stage'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    staleReadings: new Counter({
      name: 'meterline_billing_stale_readings_total',
      help: 'Usage readings the ledger refused (older than a pruned grant) and read again',
      registers: [registry],
    }),
    // period closes (invoices/scheduler.ts): failures set a subscription aside with its error (close.ts)
    closeFailures: new Counter({
      name: 'meterline_billing_close_failures_total',
      help: 'Subscription period closes that failed (the subscription is set aside and retried with backoff)',
      registers: [registry],
    }),
    closesFailing: new Gauge({
      name: 'meterline_billing_subscriptions_close_failing',
      help: 'Subscriptions set aside after a failed close (all organizations; updated by each scheduler run)',
      registers: [registry],
    }),
    closedSubscriptions: new Counter({
      name: 'meterline_billing_subscriptions_closed_total',
      help: 'Subscriptions the scheduler advanced (started, renewed or ended)',
      registers: [registry],
    }),
    // late usage of a period priced with a superseded metric version (invoices/lifecycle.ts)
    lateUsageSkipped: new Counter({
      name: 'meterline_billing_late_usage_skipped_total',
      help: 'Late-usage adjustments not made because the period was priced with an older metric version (definitions are not retroactive)',
      registers: [registry],
    }),
    ...webhookMetrics(registry),
  };
}

export type BillingMetrics = ReturnType<typeof billingMetrics>;

/** Outbound webhooks (webhooks/worker.ts). */
export function webhookMetrics(registry: Registry) {
  return {
    webhookDeliveries: new Counter({
      name: 'meterline_billing_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: succeeded, retry (failed, scheduled again), gone (410: endpoint disabled), abandoned',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    webhookDeliveryLatency: new Histogram({
      name: 'meterline_billing_webhook_delivery_latency_seconds',
      help: 'From the event being written (with its change) to its successful delivery',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21_600, 86_400],
      registers: [registry],
    }),
  };
}
