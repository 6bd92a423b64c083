// Verifying Meterline's webhooks (Standard Webhooks, https://www.standardwebhooks.com) without a
// dependency: node:crypto (Node, Bun and Deno have it). The signed content is
// `${webhook-id}.${webhook-timestamp}.${raw body}`, HMAC-SHA256 with the base64 key after `whsec_`;
// `webhook-signature` holds one or more space-separated `v1,<base64>` signatures (two during a secret
// rotation overlap): any one matching is enough. Pass the RAW body, before any JSON parsing.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { WebhookPayload } from './types.ts';

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

export interface VerifyWebhookOptions {
  /** Largest accepted difference between webhook-timestamp and now (seconds; default 300). */
  toleranceSeconds?: number;
  now?: Date;
}

type HeaderBag = Record<string, string | string[] | undefined> | { get(name: string): string | null };

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function')
    return (headers as { get(n: string): string | null }).get(name) ?? undefined;
  const bag = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(bag).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : bag[key];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Verifies a delivery and returns its parsed payload; throws WebhookVerificationError when a header is
 * missing, the timestamp is outside the tolerance or no signature matches. Dedupe on `payload.id`
 * (= webhook-id): a delivery may arrive more than once.
 */
export function verifyWebhook<T = WebhookPayload>(payload: string, headers: HeaderBag, secret: string, opts: VerifyWebhookOptions = {}): T {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature');
  if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError('invalid webhook-timestamp');
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - Number(timestamp)) > (opts.toleranceSeconds ?? 300))
    throw new WebhookVerificationError('webhook-timestamp out of tolerance');
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  if (key.length === 0) throw new WebhookVerificationError('empty secret');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${payload}`).digest();
  for (const s of signatures.split(' ')) {
    const [version, sig] = s.split(',', 2);
    if (version !== 'v1' || !sig) continue;
    const got = Buffer.from(sig, 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) return JSON.parse(payload) as T;
  }
  throw new WebhookVerificationError('no matching signature');
}
