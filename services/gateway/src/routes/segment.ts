// Segment: POST /v1/segment (Webhooks destination, X-Signature verified when the organization has a
// shared secret), POST /v1/batch (HTTP tracking API) and POST /v1/{track,identify,page,screen,group,alias}
// (one message, type implied by the path). Registered inside the ingest plugin (ingest-api.ts).
// identify creates/updates the customer through core's customers repository (the table is billing's).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { upsertCustomerFromIdentify } from '@meterline/core';
import { postgresFailureKind } from '@meterline/core';
import { UnavailableError, type PreparedItem } from '../ingest.ts';
import { mapSegmentMessage, segmentMessagesOfBody, verifySegmentSignature, type CustomerUpsert, type SegmentType } from '../segment.ts';
import type { IngestContext } from './ingest-api.ts';
import { errorBody } from './replies.ts';

export async function segmentRoutes(app: FastifyInstance, ctx: IngestContext): Promise<void> {
  const { cfg, ingestor, pg, secrets, replies } = ctx;

  const handler = (impliedType: SegmentType | undefined, verifySignature: boolean) => async (req: FastifyRequest, res: FastifyReply) => {
    const org = req.organizationId!;
    if (verifySignature) {
      let secret: string | null;
      try {
        secret = await secrets.secretOf(org);
      } catch (err) {
        throw new UnavailableError('postgres', `cannot load Segment settings: ${(err as Error).message}`);
      }
      const sig = req.headers['x-signature'];
      if (secret !== null && !verifySegmentSignature(req.rawBody ?? Buffer.alloc(0), secret, typeof sig === 'string' ? sig : undefined)) {
        return res.code(401).send(errorBody('invalid_signature', 'X-Signature does not match the HMAC-SHA1 of the body'));
      }
    }
    const parsed = segmentMessagesOfBody(req.body);
    if ('error' in parsed) return res.code(400).send(errorBody('invalid_body', parsed.error));
    const { messages } = parsed;
    if (messages.length === 0) return res.code(400).send(errorBody('empty_batch', 'the request contains no messages'));
    if (messages.length > cfg.maxBatchEvents) return replies.batchTooLarge(res, messages.length);
    const now = Date.now();
    const upserts: Array<{ index: number; customer: CustomerUpsert }> = [];
    const items: PreparedItem[] = messages.map((msg, index) => {
      const m = mapSegmentMessage(msg, now, cfg, impliedType);
      switch (m.kind) {
        case 'event':
          return m.result.ok ? { event: m.result.event } : { result: { status: 'rejected', errors: m.result.errors } };
        case 'identify':
          upserts.push({ index, customer: m.customer });
          return { result: { status: 'accepted', customer_id: m.customer.customerId } };
        case 'ignored':
          return { result: { status: 'ignored', reason: `${m.type} is not metered` } };
        default:
          return { result: { status: 'rejected', errors: m.errors } };
      }
    });
    // Customers first: if Postgres is down, nothing of this request has been produced yet (503).
    // A value Postgres refuses (SQLSTATE class 22/23) rejects that message only: the sender's data,
    // not a reason to retry.
    for (const { index, customer } of upserts) {
      try {
        await upsertCustomerFromIdentify(pg, org, customer);
      } catch (err) {
        const kind = postgresFailureKind(err);
        if (kind === 'unavailable') throw new UnavailableError('postgres', `cannot update customers: ${(err as Error).message}`);
        if (kind === 'internal') throw err;
        const code = (err as { code?: string }).code;
        items[index] = {
          result: {
            status: 'rejected',
            errors: [
              {
                field: 'traits',
                reason: 'invalid_value',
                message: `the customer's traits were refused by the database (SQLSTATE ${code})`,
              },
            ],
          },
        };
      }
    }
    return replies.summary(res, await ingestor.ingest(org, 'segment', items, now));
  };

  app.post('/v1/segment', handler(undefined, true));
  app.post('/v1/batch', handler(undefined, false));
  for (const t of ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const) {
    app.post(`/v1/${t}`, handler(t, false));
  }
}
