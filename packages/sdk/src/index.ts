export {
  Meterline,
  SDK_VERSION,
  type EntitlementsNamespace,
  type InvoicesNamespace,
  type MeterlineOptions,
  type OutgoingEvent,
  type UsageNamespace,
} from './client.ts';
export { MeterlineError } from './errors.ts';
export { parseRetryAfter, type CallOptions, type FetchLike, type Logger } from './http.ts';
export type { CloseOptions, CloseReport, OverflowPolicy, QueueStats, UndeliveredEvent } from './queue.ts';
export type {
  AlertsResource,
  CheckoutResource,
  EntitiesResource,
  PromotionsResource,
  ReferralsResource,
  CouponsResource,
  CreditsResource,
  CustomersResource,
  EntitlementsResource,
  FeaturesResource,
  InvoicesResource,
  MetricsResource,
  OrganizationResource,
  PaymentsResource,
  PlansResource,
  SettingsResource,
  SubscriptionsResource,
  UsageResource,
  WebhooksResource,
} from './resources.ts';
export type * from './types.ts';
export { verifyWebhook, WebhookVerificationError, type VerifyWebhookOptions } from './webhooks.ts';
