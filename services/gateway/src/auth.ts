// Request authentication: every ingest request carries an organization API key, as X-API-KEY,
// Authorization: Bearer <key>, or (Segment's HTTP API) Authorization: Basic base64(<key>:).
// The organization of every event comes from the key, never from the body.
// (Customers created by Segment identify go through core's customers repository: routes/segment.ts.)
import { LRUCache } from 'lru-cache';
import { apiKeyFromHeaders, type PgPool } from '@meterline/core';

export function apiKeyOf(headers: Record<string, string | string[] | undefined>): string | null {
  const direct = apiKeyFromHeaders(headers);
  if (direct) return direct;
  const auth = headers['authorization'];
  if (typeof auth === 'string') {
    const m = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(auth.trim());
    if (m) {
      const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
      const user = decoded.includes(':') ? decoded.slice(0, decoded.indexOf(':')) : decoded;
      if (user.length > 0) return user;
    }
  }
  return null;
}

/** The organization's Segment shared secret (null: signatures not required), cached briefly. */
export class SegmentSecretCache {
  // lru-cache: bounded, per-entry TTL, one lookup in flight per organization
  private readonly entries: LRUCache<string, { secret: string | null }>;

  constructor(
    private readonly pool: PgPool,
    ttlMs = 30_000,
  ) {
    this.entries = new LRUCache({
      max: 10_000,
      ttl: ttlMs,
      fetchMethod: async (organizationId) => {
        const { rows } = await this.pool.query<{ segment_shared_secret: string | null }>(
          'SELECT segment_shared_secret FROM organizations WHERE id = $1',
          [organizationId],
        );
        const secret = rows[0]?.segment_shared_secret ?? null;
        return { secret: secret === '' ? null : secret };
      },
    });
  }

  async secretOf(organizationId: string): Promise<string | null> {
    return (await this.entries.fetch(organizationId))?.secret ?? null;
  }
}
