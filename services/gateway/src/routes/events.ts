// Native API: POST /v1/events and POST /api/track (one event, an array, or { "batch": [...] }).
// Registered inside the ingest plugin (ingest-api.ts): authenticated, body decoded and parsed there.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PreparedItem } from '../ingest.ts';
import { eventsOfBody, validateEvent } from '../validation.ts';
import type { IngestContext } from './ingest-api.ts';
import { errorBody } from './replies.ts';

export async function eventsRoutes(app: FastifyInstance, ctx: IngestContext): Promise<void> {
  const { cfg, ingestor, replies } = ctx;

  const handler = async (req: FastifyRequest, res: FastifyReply) => {
    const parsed = eventsOfBody(req.body);
    if ('error' in parsed) return res.code(400).send(errorBody('invalid_body', parsed.error));
    const { events } = parsed;
    if (events.length === 0) return res.code(400).send(errorBody('empty_batch', 'the request contains no events'));
    if (events.length > cfg.maxBatchEvents) return replies.batchTooLarge(res, events.length);
    const now = Date.now();
    const items: PreparedItem[] = events.map((raw) => {
      const v = validateEvent(raw, now, cfg);
      return v.ok ? { event: v.event } : { result: { status: 'rejected', errors: v.errors } };
    });
    return replies.summary(res, await ingestor.ingest(req.organizationId!, 'api', items, now));
  };

  app.post('/v1/events', handler);
  app.post('/api/track', handler);
}
