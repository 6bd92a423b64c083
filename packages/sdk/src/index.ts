export { Meterline, SDK_VERSION, type MeterlineOptions } from './client.ts';
export { MeterlineError } from './errors.ts';
export { parseRetryAfter, type FetchLike } from './http.ts';
export type * from './types.ts';
export { verifyWebhook, WebhookVerificationError, type VerifyWebhookOptions } from './webhooks.ts';
