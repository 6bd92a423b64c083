// verifyWebhook (node:crypto, no dependency) checked against signatures made by the `standardwebhooks`
// library (the Standard Webhooks reference implementation; a devDependency only).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { verifyWebhook, WebhookVerificationError } from '../src/index.ts';

const secret = () => `whsec_${randomBytes(24).toString('base64')}`;
const body = JSON.stringify({ id: 'msg_1', type: 'invoice.finalized', data: { invoice_id: 'inv_1', total: '10.00' } });

function signed(s: string, payload = body, at = new Date(), id = 'msg_1') {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(s).sign(id, at, payload),
  };
}

describe('verifyWebhook', () => {
  it('accepts what the standardwebhooks library signs, and returns the payload', () => {
    const s = secret();
    for (let i = 0; i < 50; i++) {
      const p = JSON.stringify({ i, r: randomBytes(20).toString('hex'), u: 'é✓' });
      const h = signed(s, p, new Date(), `msg_${i}`);
      expect(verifyWebhook(p, h, s)).toEqual(JSON.parse(p));
      // and the library agrees with the same input
      expect(new Webhook(s).verify(p, h)).toEqual(JSON.parse(p));
    }
  });

  it('headers in any case, as a Headers object, or as arrays', () => {
    const s = secret();
    const h = signed(s);
    const upper = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toUpperCase(), [v]]));
    expect(verifyWebhook(body, upper, s)).toMatchObject({ id: 'msg_1' });
    expect(verifyWebhook(body, new Headers(h), s)).toMatchObject({ id: 'msg_1' });
  });

  it('during a rotation overlap: two signatures, either secret verifies', () => {
    const oldS = secret();
    const newS = secret();
    const at = new Date();
    const h = signed(newS, body, at);
    h['webhook-signature'] = `${h['webhook-signature']} ${new Webhook(oldS).sign('msg_1', at, body)}`;
    expect(verifyWebhook(body, h, oldS)).toMatchObject({ id: 'msg_1' });
    expect(verifyWebhook(body, h, newS)).toMatchObject({ id: 'msg_1' });
    expect(() => verifyWebhook(body, h, secret())).toThrow(WebhookVerificationError);
  });

  it('rejects a changed body, id or timestamp, a wrong secret, a stale or future timestamp, missing headers, other versions', () => {
    const s = secret();
    const h = signed(s);
    expect(() => verifyWebhook(`${body} `, h, s)).toThrow('no matching signature');
    expect(() => verifyWebhook(body, { ...h, 'webhook-id': 'msg_2' }, s)).toThrow('no matching signature');
    expect(() => verifyWebhook(body, { ...h, 'webhook-timestamp': String(Number(h['webhook-timestamp']) + 1) }, s)).toThrow(
      'no matching signature',
    );
    expect(() => verifyWebhook(body, h, secret())).toThrow('no matching signature');
    const stale = signed(s, body, new Date(Date.now() - 301_000));
    expect(() => verifyWebhook(body, stale, s)).toThrow('tolerance');
    expect(() => new Webhook(s).verify(body, stale)).toThrow(); // the library agrees
    expect(() => verifyWebhook(body, signed(s, body, new Date(Date.now() + 301_000)), s)).toThrow('tolerance');
    expect(verifyWebhook(body, stale, s, { toleranceSeconds: 600 })).toMatchObject({ id: 'msg_1' });
    expect(() => verifyWebhook(body, { 'webhook-id': 'msg_1' }, s)).toThrow('missing');
    expect(() => verifyWebhook(body, { ...h, 'webhook-signature': h['webhook-signature'].replace('v1,', 'v2,') }, s)).toThrow(
      'no matching signature',
    );
  });
});
