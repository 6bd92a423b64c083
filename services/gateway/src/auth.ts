// Request authentication: every ingest request carries an organization API key, as X-API-KEY,
// Authorization: Bearer <key>, or (Segment's HTTP API) Authorization: Basic base64(<key>:).
// The organization of every event comes from the key, never from the body.
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
  private readonly entries = new Map<string, { secret: string | null; expires: number }>();

  constructor(private readonly pool: PgPool, private readonly ttlMs = 30_000) {}

  async secretOf(organizationId: string): Promise<string | null> {
    const hit = this.entries.get(organizationId);
    const now = Date.now();
    if (hit && hit.expires > now) return hit.secret;
    const { rows } = await this.pool.query<{ segment_shared_secret: string | null }>(
      'SELECT segment_shared_secret FROM organizations WHERE id = $1',
      [organizationId],
    );
    const secret = rows[0]?.segment_shared_secret ?? null;
    if (this.entries.size >= 10_000) this.entries.clear();
    this.entries.set(organizationId, { secret: secret === '' ? null : secret, expires: now + this.ttlMs });
    return secret === '' ? null : secret;
  }
}

/** Creates or updates a customer from a Segment identify (other columns are kept). */
export async function upsertCustomer(
  pool: PgPool,
  organizationId: string,
  c: { customerId: string; name: string | null; email: string | null },
): Promise<void> {
  await pool.query(
    `INSERT INTO customers (organization_id, customer_id, name, email)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (organization_id, customer_id) DO UPDATE
        SET name = COALESCE(EXCLUDED.name, customers.name),
            email = COALESCE(EXCLUDED.email, customers.email),
            updated_at = now()`,
    [organizationId, c.customerId, c.name, c.email],
  );
}
