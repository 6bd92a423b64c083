// Signing secrets and signatures (Standard Webhooks, https://www.standardwebhooks.com): a secret is
// `whsec_` + base64 of 24 random bytes; the signature is the `standardwebhooks` package's (HMAC-SHA256 of
// `${webhook-id}.${webhook-timestamp}.${body}`), `v1,<base64>`. During a rotation overlap the header
// carries one signature per secret, space-separated, so a receiver holding either secret verifies it.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

const signers = new Map<string, Webhook>();
function signer(secret: string): Webhook {
  let w = signers.get(secret);
  if (!w) {
    if (signers.size > 10_000) signers.clear();
    w = new Webhook(secret);
    signers.set(secret, w);
  }
  return w;
}

/** The three Standard Webhooks headers for one attempt (the timestamp is the attempt's, the id the event's). */
export function signedHeaders(eventId: string, body: string, secrets: string[], at: Date): Record<string, string> {
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => signer(s).sign(eventId, at, body)).join(' '),
  };
}
