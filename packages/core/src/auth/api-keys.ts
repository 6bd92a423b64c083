// Organization API keys. A key is shown once at creation; only its SHA-256 hash and a short prefix
// (for listing) are stored. Keys are 32 random bytes, so a fast hash is enough: there is nothing to
// brute-force, unlike passwords.
import { createHash, randomBytes } from 'node:crypto';
import type { PgPool } from '../clients/postgres.ts';

export const API_KEY_PREFIX = 'ml_';

export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const key = API_KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, prefix: key.slice(0, 10), hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export interface ApiKeyOwner {
  organizationId: string;
  keyId: string;
}

/** Finds the organization of an active key, or null. */
export async function findApiKeyOwner(pool: PgPool, key: string): Promise<ApiKeyOwner | null> {
  const { rows } = await pool.query<{ organization_id: string; id: string }>(
    `SELECT k.organization_id, k.id FROM api_keys k
       JOIN organizations o ON o.id = k.organization_id
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND o.archived_at IS NULL`,
    [hashApiKey(key)],
  );
  const row = rows[0];
  return row ? { organizationId: row.organization_id, keyId: row.id } : null;
}

/**
 * Caches key lookups briefly (default 30 s for hits, 5 s for misses) so that a hot ingest path does
 * not hit Postgres per request. A revoked key stops working within the TTL.
 */
export class ApiKeyCache {
  private readonly entries = new Map<string, { owner: ApiKeyOwner | null; expires: number }>();

  constructor(
    private readonly lookup: (key: string) => Promise<ApiKeyOwner | null>,
    private readonly ttlMs = 30_000,
    private readonly negativeTtlMs = 5_000,
    private readonly maxEntries = 10_000,
  ) {}

  async resolve(key: string): Promise<ApiKeyOwner | null> {
    const hit = this.entries.get(key);
    const now = Date.now();
    if (hit && hit.expires > now) return hit.owner;
    const owner = await this.lookup(key);
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { owner, expires: now + (owner ? this.ttlMs : this.negativeTtlMs) });
    return owner;
  }

  invalidate(): void {
    this.entries.clear();
  }
}

/** Extracts the API key from X-API-KEY or Authorization: Bearer. */
export function apiKeyFromHeaders(headers: Record<string, string | string[] | undefined>): string | null {
  const direct = headers['x-api-key'];
  if (typeof direct === 'string' && direct.length > 0) return direct.trim();
  const auth = headers['authorization'];
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1]!.trim();
  }
  return null;
}
